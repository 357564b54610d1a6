"""``Adagrad``: per-coordinate learning rates from accumulated squared gradients, as
``torch.optim.Adagrad``."""
from __future__ import annotations

from pydl import _C
from pydl.optim.optimizer import Optimizer, _as_float, _check_hyper


class Adagrad(Optimizer):
    r"""AdaGrad, fused into one C++ call per group.

    PyTorch's update at step :math:`t` (``maximize`` negates :math:`g` first)::

        g     <- g + weight_decay * theta
        clr   =  lr / (1 + (t - 1) * lr_decay)
        r     <- r + g * g                       (r starts at initial_accumulator_value)
        theta <- theta - clr * g / (sqrt(r) + eps)

    With ``lr_decay = 0`` this is the course's Algorithm 3:
    :math:`r \leftarrow r + g \odot g,\ \theta \leftarrow \theta - \frac{\epsilon}{\delta +
    \sqrt{r}} \odot g` with :math:`\epsilon` = ``lr`` and :math:`\delta` = ``eps``.

    Args:
        params: parameters or parameter groups.
        lr: global learning rate (default 1e-2).
        lr_decay: learning-rate decay per step (default 0).
        weight_decay: L2 penalty coefficient (default 0).
        initial_accumulator_value: starting value of r (default 0).
        eps: :math:`\delta`, added to the denominator (default 1e-10).
        maximize: maximize the objective instead of minimizing it.
        foreach, fused: accepted for PyTorch compatibility; pydl always runs its fused kernel.
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        _check_hyper(_as_float(lr) >= 0.0, f"Invalid learning rate: {lr}")
        _check_hyper(lr_decay >= 0.0, f"Invalid lr_decay value: {lr_decay}")
        _check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check_hyper(initial_accumulator_value >= 0.0,
                     f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        _check_hyper(eps >= 0.0, f"Invalid epsilon value: {eps}")
        if differentiable:
            raise ValueError("Adagrad: differentiable=True is not supported by pydl")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=False, fused=fused)
        super().__init__(params, defaults)
        # As in PyTorch, the state exists from construction on (step 0, r = initial value).
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(group, p)

    def _init_state(self, group, p):
        state = self.state[p]
        if "sum" not in state:
            state["step"] = 0.0
            state["sum"] = self._zeros_state(p, float(group["initial_accumulator_value"]))
        return state

    def _step_group(self, group, batch):
        states = [self._init_state(group, p) for p in batch.params]
        steps = [s["step"] + 1 for s in states]
        if batch.kernels is not None:  # CUDA: one multi-tensor launch per step count
            rows = [(a, g, s["sum"]._data) for a, g, s in zip(batch.arrays, batch.grads, states)]
            hyper = (_as_float(group["lr"]), float(group["lr_decay"]),
                     _as_float(group["weight_decay"]), float(group["eps"]))
            self._cuda_steps(batch, rows, steps, lambda table, step: batch.kernels.adagrad_step(
                table, *hyper, int(step), maximize=bool(group["maximize"])))
            for s, t in zip(states, steps):
                s["step"] = t
            return
        _C.adagrad_step(batch.arrays, batch.grads, [s["sum"]._data for s in states], steps,
                        lr=_as_float(group["lr"]), lr_decay=float(group["lr_decay"]),
                        weight_decay=_as_float(group["weight_decay"]), eps=float(group["eps"]),
                        maximize=bool(group["maximize"]))
        for s, t in zip(states, steps):
            s["step"] = t
