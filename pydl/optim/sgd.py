"""``SGD``: stochastic gradient descent with optional (Nesterov) momentum (``torch.optim.SGD``)."""
from __future__ import annotations

from pydl import _C
from pydl.optim.optimizer import Optimizer, _as_float, _check_hyper


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum, fused into one C++ call per group.

    PyTorch's update, per parameter :math:`\theta` with gradient :math:`g` (``maximize`` negates
    it first)::

        g   <- g + weight_decay * theta
        buf <- g                                   (first step)
        buf <- momentum * buf + (1 - dampening) * g  (later steps)
        d   <- g + momentum * buf   if nesterov  else  buf      (d = g when momentum == 0)
        theta <- theta - lr * d

    With ``dampening=0`` this is the textbook velocity form (course notes, Algorithm 2)
    :math:`v \leftarrow \alpha v - \epsilon g,\ \theta \leftarrow \theta + v` with
    :math:`\alpha` = ``momentum``, :math:`\epsilon` = ``lr`` and :math:`v = -\epsilon\,buf`
    (exactly, while ``lr`` is constant). ``weight_decay`` is the L2 penalty
    :math:`\frac{\lambda}{2}\|\theta\|^2` folded into the gradient.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (default 1e-3, as in PyTorch 2.x).
        momentum: momentum factor :math:`\alpha` (default 0).
        dampening: dampening of the gradient in the momentum (default 0).
        weight_decay: L2 penalty coefficient (default 0).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize: maximize the objective instead of minimizing it.
        foreach, fused: accepted for PyTorch compatibility; pydl always runs its fused kernel.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        _check_hyper(_as_float(lr) >= 0.0, f"Invalid learning rate: {lr}")
        _check_hyper(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        _check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        if differentiable:
            raise ValueError("SGD: differentiable=True is not supported by pydl")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=False, fused=fused)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _step_group(self, group, batch):
        momentum = float(group["momentum"])
        buffers, init, states = [], [], []
        if momentum != 0:
            states = list(map(self.state.__getitem__, batch.params))
            buffers = [s.get("momentum_buffer") for s in states]
            init = [buf is None for buf in buffers]
            if True in init:
                # New buffers are allocated together (see _zeros_states); their contents are
                # never read: the kernel sets each to its gradient.
                fresh = iter(self._zeros_states([p for p, i in zip(batch.params, init) if i]))
                buffers = [next(fresh) if i else buf for buf, i in zip(buffers, init)]
        if batch.kernels is not None:  # CUDA: one multi-tensor launch (cuda/optim.cuh)
            hyper = (_as_float(group["lr"]), momentum, float(group["dampening"]),
                     _as_float(group["weight_decay"]), bool(group["nesterov"]),
                     bool(group["maximize"]))
            rows = [(a, g) + ((buffers[i]._data,) if momentum != 0 else ())
                    for i, (a, g) in enumerate(zip(batch.arrays, batch.grads))]
            self._cuda_steps(batch, rows, init or [False] * len(rows),
                             lambda table, first: batch.kernels.sgd_step(table, *hyper,
                                                                         first_step=first))
        else:
            _C.sgd_step(batch.arrays, batch.grads, [b._data for b in buffers], init,
                        lr=_as_float(group["lr"]), momentum=momentum,
                        dampening=float(group["dampening"]),
                        weight_decay=_as_float(group["weight_decay"]),
                        nesterov=bool(group["nesterov"]), maximize=bool(group["maximize"]))
        if True in init:  # (existing buffers are already in the state)
            for s, buf in zip(states, buffers):
                s["momentum_buffer"] = buf
