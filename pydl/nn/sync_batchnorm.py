"""``nn.SyncBatchNorm``: batch norm whose training statistics are over the global batch, every
rank's part of it (as ``torch.nn.SyncBatchNorm``).

Per channel, with M the element count over all ranks:
    mean = allreduce(sum x) / M,   var = allreduce(sum (x - mean)^2) / M   (two passes: no
    cancellation of E[x^2] - mean^2),   y = (x - mean) / sqrt(var + eps) * weight + bias.
The forward is made of differentiable ops and one differentiable all-reduce (``_AllReduceSum``:
its backward is again a sum over ranks, since every rank's loss depends on every rank's
partial sums). So backward is exact and needs no formula of its own: dx on each rank gets the
global sum(dy) and sum(dy * xhat) terms, and weight/bias gradients are local sums that
DistributedDataParallel then averages (as torch). It also differentiates twice.
Outside training (or with no process group) it is ordinary batch norm.
"""
from __future__ import annotations

import numpy as np

from pydl.autograd import grad_mode
from pydl.autograd.function import Function
from pydl.nn.batchnorm import _BatchNorm
from pydl.tensor import Tensor


class _AllReduceSum(Function):
    """The sum over ranks of a tensor; differentiable (the backward all-reduces too)."""

    def forward(self, x):
        from pydl import distributed as dist

        out = x.copy()
        dist.all_reduce(Tensor._wrap(out), op=dist.ReduceOp.SUM)
        return out

    def backward(self, g):
        return _AllReduceSum.call(g)


def all_reduce_sum(t: Tensor) -> Tensor:
    """``t`` summed over all ranks, as a differentiable op (torch's functional all_reduce)."""
    return _AllReduceSum.apply(t)


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, *) input with statistics synchronised over the process group."""
    _input_dims = (2, 3, 4, 5)
    _input_desc = "at least 2-D (N, C, *)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.process_group = process_group

    def forward(self, input):
        from pydl import distributed as dist

        use_batch_stats = self.training or self.running_mean is None
        if not use_batch_stats or not dist.is_initialized():
            return super().forward(input)
        self._check_input(input)
        axes = (0,) + tuple(range(2, input.ndim))
        shape = (1, self.num_features) + (1,) * (input.ndim - 2)
        local = np.array([input.shape[0] * int(np.prod(input.shape[2:], dtype=np.int64))],
                         dtype=np.int64)
        count = Tensor._wrap(local)
        dist.all_reduce(count, group=self.process_group)
        m = int(count._data[0])
        if m <= 1:
            raise ValueError(f"SyncBatchNorm: expected more than 1 value per channel when "
                             f"training over all ranks, got input of size {tuple(input.shape)} "
                             f"({m} in all)")
        mean = all_reduce_sum(input.sum(dim=axes)) / m
        centered = input - mean.reshape(shape)
        var = all_reduce_sum((centered * centered).sum(dim=axes)) / m
        invstd = (var + self.eps).rsqrt()
        y = centered * invstd.reshape(shape)
        if self.weight is not None:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data += 1
            factor = (1.0 / float(self.num_batches_tracked._data) if self.momentum is None
                      else self.momentum)
            with grad_mode.no_grad():
                rm, rv = self.running_mean._data, self.running_var._data
                rm[...] = (1 - factor) * rm + factor * mean._data
                rv[...] = (1 - factor) * rv + factor * var._data * (m / (m - 1))
            self.running_mean._vc[0] += 1
            self.running_var._vc[0] += 1
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every BatchNorm*d replaced by a SyncBatchNorm holding the same
        parameters and running statistics (returns the new module when ``module`` itself is
        one)."""
        out = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats, process_group,
                                dtype=module.weight.dtype if module.affine else None)
            if module.affine:
                out.weight, out.bias = module.weight, module.bias
            if module.track_running_stats:
                out.running_mean = module.running_mean
                out.running_var = module.running_var
                out.num_batches_tracked = module.num_batches_tracked
            out.train(module.training)
        for name, child in list(module.named_children()):
            new = cls.convert_sync_batchnorm(child, process_group)
            if new is not child:
                setattr(module, name, new)
        return out
