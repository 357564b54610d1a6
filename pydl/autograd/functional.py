"""Derivatives of whole functions (torch.autograd.functional): ``vjp``, ``jvp``, ``jacobian``,
``hessian``, ``vhp``, ``hvp``. All analytic: built from backward passes, the second-order ones
from backward passes recorded with ``create_graph=True`` (no finite differences).

The textbook forms (lecture notes, second-order methods) for f: R^n -> R^m and a scalar loss L:

* vjp:  v^T J            one backward pass
* jvp:  J u              the "double-vjp" trick: g(w) = w^T J is linear in w, so d(g . u)/dw = J u
* jacobian: J            one backward pass per output element (rows e_r^T J)
* hessian: H = d/dx (dL/dx), one create_graph backward, then one backward per gradient element
* vhp: v^T H = d/dx (dL/dx . v),  hvp: H v (the double-vjp trick on the gradient; equal to vhp
  when H is symmetric, which it is for twice continuously differentiable L).

Signatures follow PyTorch. ``vectorize`` and the strategy arguments are accepted and ignored:
pydl has no vmap, so rows are always computed one backward pass at a time ("reverse-mode").
"""
from __future__ import annotations

import numpy as np

from pydl.autograd import grad_mode


def _as_tuple(x, arg: str, fn: str):
    from pydl.tensor import Tensor

    if isinstance(x, Tensor):
        return False, (x,)
    if isinstance(x, (tuple, list)):
        for k, t in enumerate(x):
            if not isinstance(t, Tensor):
                raise TypeError(f"The {arg} given to {fn} must be either a Tensor or a tuple of "
                                f"Tensors but the value at index {k} has type {type(t).__name__}.")
        return True, tuple(x)
    raise TypeError(f"The {arg} given to {fn} must be either a Tensor or a tuple of Tensors but "
                    f"the given {arg} has type {type(x).__name__}.")


def _prepare_inputs(inputs, create_graph: bool):
    """Inputs that require grad inside ``func``: cut from the caller's graph unless create_graph
    asks for results that stay differentiable w.r.t. the caller's tensors."""
    out = []
    for x in inputs:
        if create_graph and x.requires_grad:
            out.append(x.view_as(x))
        else:
            out.append(x.detach().requires_grad_(x.dtype.kind == "f"))
    return tuple(out)


def _finish(xs, create_graph: bool):
    """Results as the caller gets them: detached unless create_graph."""
    if create_graph:
        return tuple(xs)
    from pydl.tensor import Tensor

    return tuple(None if x is None else Tensor._wrap(x._data) for x in xs)


def _grads(outputs, inputs, grad_outputs, create_graph, strict, what, retain_graph=True):
    """autograd.grad with unused inputs as zeros (or, with ``strict``, an error)."""
    from pydl.autograd import grad
    from pydl.tensor import Tensor

    outs, gos = [], []
    for o, g in zip(outputs, grad_outputs):
        if o.requires_grad:
            outs.append(o)
            gos.append(g)
    got = (None,) * len(inputs)
    if outs:
        got = grad(outs, inputs, gos, retain_graph=retain_graph, create_graph=create_graph,
                   allow_unused=True)
    result = []
    for k, (x, g) in enumerate(zip(inputs, got)):
        if g is None:
            if strict:
                raise RuntimeError(f"The output of the user-provided function is independent of "
                                   f"input {k}. This is not allowed in strict mode ({what}).")
            from pydl.device import array_module

            g = Tensor._wrap(array_module(x._data).zeros_like(x._data))
        result.append(g)
    return tuple(result)


def _check_v(v, like, fn: str, what: str):
    if len(v) != len(like):
        raise RuntimeError(f"{fn}: v has {len(v)} tensors but the {what} has {len(like)}")
    for k, (a, b) in enumerate(zip(v, like)):
        if a.shape != b.shape:
            raise RuntimeError(f"{fn}: entry {k} of v has shape {tuple(a.shape)} but the {what} "
                               f"has shape {tuple(b.shape)}")


def _default_v(outputs, fn: str):
    from pydl.tensor import Tensor

    for o in outputs:
        if o._data.size != 1:
            raise RuntimeError(f"The vector v can only be None if the user-provided function "
                               f"returns a single Tensor with a single element ({fn}); got an "
                               f"output of shape {tuple(o.shape)}.")
    return tuple(Tensor._wrap(np.ones(o.shape, dtype=o.dtype)) for o in outputs)


def _inputs_and_v(inputs, v, create_graph: bool, fn: str):
    """(inputs is a tuple, prepared inputs, v as a tuple matching them) for jvp/vhp/hvp."""
    in_tuple, ins = _as_tuple(inputs, "inputs", fn)
    ins = _prepare_inputs(ins, create_graph)
    if v is None:
        vs = _default_v(ins, fn)
    else:
        _, vs = _as_tuple(v, "v", fn)
        _check_v(vs, ins, fn, "input")
    return in_tuple, ins, vs


def _call(func, inputs, fn: str):
    with grad_mode.enable_grad():
        out = func(*inputs)
    is_tuple, outs = _as_tuple(out, "outputs of the user-provided function", fn)
    return is_tuple, outs


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T J): the vector-Jacobian product, one backward pass."""
    in_tuple, ins = _as_tuple(inputs, "inputs", "vjp")
    ins = _prepare_inputs(ins, create_graph)
    out_tuple, outs = _call(func, ins, "vjp")
    if v is None:
        vs = _default_v(outs, "vjp")
    else:
        _, vs = _as_tuple(v, "v", "vjp")
        _check_v(vs, outs, "vjp", "output")
    with grad_mode.enable_grad():
        res = _grads(outs, ins, vs, create_graph, strict, "vjp", retain_graph=create_graph)
    outs, res = _finish(outs, create_graph), _finish(res, create_graph)
    return (outs if out_tuple else outs[0]), (res if in_tuple else res[0])


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product by the double-vjp trick."""
    from pydl.tensor import Tensor

    in_tuple, ins, vs = _inputs_and_v(inputs, v, create_graph, "jvp")
    out_tuple, outs = _call(func, ins, "jvp")
    with grad_mode.enable_grad():
        # w^T J as a function of a dummy w; its derivative w.r.t. w in direction v is J v.
        ws = tuple(Tensor(np.zeros(o.shape, dtype=o.dtype), requires_grad=True) for o in outs)
        wj = _grads(outs, ins, ws, True, strict, "jvp")
        wj_live = [g for g in wj if g.requires_grad]
        v_live = [vv for g, vv in zip(wj, vs) if g.requires_grad]
        if wj_live:
            res = _grads(wj_live, ws, v_live, create_graph, strict, "jvp",
                         retain_graph=create_graph)
        else:
            res = _grads([], ws, [], create_graph, strict, "jvp")
    outs, res = _finish(outs, create_graph), _finish(res, create_graph)
    return (outs if out_tuple else outs[0]), (res if out_tuple else res[0])


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """d func(inputs) / d inputs, one backward pass per output element.

    A Tensor input and a Tensor output give a Tensor of shape out.shape + in.shape; a tuple of
    inputs gives a tuple (one per input); a tuple of outputs, a tuple (one per output) of those.
    """
    from pydl.tensor import Tensor

    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f'Expected strategy to be either "forward-mode" or "reverse-mode", got '
                         f'{strategy!r}')
    in_tuple, ins = _as_tuple(inputs, "inputs", "jacobian")
    ins = _prepare_inputs(ins, create_graph)
    out_tuple, outs = _call(func, ins, "jacobian")
    from pydl.ops.shape import stack

    table = []  # table[i][j]: d out_i / d in_j
    with grad_mode.enable_grad():
        for o in outs:
            n = o._data.size
            rows = [[] for _ in ins]
            for r in range(n):
                seed = np.zeros(o.shape, dtype=o.dtype)
                seed.reshape(-1)[r] = 1
                if o.requires_grad:
                    gs = _grads([o], ins, [Tensor._wrap(seed)], create_graph, strict,
                                "jacobian")
                else:
                    gs = _grads([], ins, [], create_graph, strict, "jacobian")
                for j, g in enumerate(gs):
                    rows[j].append(g if create_graph else Tensor._wrap(g._data))
            per_in = []
            for j, x in enumerate(ins):
                if n == 0:
                    j_ij = Tensor._wrap(np.zeros(o.shape + x.shape, dtype=x.dtype))
                else:
                    j_ij = stack(rows[j], 0).reshape(o.shape + x.shape)
                per_in.append(j_ij)
            table.append(tuple(_finish(per_in, create_graph)))
    if out_tuple:
        return tuple(row if in_tuple else row[0] for row in table)
    return table[0] if in_tuple else table[0][0]


def hessian(func, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """d^2 func / d inputs^2 of a scalar ``func``: the Jacobian of the gradient, whose backward
    passes run through a graph recorded by a create_graph backward. One input gives a Tensor of
    shape in.shape + in.shape; a tuple of inputs a tuple of tuples (H[i][j] = d2f / dx_i dx_j)."""
    in_tuple, ins = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*xs):
        _, outs = _call(func, xs, "hessian")
        if len(outs) != 1 or outs[0]._data.size != 1:
            raise RuntimeError(f"The function given to hessian should return a single Tensor "
                               f"with one element, got shape "
                               f"{tuple(outs[0].shape) if len(outs) == 1 else len(outs)}")
        with grad_mode.enable_grad():
            return _grads(outs, xs, [None], True, strict, "hessian")

    res = jacobian(gradient, ins, create_graph=create_graph, strict=strict)
    if in_tuple:
        return res
    return res[0][0]


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T H): the gradient of (dL/dx . v), two backward passes."""
    in_tuple, ins, vs = _inputs_and_v(inputs, v, create_graph, "vhp")
    _, outs = _call(func, ins, "vhp")
    _check_scalar(outs, "vhp")
    with grad_mode.enable_grad():
        g = _grads(outs, ins, [None], True, strict, "vhp")
        live = [(gi, vi) for gi, vi in zip(g, vs) if gi.requires_grad]
        res = _grads([a for a, _ in live], ins, [b for _, b in live], create_graph, strict,
                     "vhp", retain_graph=create_graph)
    out, res = _finish(outs, create_graph)[0], _finish(res, create_graph)
    return out, (res if in_tuple else res[0])


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v) by the double-vjp trick on the gradient (as PyTorch computes it)."""
    from pydl.tensor import Tensor

    in_tuple, ins, vs = _inputs_and_v(inputs, v, create_graph, "hvp")
    _, outs = _call(func, ins, "hvp")
    _check_scalar(outs, "hvp")
    with grad_mode.enable_grad():
        g = _grads(outs, ins, [None], True, strict, "hvp")
        ws = tuple(Tensor(np.zeros(x.shape, dtype=x.dtype), requires_grad=True) for x in ins)
        live = [(gi, wi) for gi, wi in zip(g, ws) if gi.requires_grad]
        wh = _grads([a for a, _ in live], ins, [b for _, b in live], True, strict, "hvp")
        live2 = [(a, vi) for a, vi in zip(wh, vs) if a.requires_grad]
        res = _grads([a for a, _ in live2], ws, [b for _, b in live2], create_graph, strict,
                     "hvp", retain_graph=create_graph)
    out, res = _finish(outs, create_graph)[0], _finish(res, create_graph)
    return out, (res if in_tuple else res[0])


def _check_scalar(outs, fn: str) -> None:
    if len(outs) != 1 or outs[0]._data.size != 1:
        raise RuntimeError(f"The function given to {fn} should return a single Tensor with a "
                           f"single element")
