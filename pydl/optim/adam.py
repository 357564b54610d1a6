"""``Adam`` and ``AdamW``: adaptive moment estimation, as ``torch.optim.Adam`` / ``AdamW``."""
from __future__ import annotations

from pydl import _C
from pydl.optim.optimizer import Optimizer, _as_float, _check_hyper


class Adam(Optimizer):
    r"""Adam, fused into one C++ call per group (all parameters, all four state arrays).

    PyTorch's update at step :math:`t` (per parameter; ``maximize`` negates :math:`g` first)::

        g     <- g + weight_decay * theta            (Adam: L2 penalty in the gradient)
        theta <- theta * (1 - lr * weight_decay)     (AdamW / decoupled_weight_decay instead)
        m     <- beta1 * m + (1 - beta1) * g         (computed as lerp(m, g, 1 - beta1))
        v     <- beta2 * v + (1 - beta2) * g * g
        vmax  <- max(vmax, v)                        (amsgrad; then v := vmax below)
        theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    This is Kingma & Ba's algorithm :math:`\hat m = m / (1-\beta_1^t)`, :math:`\hat v = v /
    (1-\beta_2^t)`, :math:`\theta \leftarrow \theta - \epsilon \hat m / (\sqrt{\hat v} + \delta)`
    with :math:`\epsilon` = ``lr``, :math:`\delta` = ``eps``. The step count :math:`t` is kept per
    parameter (``state[p]['step']``), so a parameter that skipped steps (no gradient) has its
    own bias correction, as in PyTorch.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-3).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty (Adam) or decoupled decay (AdamW) coefficient (default 0).
        amsgrad: use the running maximum of v (default False).
        maximize: maximize the objective instead of minimizing it.
        decoupled_weight_decay: apply weight decay as AdamW does.
        foreach, fused: accepted for PyTorch compatibility; pydl always runs its fused kernel.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        _check_hyper(_as_float(lr) >= 0.0, f"Invalid learning rate: {lr}")
        _check_hyper(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check_hyper(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check_hyper(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        _check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        if differentiable or capturable:
            raise ValueError(f"{type(self).__name__}: differentiable and capturable are "
                             "not supported by pydl")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach, capturable=False,
                        differentiable=False, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _step_group(self, group, batch):
        amsgrad = bool(group["amsgrad"])
        beta1, beta2 = group["betas"]
        states = list(map(self.state.__getitem__, batch.params))
        # New state buffers of a step are allocated together (see _zeros_states).
        fresh = [p for p, s in zip(batch.params, states) if len(s) == 0]
        if fresh:
            for p, m, v in zip(fresh, self._zeros_states(fresh), self._zeros_states(fresh)):
                self.state[p].update(step=0.0, exp_avg=m, exp_avg_sq=v)
        if amsgrad:
            fresh = [p for p, s in zip(batch.params, states) if "max_exp_avg_sq" not in s]
            for p, vmax in zip(fresh, self._zeros_states(fresh)):
                self.state[p]["max_exp_avg_sq"] = vmax
        steps = [s["step"] + 1 for s in states]
        if batch.kernels is not None:  # CUDA: one multi-tensor launch per step count
            rows = [(a, g, s["exp_avg"]._data, s["exp_avg_sq"]._data)
                    + ((s["max_exp_avg_sq"]._data,) if amsgrad else ())
                    for a, g, s in zip(batch.arrays, batch.grads, states)]
            hyper = (_as_float(group["lr"]), _as_float(beta1), _as_float(beta2),
                     float(group["eps"]), _as_float(group["weight_decay"]))
            flags = dict(decoupled=bool(group.get("decoupled_weight_decay", False)),
                         amsgrad=amsgrad, maximize=bool(group["maximize"]))
            self._cuda_steps(batch, rows, steps, lambda table, step: batch.kernels.adam_step(
                table, *hyper, int(step), **flags))
            for s, t in zip(states, steps):
                s["step"] = t
            return
        _C.adam_step(
            batch.arrays, batch.grads, [s["exp_avg"]._data for s in states],
            [s["exp_avg_sq"]._data for s in states],
            [s["max_exp_avg_sq"]._data for s in states] if amsgrad else [], steps,
            lr=_as_float(group["lr"]), beta1=_as_float(beta1), beta2=_as_float(beta2),
            eps=float(group["eps"]), weight_decay=_as_float(group["weight_decay"]),
            amsgrad=amsgrad, maximize=bool(group["maximize"]),
            decoupled_weight_decay=bool(group.get("decoupled_weight_decay", False)))
        for s, t in zip(states, steps):
            s["step"] = t


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``:
    :math:`\theta \leftarrow \theta (1 - \mathrm{lr}\,\lambda)` before the Adam step, instead of
    adding :math:`\lambda\theta` to the gradient. Same arguments as :class:`Adam`, with
    ``weight_decay`` defaulting to 1e-2.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
