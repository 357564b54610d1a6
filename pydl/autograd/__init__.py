"""Reverse-mode automatic differentiation: the graph (``Function`` nodes), the backward engine,
grad modes, gradcheck and the functional derivatives."""
from __future__ import annotations

import numpy as np

from pydl.autograd import functional
from pydl.autograd.function import Function
from pydl.autograd.gradcheck import gradcheck
from pydl.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled


def unbroadcast(grad, shape):
    from pydl.ops.elementwise import unbroadcast as _u

    return _u(grad, shape)


def backward(tensors, grad_tensors=None, retain_graph: bool = False,
             create_graph: bool = False) -> None:
    """Backpropagate from ``tensors`` (a tensor or a sequence) into the leaves' ``.grad``."""
    from pydl.autograd.engine import run_backward
    from pydl.tensor import Tensor

    if create_graph:
        raise RuntimeError(
            "create_graph=True is not supported: pydl's backward runs on raw arrays and builds no graph of "
            "itself. Use pydl.autograd.functional.hessian for second derivatives")
    if isinstance(tensors, Tensor):
        tensors = [tensors]
        grad_tensors = [grad_tensors]
    elif grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    roots, grads = [], []
    for t, g in zip(tensors, grad_tensors):
        if not t.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a "
                               "grad_fn")
        if g is None:
            if t.data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs; "
                                   f"this output has shape {tuple(t.shape)}: pass "
                                   f"backward(gradient) with a tensor of that shape")
            g = np.ones(t.shape, dtype=t.dtype)
            if not isinstance(t.data, np.ndarray):
                g = _like_device(g, t.data)
        else:
            g = g.data if isinstance(g, Tensor) else np.asarray(g)
            if g.shape != t.shape:
                raise RuntimeError(f"backward: gradient has shape {tuple(g.shape)} but the "
                                   f"output has shape {tuple(t.shape)}")
            g = g.astype(t.dtype, copy=False)
        roots.append(t)
        grads.append(g)
    run_backward(roots, grads, retain_graph=retain_graph)


def _like_device(host_array, like):
    from pydl.device import array_module

    return array_module(like).asarray(host_array)


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool = False, allow_unused=False):
    """Gradients of ``outputs`` w.r.t. ``inputs`` returned as a tuple, leaving ``.grad`` of the
    inputs as it was."""
    from pydl.tensor import Tensor

    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    saved = [x.grad for x in inputs]
    for x in inputs:
        x.grad = None
    try:
        backward(outputs, grad_outputs, retain_graph=retain_graph)
        result = tuple(x.grad for x in inputs)
    finally:
        for x, g in zip(inputs, saved):
            x.grad = g
    for k, r in enumerate(result):
        if r is None and not allow_unused:
            raise RuntimeError(f"grad: input {k} was not used in the graph (allow_unused=True "
                               "returns None for it)")
    return result


__all__ = ["Function", "backward", "grad", "gradcheck", "no_grad", "enable_grad",
           "set_grad_enabled", "is_grad_enabled", "functional", "unbroadcast"]
