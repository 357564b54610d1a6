"""Batch normalization (lecture notes 15): ``batch_norm`` with PyTorch's signature; fused
kernels in csrc/batchnorm.cpp.

Per channel c over the N * L values of a (N, C, *) input:
    training:  mu = mean(x), var = mean((x - mu)^2)  (biased; the running estimate takes the
               unbiased var * M / (M - 1)),  running <- (1 - momentum) running + momentum batch
    eval:      mu, var = running_mean, running_var
    y = (x - mu) / sqrt(var + eps) * gamma + beta       (H' = (H - mu) / sigma, then gamma H' + beta)
Backward is the closed form in one node (not a chain of elementwise ops), two passes over dy and x:
    dbeta = sum dy,  dgamma = sum dy * xhat,
    dx = gamma / sigma * (dy - dbeta / M - xhat * dgamma / M)     (training)
    dx = gamma / sigma * dy                                       (eval: statistics are constants)
"""
from __future__ import annotations

import numpy as np

from pydl import _C
from pydl._cuda_kernels import device_kernels
from pydl.autograd.function import Function
from pydl.ops.conv import _check_tensor


class BatchNorm(Function):
    """Returns (y, batch mean, batch biased var); the statistics are non-differentiable outputs
    that ``batch_norm`` uses for the running estimates. Saves x, the mean and 1/sigma (not xhat:
    x is already alive, xhat would be a second full-size array)."""

    def forward(self, x, weight, bias, training, eps, running_mean, running_var):
        self.training = training
        k = device_kernels(x)
        if k is not None:  # CUDA: pydl._C_cuda's kernels (cuda/batchnorm.cuh) on device arrays
            return self._forward_cuda(k, x, weight, bias, training, eps, running_mean,
                                      running_var)
        x = np.ascontiguousarray(x)
        if training:
            y, mean, var, invstd = _C.batch_norm_forward_train(x, weight, bias, eps)
        else:
            y = _C.batch_norm_forward_eval(x, running_mean, running_var, weight, bias, eps)
            mean = np.array(running_mean, copy=True)
            var = np.array(running_var, copy=True)
            invstd = (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(x.dtype)
        self.save_for_backward(x, weight)
        self.mean, self.invstd = mean, invstd
        self.mark_non_differentiable(mean, var)
        return y, mean, var

    def backward(self, gy, _gmean, _gvar):
        x, weight = self.saved_tensors
        need_dx, need_dw, need_db = (bool(n) for n in self.needs_input_grad[:3])
        k = device_kernels(gy)
        if k is not None:
            return self._backward_cuda(k, gy, x, weight, need_dx, need_dw, need_db)
        gx, gw, gb = _C.batch_norm_backward(np.ascontiguousarray(gy), x, self.mean, self.invstd,
                                            weight, self.training, need_dx, need_dw, need_db)
        return gx, gw, gb, None, None, None, None

    def _forward_cuda(self, k, x, weight, bias, training, eps, running_mean, running_var):
        C = x.shape[1]
        if training:
            # The kernel blends the unbiased batch variance into running_var in place; batch_norm
            # does that blend itself (as on the CPU), so give the kernel zeroed scratch buffers
            # and momentum 1: they receive the batch mean and the unbiased variance exactly.
            mean = k._xp(x).zeros(C, dtype=x.dtype)
            unbiased = k._xp(x).zeros(C, dtype=x.dtype)
            y, save_mean, invstd = k.batch_norm_forward_train(x, weight, bias, mean, unbiased,
                                                              1.0, eps)
            M = x.size // C if C else 0
            var = unbiased * ((M - 1) / M) if M > 1 else unbiased
            mean = save_mean
        else:
            y = k.batch_norm_forward_eval(x, weight, bias, running_mean, running_var, eps)
            mean, var = running_mean.copy(), running_var.copy()
            invstd = (1.0 / (var.astype(np.float64) + eps) ** 0.5).astype(x.dtype)
        self.save_for_backward(x, weight)
        self.mean, self.invstd = mean, invstd
        self.mark_non_differentiable(mean, var)
        return y, mean, var

    def _backward_cuda(self, k, gy, x, weight, need_dx, need_dw, need_db):
        if self.training:
            gx, gw, gb = k.batch_norm_backward_train(x, gy, weight, self.mean, self.invstd,
                                                     (need_dx, need_dw and weight is not None,
                                                      need_db))
            return gx, gw, gb, None, None, None, None
        # Eval mode: the statistics are constants, so every gradient is elementwise work plus a
        # per-channel sum (no dedicated kernel; the array module runs it on the device).
        shape = (1, -1) + (1,) * (x.ndim - 2)
        axes = (0,) + tuple(range(2, x.ndim))
        invstd = self.invstd.reshape(shape)
        gx = gw = gb = None
        if need_dx:
            gx = gy * invstd if weight is None else gy * (weight.reshape(shape) * invstd)
        if need_dw:
            gw = (gy * ((x - self.mean.reshape(shape)) * invstd)).sum(axis=axes)
        if need_db:
            gb = gy.sum(axis=axes)
        return gx, gw, gb, None, None, None, None


def _check_channel_tensor(t, name, C, dtype, op="batch_norm"):
    if t is None:
        return
    _check_tensor(t, name, op)
    if tuple(t.shape) != (C,):
        raise ValueError(f"{op}: {name} must have shape ({C},) for an input with {C} channels, "
                         f"got {tuple(t.shape)}")
    if t.dtype != dtype:
        raise TypeError(f"{op}: {name} dtype {t.dtype} differs from the input dtype {dtype}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel of a (N, C, *) input; see the module docstring.

    In training mode the batch statistics are used and, when running_mean / running_var are
    given, updated in place (running_var with the unbiased variance). In eval mode the running
    statistics are used and must be given."""
    _check_tensor(input, "input", "batch_norm")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected input of shape (N, C, *) with at least 2 dims, "
                         f"got {tuple(input.shape)}")
    C = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_channel_tensor(t, name, C, input.dtype)
    if eps <= 0:
        raise ValueError(f"batch_norm: eps must be positive, got {eps}")
    M = input.data.size // C if C else 0
    if training:
        if M == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {tuple(input.shape)}")
    elif running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var must be given in evaluation "
                         "mode (training=False)")
    y, mean, var = BatchNorm.apply(input, weight, bias, bool(training), float(eps),
                                   None if running_mean is None else running_mean.data,
                                   None if running_var is None else running_var.data)
    if training and M > 0:
        unbiased = var.data * (M / (M - 1))
        for stat, batch in ((running_mean, mean.data), (running_var, unbiased)):
            if stat is not None:
                stat.data *= 1.0 - momentum
                stat.data += (momentum * batch).astype(stat.dtype)
                stat._bump_version()
    return y

