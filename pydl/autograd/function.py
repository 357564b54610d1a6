"""The one base class every differentiable op derives from.

An op is a subclass with ``forward`` and ``backward`` side by side (micrograd's idea, Chainer's
FunctionNode shape)::

    class Exp(Function):
        def forward(self, x):            # Tensor arguments arrive as raw ndarrays
            y = np.exp(x)
            self.save_for_backward(y)    # NB: save the output, not x: backward needs only e^x
            return y
        def backward(self, gy):          # one gradient per output
            y, = self.saved_tensors
            return gy * y                # one entry per forward argument (None: no gradient)

    Exp.apply(t)  ->  Tensor

``apply`` unwraps Tensors, runs ``forward``, wraps the results and, when grad mode is on and an
input requires grad, makes the instance the outputs' ``grad_fn``: a node of the graph whose
``parents`` name, per argument, where the gradient goes (another node, or a leaf Tensor).

One backward formula, two ways to run it (PyTorch's derivatives.yaml, Chainer's FunctionNode):

* First order (``backward()``, ``grad()``): the engine hands ``backward`` raw arrays and
  ``saved_tensors`` gives the saved arrays. Nothing is recorded; the formula costs what NumPy
  or the C++ kernel costs.
* ``create_graph=True``: the engine hands ``backward`` Tensors and ``saved_tensors`` gives
  Tensors connected to the graph (an input as the tensor it came from, an output as this node's
  output), with grad mode on. The same formula then records the graph of the backward pass, which
  can itself be differentiated (Hessians, gradient penalties, Newton steps).

For that, a formula is written with things that work on both arrays and Tensors: Python
operators, and other ops through ``Op.call(...)``, which runs ``forward`` directly on arrays and
``apply`` on Tensors. An op whose backward is a kernel (conv, pooling, batch norm) writes that
kernel as an op of its own (``Conv2dBackwardInput``) with its own ``backward``.

Saved arrays that are neither an input nor an output of the op (a softmax inside a fused loss, a
mean inside var) cannot be reconnected to the graph: a float intermediate raises a clear error
under create_graph; integer and bool arrays (indices, masks) are constants and pass.
"""
from __future__ import annotations

import numpy as np

from pydl.autograd import grad_mode


class Function:
    # Class-level defaults: a node sets only what differs, which keeps apply() cheap.
    _saved: tuple = ()
    _saved_versions: tuple = ()  # (version counter, version at save, shape) per tensor's array
    _saved_src: tuple = ()       # per saved array: input index k >= 0, ~i for output i, or None
    _freed = False
    _non_diff = None
    _hooks = None
    needs_input_grad: tuple = ()
    parents: tuple = ()
    n_outputs = 1
    _out_meta = None  # ((shape, dtype) per output), set for multi-output nodes only
    is_view = False   # view ops (pydl.ops.shape) set it: the result shares the input's memory

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} defines no forward")

    def backward(self, *grad_outputs):
        raise NotImplementedError(f"{type(self).__name__} defines no backward")

    # -- what forward keeps for backward -------------------------------------------------------
    def save_for_backward(self, *arrays) -> None:
        """Keep arrays for backward. Versions of the tensors they belong to are recorded so that
        an in-place change before backward is caught instead of giving a wrong gradient."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (or to read the saved "
                f"tensors of {type(self).__name__} after backward freed them). Pass "
                f"retain_graph=True to the first backward() if you need to backward twice.")
        for vc, version, shape in self._saved_versions:
            if vc[0] != version:
                raise RuntimeError(
                    f"one of the tensors needed for gradient computation has been modified by an "
                    f"in-place operation: a tensor of shape {tuple(shape)} saved by "
                    f"{type(self).__name__} is at version {vc[0]}; expected version "
                    f"{version} instead. Modify a clone() instead, or do the in-place change "
                    f"after backward.")
        if _grad_state.backward_tensors:
            return self._saved_as_tensors()
        return self._saved

    def _saved_as_tensors(self) -> tuple:
        """The saved arrays as Tensors wired into the graph (for backward under create_graph)."""
        out = []
        srcs = self._saved_src or (None,) * len(self._saved)
        for arr, src in zip(self._saved, srcs):
            if src is None:
                if not hasattr(arr, "dtype") or isinstance(arr, Tensor):
                    out.append(arr)  # None, Python numbers, shapes
                elif arr.dtype.kind not in "fc":
                    out.append(Tensor._wrap(arr))  # indices and masks: constants
                else:
                    raise RuntimeError(
                        f"{type(self).__name__} does not support double backward: it saved a "
                        f"float intermediate of shape {tuple(arr.shape)} that is neither an "
                        f"input nor an output, so its derivative is unknown under "
                        f"create_graph=True")
            elif src >= 0:
                parent = self.parents[src] if self.parents else None
                if parent is None:
                    # A NumPy scalar stays a number: a Tensor must hold an array.
                    out.append(arr if isinstance(arr, np.generic) or not hasattr(arr, "dtype")
                               else Tensor._wrap(arr))
                elif isinstance(parent[0], Function):
                    out.append(Tensor._wrap(arr, parent[0], parent[1]))
                else:
                    out.append(parent[0])  # the leaf itself: its gradient accumulates there
            else:
                out.append(Tensor._wrap(arr, self, ~src))
        return tuple(out)

    def mark_non_differentiable(self, *arrays) -> None:
        """Outputs (such as argmax indices) that never carry a gradient."""
        self._non_diff = {id(a) for a in arrays}

    def release(self) -> None:
        """Free what backward needed (called after backward unless retain_graph=True)."""
        if self._saved:
            self._saved = ()
            self._freed = True

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"

    def register_hook(self, out_index: int, hook) -> None:
        if self._hooks is None:
            self._hooks = {}
        self._hooks.setdefault(out_index, []).append(hook)

    # -- running an op ---------------------------------------------------------------------------
    @classmethod
    def call(cls, *args, **kwargs):
        """Run the op on what it is given: with a Tensor among the arguments, ``apply`` (a node
        is recorded when grad mode is on); on raw arrays, ``forward`` alone (no node, no
        wrapping). Backward formulas call other ops this way, so one formula serves the
        first-order pass (arrays) and create_graph (Tensors)."""
        for a in args:
            if isinstance(a, Tensor):
                return cls.apply(*args, **kwargs)
        out = _new(cls).forward(*args, **kwargs)
        if type(out) is not _ndarray and isinstance(out, np.generic):
            return np.asarray(out)
        return out

    @classmethod
    def apply(cls, *args, **kwargs):
        # The hot path of every op: keep per-call work to what the call needs. Without
        # recording (grad mode off, or no input requires grad) the node is only a place for
        # forward to run in: its parents are not kept, nothing saved is looked at, the outputs
        # are wrapped once. One pass over the arguments gathers what either case needs.
        raw = []
        needs = []
        parents = []
        requires = False
        first = None  # the first Tensor argument's array type (NumPy and CuPy never mix)
        for a in args:
            if isinstance(a, Tensor):
                if a._base is not None and a._view_vc != a._vc[0]:
                    _views.refresh_view(a)  # its base was written in place since it was made
                d = a._data
                if first is None:
                    first = type(d)
                elif type(d) is not first:
                    _device_error(cls.__name__, args)
                raw.append(d)
                if a.requires_grad:
                    requires = True
                    fn = a.grad_fn
                    parents.append((fn, a._out_index) if fn is not None else (a, 0))
                    needs.append(True)
                    continue
            else:
                raw.append(a)
            parents.append(None)
            needs.append(False)
        node = _new(cls)
        if not requires or not _grad_state.enabled:
            out = node.forward(*raw, **kwargs)
            if type(out) is tuple:
                return tuple([_wrap(o) for o in out])  # _wrap makes NumPy scalars 0-d arrays
            result = _wrap(out)
            if node.is_view:
                _share_version(result, args, cls, kwargs)
            return result

        node.needs_input_grad = tuple(needs)
        node.parents = tuple(parents)
        out = node.forward(*raw, **kwargs)
        if type(out) is tuple:
            return _record_outputs(node, out, args, raw, kwargs)
        # NumPy hands back scalars (np.float32) for full reductions and ufuncs on 0-d arrays;
        # tensors hold arrays. A scalar the node saved is swapped for the array too, so that it
        # is still recognised as this node's output (version check, create_graph).
        if type(out) is not _ndarray and isinstance(out, np.generic):
            fixed = np.asarray(out)
            _resave(node, (out,), (fixed,))
            out = fixed
        # n_outputs = 1 and _out_meta (read only for outputs that got no gradient, which a
        # single-output node reached by the engine always has) stay the class defaults.
        non_diff = node._non_diff
        if (non_diff is not None and id(out) in non_diff) or out.dtype.kind not in "fc":
            result = _wrap(out)
        else:
            result = _wrap(out, node, 0)
        if node.is_view:
            _share_version(result, args, cls, kwargs)
        if node._saved:
            _record_saved(node, args, raw, (result,))
        return result


def _record_outputs(node, out, args, raw, kwargs) -> tuple:
    """apply() for a forward that returned several outputs, recording."""
    if any(isinstance(o, np.generic) for o in out):
        fixed = tuple(np.asarray(o) if isinstance(o, np.generic) else o for o in out)
        _resave(node, out, fixed)
        out = fixed
    node.n_outputs = len(out)
    node._out_meta = tuple((o.shape, o.dtype) for o in out)
    non_diff = node._non_diff
    results = tuple([_wrap(o) if (non_diff is not None and id(o) in non_diff)
                     or o.dtype.kind not in "fc" else _wrap(o, node, i)
                     for i, o in enumerate(out)])
    if node.is_view:
        _share_version(results[0], args, type(node), kwargs)
    if node._saved:
        _record_saved(node, args, raw, results)
    return results


def _record_saved(node, args, raw, results) -> None:
    """Where each saved array came from: the version check needs the tensor's counter, and
    create_graph needs the tensor's place in the graph (input index k >= 0, ~i for output i,
    None for an intermediate). A tensor argument is looked for first, then an output, then a
    non-Tensor argument (an array or NumPy scalar operand: a constant)."""
    versions, srcs = [], []
    for arr in node._saved:
        src = None
        # Python numbers, shapes and None are constants as they are: nothing to look for.
        if type(arr) is _ndarray or hasattr(arr, "dtype"):
            const = None
            k = 0
            for r in raw:
                if r is arr:
                    t = args[k]
                    if isinstance(t, Tensor):
                        vc = t._vc
                        versions.append((vc, vc[0], arr.shape))
                        src = k
                        break
                    if const is None:
                        const = k
                k += 1
            else:
                for i, t in enumerate(results):
                    if t._data is arr:
                        vc = t._vc
                        versions.append((vc, vc[0], arr.shape))
                        src = ~i
                        break
                else:
                    src = const
        srcs.append(src)
    node._saved_versions = tuple(versions)
    node._saved_src = tuple(srcs)


# pydl.tensor imports this package, so it fills these names in when it loads (an import here
# would be circular); apply() only runs after both modules exist.
Tensor = None
_wrap = None  # Tensor._wrap

_new = object.__new__
_ndarray = np.ndarray
_grad_state = grad_mode._state


def _resave(node, before, after) -> None:
    if node._saved:
        swap = {id(b): a for b, a in zip(before, after) if b is not a}
        node._saved = tuple(swap.get(id(x), x) for x in node._saved)


def _share_version(result, args, cls, kwargs) -> None:
    """A view shares its base's version counter, so writes through either are seen by both, and
    remembers how it was made from the base (see pydl.autograd.views). View ops take the viewed
    tensor as their first argument."""
    base = args[0] if args else None
    if isinstance(base, Tensor) and np.may_share_memory(result._data, base._data):
        result._vc = base._vc
        _views.record_view(result, base, cls, args[1:], kwargs)


def _device_error(op: str, args) -> None:
    """Tensors of one op must live on one device (NumPy and CuPy arrays never mix)."""
    tensors = [t for t in args if isinstance(t, Tensor)]
    first = tensors[0]
    for t in tensors[1:]:
        if type(t._data) is not type(first._data):
            raise RuntimeError(f"{op}: expected all tensors to be on the same device, but found "
                               f"at least two devices, {first.device} and {t.device}")


from pydl.autograd import views as _views  # noqa: E402  (views needs Function defined first)
