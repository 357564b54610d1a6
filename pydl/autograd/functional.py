"""Higher-level derivatives: ``jacobian`` (exact, by backward passes) and ``hessian``.

pydl's backward computes on raw arrays (no graph of the backward pass), so ``hessian`` is the
Jacobian of the exact gradient taken by central differences of that gradient: exact up to
O(eps^2) truncation, enough for teaching and checking small problems.
"""
from __future__ import annotations

import numpy as np

from pydl.autograd import grad_mode


def jacobian(func, inputs):
    """d func(inputs) / d inputs. One input and one output give a tensor of shape
    out.shape + in.shape; several inputs give a tuple of those."""
    from pydl.autograd import backward
    from pydl.tensor import Tensor

    single = isinstance(inputs, Tensor)
    ins = (inputs,) if single else tuple(inputs)
    ins = tuple(Tensor._wrap(x.data.copy()).requires_grad_(True) for x in ins)
    out = func(*ins)
    jac = [np.zeros(out.shape + x.shape, dtype=x.dtype) for x in ins]
    flat_out = out.data.size
    for r in range(flat_out):
        for x in ins:
            x.grad = None
        out = func(*ins)
        seed = np.zeros(out.shape, dtype=out.dtype)
        seed.reshape(-1)[r] = 1
        if out.requires_grad:
            backward([out], [Tensor._wrap(seed)])
        for k, x in enumerate(ins):
            if x.grad is not None:
                jac[k].reshape(flat_out, -1)[r] = x.grad.data.reshape(-1)
    res = tuple(Tensor._wrap(j) for j in jac)
    return res[0] if single else res


def hessian(func, inputs, eps: float = 1e-5):
    """d^2 func / d inputs^2 for a scalar ``func`` of one tensor: shape in.shape + in.shape.
    Central differences of the analytic gradient (see the module docstring)."""
    from pydl.tensor import Tensor

    x0 = inputs.data.astype(np.float64)

    def grad_at(xv):
        x = Tensor._wrap(xv.copy()).requires_grad_(True)
        with grad_mode.enable_grad():
            y = func(x)
            if y.data.size != 1:
                raise RuntimeError(f"hessian: func must return a scalar, got shape {y.shape}")
            y.backward()
        return x.grad.data.reshape(-1)

    n = x0.size
    h = np.zeros((n, n))
    flat = x0.reshape(-1)
    for j in range(n):
        xp_, xm_ = flat.copy(), flat.copy()
        xp_[j] += eps
        xm_[j] -= eps
        h[:, j] = (grad_at(xp_.reshape(x0.shape)) - grad_at(xm_.reshape(x0.shape))) / (2 * eps)
    h = 0.5 * (h + h.T)  # the exact Hessian is symmetric; average away the rounding
    return Tensor._wrap(h.reshape(x0.shape + x0.shape).astype(inputs.dtype))
