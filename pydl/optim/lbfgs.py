"""``LBFGS``: limited-memory BFGS with an optional strong-Wolfe line search, with
``torch.optim.LBFGS``'s interface and algorithm (itself minFunc's), step for step.

The algorithm works on all parameters as one flat vector x with gradient g:

* direction: d = -H g, where H approximates the inverse Hessian from the last ``history_size``
  pairs (s, y) = (x_{k+1} - x_k, g_{k+1} - g_k) by the two-loop recursion (Nocedal and Wright,
  Algorithm 7.4), scaled by gamma = s^T y / y^T y; a pair is kept only if s^T y > 1e-10 (the
  curvature condition that keeps H positive-definite). The first direction is -g.
* step length t: ``lr`` (the first iteration: min(1, 1 / ||g||_1) * lr), or the point the
  strong-Wolfe line search finds, starting from that t (cubic interpolation, bracketing then
  zooming: minFunc's lswolfe).
* stops after ``max_iter`` iterations or ``max_eval`` evaluations per ``step``, or when
  max |g| <= ``tolerance_grad``, or when the step, the loss change or the directional
  derivative falls below ``tolerance_change``.

This is the quasi-Newton counterpart of the course's Newton step theta <- theta - H^-1 grad
(lecture notes 5.9): H^-1 is never formed, only its product with g from the stored pairs.
Scalars (dot products, t, gamma) are kept in the parameters' dtype as PyTorch's 0-d tensors
are, so a float32 run follows PyTorch's float32 run up to rounding.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from pydl.autograd import grad_mode
from pydl.device import array_module
from pydl.optim.optimizer import Optimizer, _as_float
from pydl.tensor import Tensor


def _array(x):
    return x._data if isinstance(x, Tensor) else x


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2, clipped to
    ``bounds`` (default [min(x1, x2), max(x1, x2)]); the bounds' midpoint when the cubic has no
    real minimiser."""
    if bounds is not None:
        lo, hi = bounds
    else:
        lo, hi = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, lo), hi)
    return (lo + hi) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """Find t with f(x + t d) <= f + c1 t g^T d (sufficient decrease) and
    |g(x + t d)^T d| <= -c2 g^T d (curvature): first bracket such a t, growing it by cubic
    extrapolation, then shrink the bracket by cubic interpolation. Returns (f, g, t, evals)."""
    xp = array_module(d)
    d_norm = xp.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    evals = 1
    gtd_new = g_new.dot(d)

    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    bracket = bracket_f = bracket_g = bracket_gtd = None
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        # Extrapolate: the cubic's minimiser, at least 1% further and at most 10x.
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        t_prev, t = t, _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                          bounds=(min_step, max_step))
        f_prev, g_prev, gtd_prev = f_new, g_new.copy(), gtd_new
        f_new, g_new = obj_func(x, t, d)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # Zoom: shrink the bracket until a point meets both conditions.
    insuf_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])
        # A point too close to an end of the bracket makes little progress: after one such
        # point (or one outside the bracket), move it to 10% of the bracket from that end.
        lo_b, hi_b = min(bracket), max(bracket)
        eps = 0.1 * (hi_b - lo_b)
        if min(hi_b - t, t - lo_b) < eps:
            if insuf_progress or t >= hi_b or t <= lo_b:
                t = hi_b - eps if abs(t - hi_b) < abs(t - lo_b) else lo_b + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = obj_func(x, t, d)
        evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low]:
            # Not a sufficient decrease, or not below the low end: t becomes the high end.
            bracket[high], bracket_f[high] = t, f_new
            bracket_g[high], bracket_gtd[high] = g_new.copy(), gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                # The minimum lies on the other side of t: the old low end becomes the high one.
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low] = t, f_new
            bracket_g[low], bracket_gtd[low] = g_new.copy(), gtd_new

    return bracket_f[low], bracket_g[low], bracket[low], evals


class LBFGS(Optimizer):
    """L-BFGS (``torch.optim.LBFGS``): each ``step(closure)`` runs up to ``max_iter``
    quasi-Newton iterations, re-evaluating the loss through ``closure``.

    Args:
        params: the parameters (one group only, as in PyTorch).
        lr: step length scale (default 1).
        max_iter: iterations per ``step`` (default 20).
        max_eval: function evaluations per ``step`` (default max_iter * 5 // 4).
        tolerance_grad: stop when max |g| <= this (default 1e-7).
        tolerance_change: stop when the step, the loss change or g^T d is below this
            (default 1e-9).
        history_size: number of (s, y) pairs kept (default 100).
        line_search_fn: None (fixed step ``lr``) or ``"strong_wolfe"``.

    ``closure`` clears the gradients, computes the loss, calls ``backward()`` and returns the
    loss; it is called with grad mode on. ``step`` returns the loss of its first evaluation.
    All state is kept with the first parameter (``state[params[0]]``), as in PyTorch.
    """

    def __init__(self, params, lr=1, max_iter: int = 20, max_eval=None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn=None):
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= _as_float(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"{line_search_fn!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        dtypes = {p.dtype for p in self._params}
        if len(dtypes) != 1 or next(iter(dtypes)).kind != "f":
            raise TypeError(f"LBFGS: parameters must share one floating dtype, got "
                            f"{sorted(str(d) for d in dtypes)}")

    # -- the parameters as one flat vector ---------------------------------------------------------
    def _flat_grad(self):
        parts = []
        for p in self._params:
            g = p.grad
            if g is None:
                parts.append(array_module(p._data).zeros(p._data.size, dtype=p.dtype))
            else:
                parts.append((g._data if isinstance(g, Tensor) else g).reshape(-1))
        xp = array_module(parts[0])
        return xp.concatenate(parts).astype(self._params[0].dtype, copy=False)

    def _add_to_params(self, step_size, direction) -> None:
        """x <- x + step_size * direction, in place (the parameters' versions move on)."""
        offset = 0
        for p in self._params:
            n = p._data.size
            p._data += (step_size * direction[offset:offset + n]).reshape(p.shape)
            p._bump_version()
            offset += n

    def _copy_params(self):
        return [p._data.copy() for p in self._params]

    def _set_params(self, values) -> None:
        for p, v in zip(self._params, values):
            p._data[...] = v
            p._bump_version()

    def _evaluate_at(self, closure, x, t, d):
        """Loss and flat gradient at x + t d; the parameters are put back to x afterwards."""
        self._add_to_params(t, d)
        with grad_mode.enable_grad():
            loss = float(closure())
        flat_grad = self._flat_grad()
        self._set_params(x)
        return loss, flat_grad

    # -- the iteration -----------------------------------------------------------------------------
    def step(self, closure: Callable):
        """Run up to ``max_iter`` L-BFGS iterations; returns the closure's first loss."""
        if closure is None:
            raise RuntimeError("LBFGS.step requires a closure that re-evaluates the model and "
                               "returns the loss")
        with grad_mode.no_grad():
            return self._step(closure)

    def _step(self, closure):
        group = self.param_groups[0]
        lr = _as_float(group["lr"])
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with grad_mode.enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1

        flat_grad = self._flat_grad()
        xp = array_module(flat_grad)
        if xp.abs(flat_grad).max() <= tolerance_grad:
            return orig_loss

        # Restored state (load_state_dict) holds Tensors where a running one holds arrays.
        d = _array(state.get("d"))
        t = state.get("t")
        old_dirs = state.get("old_dirs")  # y_i = g_{i+1} - g_i
        old_stps = state.get("old_stps")  # s_i = x_{i+1} - x_i
        ro = state.get("ro")              # 1 / (y_i^T s_i)
        H_diag = state.get("H_diag")      # gamma, the scale of the initial inverse Hessian
        prev_flat_grad = _array(state.get("prev_flat_grad"))
        if old_dirs is not None:
            old_dirs, old_stps = [_array(y) for y in old_dirs], [_array(s) for s in old_stps]
        prev_loss = state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # -- direction ---------------------------------------------------------------
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y.dot(s)
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / y.dot(y)
                # Two-loop recursion: d = -H g.
                num_old = len(old_dirs)
                al = [None] * num_old
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = old_stps[i].dot(q) * ro[i]
                    q = q - al[i] * old_dirs[i]
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = old_dirs[i].dot(r) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]

            prev_flat_grad = flat_grad.copy()
            prev_loss = loss

            # -- step length ---------------------------------------------------------------
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / xp.abs(flat_grad).sum()) * lr
            else:
                t = lr
            gtd = flat_grad.dot(d)  # directional derivative
            if gtd > -tolerance_change:
                break

            ls_evals = 0
            if line_search_fn is not None:
                x_init = self._copy_params()

                def obj_func(x, t, d):
                    return self._evaluate_at(closure, x, t, d)

                loss, flat_grad, t, ls_evals = _strong_wolfe(obj_func, x_init, t, d, loss,
                                                             flat_grad, gtd,
                                                             max_ls=max_eval - current_evals)
                self._add_to_params(t, d)
                opt_cond = xp.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add_to_params(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    # Not after the last iteration: the next step() evaluates there anyway.
                    with grad_mode.enable_grad():
                        loss = float(closure())
                    flat_grad = self._flat_grad()
                    opt_cond = xp.abs(flat_grad).max() <= tolerance_grad
                    ls_evals = 1
            current_evals += ls_evals
            state["func_evals"] += ls_evals

            # -- stopping ------------------------------------------------------------------
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if xp.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss
