"""Gradient checking: analytic gradients (backward) against central differences.

For f: R^n -> R^m the analytic Jacobian J is built from backward passes, one per output element
(or, for large outputs, from random projections v^T J), and compared with the numeric
(f(x + eps e_i) - f(x - eps e_i)) / (2 eps) in float64: |analytic - numeric| <= atol +
rtol |numeric| for every entry.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from pydl.autograd import grad_mode


def _outputs(fn, inputs):
    from pydl.tensor import Tensor

    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind == "f"]


def gradcheck(fn: Callable, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, max_full_outputs: int = 512, seed: int = 0) -> bool:
    """Check ``fn``'s gradients w.r.t. every input tensor that requires grad.

    Inputs that require grad must be float64 tensors (float32 differences are too coarse).
    Returns True, or raises (returns False with raise_exception=False) naming the input, the
    element and the two values that disagree most.
    """
    from pydl.autograd import backward
    from pydl.tensor import Tensor

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; gradcheck "
                             "needs float64 inputs")

    outs = _outputs(fn, inputs)
    sizes = [o._data.size for o in outs]
    n_out = sum(sizes)
    rng = np.random.default_rng(seed)
    if n_out <= max_full_outputs:
        directions = np.eye(n_out)
    else:
        directions = rng.standard_normal((16, n_out))

    # Analytic: row r of (directions @ J) for each input.
    analytic = {i: np.zeros((len(directions), inputs[i]._data.size)) for i in checked}
    for r, v in enumerate(directions):
        for i in checked:
            inputs[i].grad = None
        outs = _outputs(fn, inputs)
        grads, roots, start = [], [], 0
        for o, n in zip(outs, sizes):
            if o.requires_grad:
                roots.append(o)
                grads.append(Tensor._wrap(v[start:start + n].reshape(o.shape).astype(o.dtype)))
            start += n
        if roots:
            backward(roots, grads)
        for i in checked:
            g = inputs[i].grad
            if g is not None:
                analytic[i][r] = g.numpy_view().reshape(-1)
    for i in checked:
        inputs[i].grad = None

    # Numeric: perturb each element of each input, under no_grad.
    ok = True
    worst_msg = None
    worst_err = -1.0
    with grad_mode.no_grad():
        for i in checked:
            x = inputs[i]._data
            if not x.flags.c_contiguous:
                # Perturbing through a reshaped copy would not reach the input.
                raise ValueError(f"gradcheck: input {i} must be contiguous")
            flat = x.reshape(-1)
            numeric = np.zeros_like(analytic[i])
            for j in range(flat.size):
                orig = flat[j]
                flat[j] = orig + eps
                plus = np.concatenate([o.numpy_view().reshape(-1) for o in _outputs(fn, inputs)]
                                      or [np.zeros(0)])
                flat[j] = orig - eps
                minus = np.concatenate([o.numpy_view().reshape(-1)
                                        for o in _outputs(fn, inputs)] or [np.zeros(0)])
                flat[j] = orig
                numeric[:, j] = directions @ ((plus - minus) / (2 * eps))
            err = np.abs(analytic[i] - numeric) - (atol + rtol * np.abs(numeric))
            if err.size and err.max() > 0:
                ok = False
                r, j = np.unravel_index(np.argmax(err), err.shape)
                if err[r, j] > worst_err:
                    worst_err = err[r, j]
                    idx = np.unravel_index(j, x.shape) if x.ndim else ()
                    worst_msg = (f"gradcheck: Jacobian mismatch for input {i} (shape {x.shape}) "
                                 f"at element {tuple(int(k) for k in idx)}, output row {r}: "
                                 f"analytic {analytic[i][r, j]:.8g} vs numeric "
                                 f"{numeric[r, j]:.8g} (atol={atol}, rtol={rtol})")
    if not ok and raise_exception:
        raise RuntimeError(worst_msg)
    return ok


def gradgradcheck(fn: Callable, inputs, grad_outputs=None, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True,
                  max_full_outputs: int = 512, seed: int = 0) -> bool:
    """Check second derivatives: gradcheck of the map (inputs, v) -> v^T d fn / d inputs, whose
    gradient backward computes with ``create_graph=True`` (torch.autograd.gradgradcheck).

    ``grad_outputs`` (one float64 tensor per differentiable output of ``fn``) default to random
    normal tensors; they require grad, so the check covers d/dv as well as d/d inputs.
    """
    from pydl.autograd import grad
    from pydl.tensor import Tensor

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad")
    with grad_mode.enable_grad():
        outs = [o for o in _outputs(fn, inputs) if o.requires_grad]
    if grad_outputs is None:
        rng = np.random.default_rng(seed + 1)
        grad_outputs = tuple(Tensor(rng.standard_normal(o.shape), dtype=np.float64,
                                    requires_grad=True) for o in outs)
    else:
        grad_outputs = tuple(grad_outputs) if isinstance(grad_outputs, (tuple, list)) \
            else (grad_outputs,)
    if len(grad_outputs) != len(outs):
        raise ValueError(f"gradgradcheck: {len(grad_outputs)} grad_outputs for {len(outs)} "
                         f"differentiable outputs")
    n_in = len(inputs)

    def first_derivatives(*args):
        ins, vs = args[:n_in], args[n_in:]
        with grad_mode.enable_grad():
            outs_ = [o for o in _outputs(fn, ins) if o.requires_grad]
            gs = grad(outs_, [ins[i] for i in checked], list(vs), create_graph=True,
                      allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_derivatives, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, max_full_outputs=max_full_outputs,
                     seed=seed)
