"""``RMSprop``: AdaGrad with a moving average of squared gradients, as ``torch.optim.RMSprop``."""
from __future__ import annotations

from pydl import _C
from pydl.optim.optimizer import Optimizer, _as_float, _check_hyper


class RMSprop(Optimizer):
    r"""RMSprop, fused into one C++ call per group.

    PyTorch's update (``maximize`` negates :math:`g` first)::

        g   <- g + weight_decay * theta
        r   <- alpha * r + (1 - alpha) * g * g
        centered:  ga <- ga + (1 - alpha) * (g - ga);  avg = sqrt(r - ga * ga) + eps
        otherwise: avg = sqrt(r) + eps
        momentum > 0:  buf <- momentum * buf + g / avg;  theta <- theta - lr * buf
        otherwise:     theta <- theta - lr * g / avg

    The textbook RMSProp (Goodfellow et al., Algorithm 8.5) is
    :math:`r \leftarrow \rho r + (1-\rho) g \odot g,\ \theta \leftarrow \theta -
    \frac{\epsilon}{\sqrt{\delta + r}} \odot g` with :math:`\rho` = ``alpha``; PyTorch (and
    pydl) add :math:`\delta` = ``eps`` outside the square root instead. ``centered`` divides by
    an estimate of the gradient's standard deviation instead of its root mean square.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-2).
        alpha: smoothing constant :math:`\rho` (default 0.99).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty coefficient (default 0).
        momentum: momentum factor (default 0).
        centered: normalize by the estimated variance of the gradient (default False).
        maximize: maximize the objective instead of minimizing it.
        foreach: accepted for PyTorch compatibility; pydl always runs its fused kernel.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        _check_hyper(_as_float(lr) >= 0.0, f"Invalid learning rate: {lr}")
        _check_hyper(eps >= 0.0, f"Invalid epsilon value: {eps}")
        _check_hyper(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        _check_hyper(alpha >= 0.0, f"Invalid alpha value: {alpha}")
        if differentiable or capturable:
            raise ValueError("RMSprop: differentiable and capturable are not supported "
                             "by pydl")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=False, foreach=foreach,
                        maximize=maximize, differentiable=False)
        super().__init__(params, defaults)

    def _step_group(self, group, batch):
        momentum = float(group["momentum"])
        centered = bool(group["centered"])
        states = []
        for p in batch.params:
            state = self.state[p]
            if len(state) == 0:
                state["step"] = 0.0
                state["square_avg"] = self._zeros_state(p)
                if momentum > 0:
                    state["momentum_buffer"] = self._zeros_state(p)
                if centered:
                    state["grad_avg"] = self._zeros_state(p)
            # Options switched on after the first step start from zero buffers.
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = self._zeros_state(p)
            if centered and "grad_avg" not in state:
                state["grad_avg"] = self._zeros_state(p)
            states.append(state)
        if batch.kernels is not None:  # CUDA: one multi-tensor launch; buffer order as the kernel
            rows = [(a, g, s["square_avg"]._data)
                    + ((s["momentum_buffer"]._data,) if momentum > 0 else ())
                    + ((s["grad_avg"]._data,) if centered else ())
                    for a, g, s in zip(batch.arrays, batch.grads, states)]
            hyper = (_as_float(group["lr"]), float(group["alpha"]), float(group["eps"]),
                     _as_float(group["weight_decay"]), momentum, centered,
                     bool(group["maximize"]))
            self._cuda_steps(batch, rows, [None] * len(rows),
                             lambda table, _: batch.kernels.rmsprop_step(table, *hyper))
            for s in states:
                s["step"] += 1
            return
        _C.rmsprop_step(
            batch.arrays, batch.grads, [s["square_avg"]._data for s in states],
            [s["grad_avg"]._data for s in states] if centered else [],
            [s["momentum_buffer"]._data for s in states] if momentum > 0 else [],
            lr=_as_float(group["lr"]), alpha=float(group["alpha"]), eps=float(group["eps"]),
            weight_decay=_as_float(group["weight_decay"]), momentum=momentum, centered=centered,
            maximize=bool(group["maximize"]))
        for s in states:
            s["step"] += 1
