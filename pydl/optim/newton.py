"""``Newton``: damped Newton steps with the exact Hessian, for small models and least squares.

The course's Newton method (lecture notes 5.9) replaces gradient descent's fixed step by the
inverse Hessian:

    theta_{i+1} = theta_i - H_f(theta_i)^-1 grad f(theta_i)

It converges in one step on a quadratic and quadratically near a minimum, but the pure step
can go uphill where H is not positive-definite (a non-convex start) or overshoot where the
quadratic model is poor. ``Newton`` therefore takes the Levenberg-damped step

    p = -(H + lambda I)^-1 g,        theta <- theta + alpha p

lambda -> 0 is Newton's step; a large lambda turns it into a short gradient-descent step
(alpha / lambda) g. lambda adapts as in Levenberg-Marquardt: a step that lowers the loss is
accepted and lambda shrinks (``damping_decrease``); a step that does not (or an H + lambda I
that is not positive-definite) is rejected and lambda grows (``damping_increase``) before the
step is tried again. With ``line_search_fn="backtracking"`` the step length alpha starts at
``lr`` and halves until the Armijo condition f(theta + alpha p) <= f + c1 alpha g^T p holds.

The Hessian is exact: the gradient is taken with ``create_graph=True`` and differentiated once
more per parameter entry (n backward passes for n parameters, then an n x n solve), so this is
for models with up to a few thousand parameters.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from pydl.autograd import grad_mode
from pydl.optim.optimizer import Optimizer, _as_float
from pydl.tensor import Tensor


class Newton(Optimizer):
    """Damped Newton's method (Levenberg damping, optional Armijo backtracking).

    Args:
        params: the parameters (one group; float32 or float64, all one dtype).
        lr: the step length alpha tried first (default 1: the full Newton step).
        damping: the initial lambda (default 1e-3).
        damping_decrease: lambda is multiplied by this after an accepted step (default 0.1).
        damping_increase: lambda is multiplied by this after a rejected one (default 10).
        damping_min, damping_max: bounds of lambda (default 1e-12 and 1e12); when lambda would
            pass ``damping_max`` the step gives up and leaves the parameters unchanged.
        line_search_fn: None (accept a step that lowers the loss) or ``"backtracking"``
            (halve alpha until the Armijo condition holds).
        c1: the Armijo constant (default 1e-4).
        max_ls: backtracking halvings per trial (default 20).
        tolerance_grad: no step when max |g| <= this (default 1e-7).

    ``step(closure)``: ``closure`` re-evaluates the model and returns the loss *without*
    calling ``backward()`` (Newton differentiates the loss twice itself; a backward inside the
    closure would free the graph). After the step each parameter's ``grad`` holds the gradient
    at the point the step started from. Returns that point's loss.

    State (``state[params[0]]``): ``damping`` (the current lambda), ``n_iter``, ``func_evals``.
    """

    def __init__(self, params, lr=1.0, damping: float = 1e-3, damping_decrease: float = 0.1,
                 damping_increase: float = 10.0, damping_min: float = 1e-12,
                 damping_max: float = 1e12, line_search_fn=None, c1: float = 1e-4,
                 max_ls: int = 20, tolerance_grad: float = 1e-7):
        if not 0.0 < _as_float(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if damping < 0:
            raise ValueError(f"Invalid damping: {damping}")
        if not 0 < damping_decrease < 1:
            raise ValueError(f"Invalid damping_decrease: {damping_decrease} (must be in (0, 1))")
        if not damping_increase > 1:
            raise ValueError(f"Invalid damping_increase: {damping_increase} (must be > 1)")
        if not 0 < damping_min <= damping_max:
            raise ValueError(f"Invalid damping bounds: damping_min={damping_min}, "
                             f"damping_max={damping_max}")
        if line_search_fn not in (None, "backtracking"):
            raise ValueError(f"Newton: line_search_fn must be None or 'backtracking', got "
                             f"{line_search_fn!r}")
        defaults = dict(lr=lr, damping=damping, damping_decrease=damping_decrease,
                        damping_increase=damping_increase, damping_min=damping_min,
                        damping_max=damping_max, line_search_fn=line_search_fn, c1=c1,
                        max_ls=max_ls, tolerance_grad=tolerance_grad)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("Newton doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        dtypes = {p.dtype for p in self._params}
        if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
            raise TypeError(f"Newton: parameters must share one dtype, float32 or float64; got "
                            f"{sorted(str(d) for d in dtypes)}")
        if not all(isinstance(p._data, np.ndarray) for p in self._params):
            raise NotImplementedError("Newton: parameters must be on the CPU")

    # -- derivatives ------------------------------------------------------------------------------
    def _gradient_and_hessian(self, loss):
        """The flat gradient g (n,) and Hessian H (n, n) of ``loss`` w.r.t. the parameters:
        one create_graph backward for g, then row i of H = d g_i / d theta, one backward each."""
        from pydl.autograd import grad

        params = self._params
        dtype = params[0].dtype
        sizes = [p._data.size for p in params]
        n = sum(sizes)
        try:
            gs = grad(loss, params, create_graph=True, allow_unused=True)
        except RuntimeError as e:
            if "second time" in str(e):
                raise RuntimeError("Newton.step: the closure's loss has no graph left to "
                                   "differentiate; the closure must return the loss without "
                                   "calling backward()") from e
            raise
        flat_g = np.zeros(n, dtype=dtype)
        offsets = np.cumsum([0] + sizes)
        live = []  # gradients that depend on the parameters (others have zero Hessian rows)
        for k, (p, g) in enumerate(zip(params, gs)):
            if g is None:
                continue
            flat_g[offsets[k]:offsets[k + 1]] = g._data.reshape(-1)
            if g.requires_grad:
                live.append(k)
        H = np.zeros((n, n), dtype=dtype)
        if live:
            seeds = [np.zeros(params[k].shape, dtype=dtype) for k in live]
            for j, k in enumerate(live):
                flat_seed = seeds[j].reshape(-1)
                for i in range(sizes[k]):
                    flat_seed[i] = 1
                    rows = grad([gs[k2] for k2 in live], params,
                                grad_outputs=[Tensor._wrap(s) for s in seeds],
                                retain_graph=True, allow_unused=True)
                    flat_seed[i] = 0
                    row = H[offsets[k] + i]
                    for k2, r in enumerate(rows):
                        if r is not None:
                            row[offsets[k2]:offsets[k2 + 1]] = r._data.reshape(-1)
        # Exact in theory; averaging with the transpose removes rounding asymmetry.
        return flat_g, 0.5 * (H + H.T), gs

    # -- moving the parameters ---------------------------------------------------------------------
    def _get_flat(self) -> np.ndarray:
        return np.concatenate([p._data.reshape(-1) for p in self._params])

    def _set_flat(self, x: np.ndarray) -> None:
        offset = 0
        for p in self._params:
            n = p._data.size
            p._data[...] = x[offset:offset + n].reshape(p.shape)
            p._bump_version()
            offset += n

    def _loss_at(self, closure, x) -> float:
        self._set_flat(x)
        with grad_mode.no_grad():
            return float(closure())

    # -- the step ----------------------------------------------------------------------------------
    def step(self, closure: Callable):
        """One damped Newton step; returns the loss at the starting point."""
        if closure is None:
            raise RuntimeError("Newton.step requires a closure that re-evaluates the model and "
                               "returns the loss")
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("damping", float(group["damping"]))
        state.setdefault("n_iter", 0)
        state.setdefault("func_evals", 0)

        for p in self._params:
            p.grad = None
        with grad_mode.enable_grad():
            loss = closure()
        state["func_evals"] += 1
        if not isinstance(loss, Tensor):
            raise TypeError(f"Newton.step: the closure must return the loss Tensor, got "
                            f"{type(loss).__name__}")
        if any(p.grad is not None for p in self._params):
            raise RuntimeError("Newton.step: the closure called backward(); it must only compute "
                               "and return the loss (Newton differentiates it twice itself)")
        if not loss.requires_grad:
            raise RuntimeError("Newton.step: the loss does not depend on the parameters")
        with grad_mode.enable_grad():
            g, H, gs = self._gradient_and_hessian(loss)
        for p, gp in zip(self._params, gs):
            p.grad = None if gp is None else Tensor._wrap(gp._data.copy())
        state["n_iter"] += 1
        f = float(loss)
        if np.abs(g).max(initial=0.0) <= group["tolerance_grad"]:
            return loss

        with grad_mode.no_grad():
            self._damped_step(closure, f, g, H, group, state)
        return loss

    def _damped_step(self, closure, f, g, H, group, state) -> None:
        x0 = self._get_flat()
        n = g.size
        lam = state["damping"]
        lr = _as_float(group["lr"])
        backtracking = group["line_search_fn"] == "backtracking"
        while True:
            p = self._solve_damped(H, g, lam, n)
            accepted = False
            if p is not None:
                gtp = float(g @ p)
                alpha = lr
                for _ in range(max(group["max_ls"], 1) if backtracking else 1):
                    f_new = self._loss_at(closure, x0 + alpha * p)
                    state["func_evals"] += 1
                    if backtracking:  # Armijo: at least c1 of the predicted first-order decrease
                        accepted = f_new <= f + group["c1"] * alpha * gtp
                    else:
                        accepted = f_new < f
                    if accepted:
                        break
                    alpha *= 0.5
            if accepted:
                state["damping"] = max(lam * group["damping_decrease"], group["damping_min"])
                return
            # Rejected (or H + lambda I not positive-definite): more damping, a shorter step
            # closer to the gradient direction.
            lam = max(lam * group["damping_increase"], group["damping_min"])
            if lam > group["damping_max"]:
                self._set_flat(x0)
                state["damping"] = group["damping_max"]
                return

    @staticmethod
    def _solve_damped(H, g, lam, n):
        """p = -(H + lam I)^-1 g, or None when H + lam I is not positive-definite (then p need
        not be a descent direction)."""
        from pydl.linalg import LinAlgError, cholesky, solve

        A = Tensor._wrap(H + lam * np.eye(n, dtype=H.dtype))
        try:
            cholesky(A)
        except LinAlgError:
            return None
        p = solve(A, Tensor._wrap(-g))._data
        return p if np.all(np.isfinite(p)) else None
