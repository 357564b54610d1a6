"""Reverse-mode automatic differentiation: the graph (``Function`` nodes), the backward engine,
grad modes, gradcheck and the functional derivatives."""
from __future__ import annotations

import numpy as np

from pydl.autograd import function as _function
from pydl.autograd import functional
from pydl.autograd.function import Function
from pydl.autograd.gradcheck import gradcheck, gradgradcheck
from pydl.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled


def unbroadcast(grad, shape):
    from pydl.ops.elementwise import unbroadcast as _u

    return _u(grad, shape)


def _make_grads(outputs, grad_outputs, create_graph: bool, caller: str):
    """Seed gradients for ``outputs``: arrays, or Tensors under create_graph (a grad_output that
    requires grad then keeps its graph, so the result can be differentiated w.r.t. it)."""
    Tensor = _function.Tensor  # pydl.tensor fills it in (an import here costs microseconds)
    roots, grads = [], []
    for k, (t, g) in enumerate(zip(outputs, grad_outputs)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{caller}: outputs must be Tensors, got {type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError(f"element {k} of tensors does not require grad and does not have "
                               f"a grad_fn")
        if g is None:
            if t._data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs; "
                                   f"output {k} has shape {tuple(t.shape)}: pass a gradient of "
                                   f"that shape")
            if type(t._data) is np.ndarray:
                g = np.array(1, dtype=t._data.dtype)  # np.ones is a Python function: 4x slower
                if t._data.ndim:
                    g = g.reshape(t._data.shape)
            else:
                g = _like_device(np.ones(t.shape, dtype=t.dtype), t._data)
            if create_graph:
                g = Tensor._wrap(g)
        else:
            gt = g if isinstance(g, Tensor) else Tensor(np.asarray(g))
            if gt.shape != t.shape:
                raise RuntimeError(f"{caller}: Mismatch in shape: grad_output[{k}] has a shape of "
                                   f"{tuple(gt.shape)} and output[{k}] has a shape of "
                                   f"{tuple(t.shape)}")
            if create_graph:
                g = gt if gt.dtype == t.dtype else gt.to(t.dtype)
            else:
                g = gt._data.astype(t.dtype, copy=False)
        roots.append(t)
        grads.append(g)
    return roots, grads


def _as_list(x, name):
    if isinstance(x, _function.Tensor):
        return [x]
    if x is None:
        return None
    try:
        return list(x)
    except TypeError:
        raise TypeError(f"{name} must be a Tensor or a sequence of Tensors, got "
                        f"{type(x).__name__}") from None


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False,
             inputs=None) -> None:
    """Backpropagate from ``tensors`` (a tensor or a sequence) into the leaves' ``.grad``.

    ``create_graph=True`` records the graph of the backward pass itself, so the ``.grad`` it
    leaves can be differentiated again; ``retain_graph`` then defaults to True, as in PyTorch.
    ``inputs`` limits accumulation to those tensors.
    """
    run_backward = _engine().run_backward
    if grad_tensors is None and inputs is None and type(tensors) is _function.Tensor:
        # loss.backward(): one root, the implicit gradient (checked in _make_grads)
        if retain_graph is None:
            retain_graph = create_graph
        roots, grads = _make_grads((tensors,), (None,), create_graph, "backward")
        run_backward(roots, grads, retain_graph=retain_graph, create_graph=create_graph)
        return
    tensors = _as_list(tensors, "tensors")
    grad_tensors = _as_list(grad_tensors, "grad_tensors")
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"backward: got {len(grad_tensors)} gradients for {len(tensors)} "
                           f"tensors")
    if retain_graph is None:
        retain_graph = create_graph
    roots, grads = _make_grads(tensors, grad_tensors, create_graph, "backward")
    if inputs is None:
        run_backward(roots, grads, retain_graph=retain_graph, create_graph=create_graph)
        return
    inputs = _as_list(inputs, "inputs")
    if not inputs:
        raise RuntimeError("backward: inputs argument was passed but is empty")
    got = run_backward(roots, grads, retain_graph=retain_graph, create_graph=create_graph,
                       capture=inputs, accumulate=False)
    from pydl.autograd.engine import _accumulate_leaf

    for x, g in zip(inputs, got):
        if g is not None:
            _accumulate_leaf(x, g, set(), create_graph)


def _engine():
    """pydl.autograd.engine, imported on first use (it needs pydl._C) and then kept."""
    global _engine_module
    if _engine_module is None:
        from pydl.autograd import engine

        _engine_module = engine
    return _engine_module


_engine_module = None


def _like_device(host_array, like):
    from pydl.device import array_module

    return array_module(like).asarray(host_array)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         only_inputs: bool = True, allow_unused=None, is_grads_batched: bool = False,
         materialize_grads: bool = False):
    """The gradients of ``outputs`` w.r.t. ``inputs``, returned as a tuple (torch.autograd.grad).

    No ``.grad`` is touched. With ``create_graph=True`` the returned gradients carry the graph of
    their computation (for second derivatives: Hessian-vector products, gradient penalties).
    An input that the outputs do not depend on raises unless ``allow_unused=True`` (then its
    entry is None, or zeros with ``materialize_grads=True``).
    """
    from pydl.autograd.engine import run_backward
    from pydl.tensor import Tensor

    if is_grads_batched:
        raise NotImplementedError("grad(is_grads_batched=True) is not supported by pydl: loop "
                                  "over the batch of grad_outputs instead")
    outputs = _as_list(outputs, "outputs")
    inputs = _as_list(inputs, "inputs")
    if not inputs:
        raise RuntimeError("grad requires at least one input")
    for k, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"grad: inputs must be Tensors, got {type(x).__name__} at {k}")
        if not x.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    grad_outputs = _as_list(grad_outputs, "grad_outputs")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad_outputs has {len(grad_outputs)} entries but there are "
                           f"{len(outputs)} outputs")
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    roots, grads = _make_grads(outputs, grad_outputs, create_graph, "grad")
    got = run_backward(roots, grads, retain_graph=retain_graph, create_graph=create_graph,
                       capture=inputs, accumulate=False)
    result = []
    for x, g in zip(inputs, got):
        if g is None:
            if not allow_unused:
                raise RuntimeError("One of the differentiated Tensors appears to not have been "
                                   "used in the graph. Set allow_unused=True if this is the "
                                   "desired behavior.")
            if materialize_grads:
                from pydl.device import array_module

                g = Tensor._wrap(array_module(x._data).zeros_like(x._data))
            result.append(g)
            continue
        if not create_graph:
            g = Tensor._wrap(g if g.flags.writeable else g.copy())
        if g.shape != x.shape or g.dtype != x.dtype:
            g = _fit(g, x, create_graph)
        result.append(g)
    return tuple(result)


def _fit(g, x, create_graph):
    """A captured gradient in its input's dtype and shape (broadcast where the op broadcast)."""
    from pydl.ops.shape import Expand
    from pydl.tensor import Tensor

    if g.dtype != x.dtype:
        g = g.to(x.dtype) if create_graph else Tensor._wrap(g._data.astype(x.dtype))
    if g.shape != x.shape:
        g = Expand.apply(g, x.shape) if create_graph else \
            Tensor._wrap(np.broadcast_to(g._data, x.shape).copy())
    return g


__all__ = ["Function", "backward", "grad", "gradcheck", "gradgradcheck", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled", "functional", "unbroadcast"]
