"""Views and in-place writes through them, as PyTorch has them.

A view (``x[0:2]``, ``x.reshape(...)``, ``x.t()``) shares its base's memory and version counter
and remembers how to make itself from the base again (``_view_fn``, a replay of the view ops
through ``Op.call``, so it works on arrays and on Tensors). When an in-place op is recorded on a
view, the base's memory changes too, so the base gets a new ``grad_fn``, ``CopySlices``: the
gradient of the base before the write is g outside the view's elements, and the value written
gets g's view. The view itself becomes "that view of the new base". Other views of the same
base notice the version change and are re-derived from the base the next time an op uses them.
"""
from __future__ import annotations

from pydl.autograd import grad_mode
from pydl.autograd.function import Function


class CopySlices(Function):
    """The base after ``value`` was written through one of its views (torch's CopySlices)."""

    def forward(self, base_before, value, view_fn, base_after):
        self.view_fn = view_fn
        self.base_shape = base_before.shape
        return base_after  # the base's own memory, which already holds the write

    def backward(self, g):
        from pydl.device import array_module
        from pydl.ops.elementwise import raw

        g_base = g_value = None
        if self.needs_input_grad[0]:
            keep = array_module(raw(g)).ones(self.base_shape, dtype=g.dtype)
            self.view_fn(keep)[...] = 0  # the overwritten elements had no say in the result
            g_base = g * keep
        if self.needs_input_grad[1]:
            g_value = self.view_fn(g)
        return g_base, g_value, None, None


def _compose(outer, inner):
    if outer is None:
        return inner
    return lambda b: inner(outer(b))


def record_view(result, base, op_cls, rest_args, kwargs) -> None:
    """Mark ``result`` as a view of ``base`` made by ``op_cls(base, *rest_args, **kwargs)``."""
    step = (lambda b: op_cls.call(b, *rest_args, **kwargs)) if kwargs else \
        (lambda b: op_cls.call(b, *rest_args))
    root = base._base
    if root is None:
        result._base, result._view_fn = base, step
    else:
        result._base, result._view_fn = root, _compose(base._view_fn, step)
    result._view_vc = result._vc[0]


def refresh_view(view) -> None:
    """Re-derive a view's place in the graph from its base after the base was written in place."""
    base = view._base
    view._view_vc = view._vc[0]
    if not base.requires_grad or not grad_mode._state.enabled:
        return
    fresh = view._view_fn(base)
    view.grad_fn, view._out_index = fresh.grad_fn, fresh._out_index
    view.requires_grad = fresh.requires_grad


def rebase_after_write(view, value) -> None:
    """A recorded in-place op wrote ``value`` (a Tensor of the view's shape) through ``view``:
    give the base a CopySlices node and make the view a view of the new base."""
    from pydl.tensor import Tensor

    base = view._base
    before = Tensor._wrap(base._data, base.grad_fn, base._out_index)
    before.requires_grad = base.requires_grad
    after = CopySlices.apply(before, value, view._view_fn, base._data)
    base.grad_fn, base._out_index, base.requires_grad = after.grad_fn, 0, True
    refresh_view(view)


def check_not_leaf_view(t) -> None:
    base = t._base
    if base is not None and base.grad_fn is None and base.requires_grad:
        raise RuntimeError("a view of a leaf Variable that requires grad is being used in an "
                           "in-place operation.")


__all__ = ["CopySlices", "record_view", "refresh_view", "rebase_after_write",
           "check_not_leaf_view"]
