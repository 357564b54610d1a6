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
That backward is an op of its own (``BatchNormBackward``: the fused kernel forward, the second
derivatives as its backward), so ``create_graph=True`` differentiates batch norm twice and more.
"""
from __future__ import annotations

import numpy as np

from pydl import _C
from pydl._cuda_kernels import device_kernels
from pydl.autograd.function import Function
from pydl.ops.conv import _check_tensor
from pydl.ops.elementwise import Rsqrt, zeros_like
from pydl.ops.reduction import Mean, Sum
from pydl.ops.shape import Expand, Reshape
from pydl.tensor import Tensor


class BatchNorm(Function):
    """Returns (y, batch mean, batch biased var); the statistics are non-differentiable outputs
    that ``batch_norm`` uses for the running estimates. Saves x, the mean and 1/sigma (not xhat:
    x is already alive, xhat would be a second full-size array). x is saved as given (the
    kernel's contiguous copy, if one was needed, is not kept) so that under create_graph it is
    the input tensor itself."""

    def forward(self, x, weight, bias, training, eps, running_mean, running_var):
        self.training, self.eps = training, eps
        k = device_kernels(x)
        if k is not None:  # CUDA: pydl._C_cuda's kernels (cuda/batchnorm.cuh) on device arrays
            return self._forward_cuda(k, x, weight, bias, training, eps, running_mean,
                                      running_var)
        xc = np.ascontiguousarray(x)
        if training:
            y, mean, var, invstd = _C.batch_norm_forward_train(xc, weight, bias, eps)
        else:
            y = _C.batch_norm_forward_eval(xc, running_mean, running_var, weight, bias, eps)
            mean = np.array(running_mean, copy=True)
            var = np.array(running_var, copy=True)
            invstd = (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(x.dtype)
        self.save_for_backward(x, weight)
        self.mean, self.invstd = mean, invstd
        self.mark_non_differentiable(mean, var)
        return y, mean, var

    def backward(self, gy, _gmean, _gvar):
        x, weight = self.saved_tensors
        need = self.needs_input_grad[:3]
        if isinstance(gy, Tensor):
            # create_graph: the gradients as a recorded op, differentiable again
            gx, gw, gb = _spread(BatchNormBackward.apply(gy, x, weight, self.mean, self.invstd,
                                                         self.training, self.eps, need), need)
        else:
            # first order: the same kernel without building a node (what .call would do)
            gx, gw, gb = _batch_norm_grads(gy, x, weight, self.mean, self.invstd, self.training,
                                           need)
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


class BatchNormBackward(Function):
    """The gradients (dx, dgamma, dbeta) of batch norm, as an op: forward is the fused kernel
    (``need`` says which of the three to compute and return, in that order), backward the
    second derivatives.

    Per channel, with <.> the mean over its M values, s = 1 / sigma, xhat = (x - mu) s and
    P(v) = s (v - <v> - xhat <v xhat>) (the first-order input gradient for gamma = 1), the
    first order is dx = gamma P(dy), dgamma = M <dy xhat>, dbeta = M <dy>. For incoming
    gradients (ggx, gggamma, ggbeta) of those (PyTorch's batchnorm_double_backward):
        d/ddy    = gamma P(ggx) + gggamma xhat + ggbeta
        d/dgamma = sum ggx P(dy)
        d/dx     = gggamma P(dy) + gamma s^2 [xhat (3 a b - <ggx dy> + <ggx><dy>)
                                              - b (ggx - <ggx>) - a (dy - <dy>)]
    with a = <ggx xhat>, b = <dy xhat> (training: mu and s depend on x). In eval mode mu and s
    are constants: d/ddy = gamma s ggx + gggamma xhat + ggbeta, d/dgamma = sum ggx s dy,
    d/dx = gggamma s dy. mu and s are recomputed from x with differentiable ops, so these
    formulas differentiate again (third order)."""

    def forward(self, gy, x, weight, mean, invstd, training, eps, need):
        self.save_for_backward(gy, x, weight)
        self.stats, self.training, self.eps, self.need = (mean, invstd), training, eps, need
        grads = _batch_norm_grads(gy, x, weight, mean, invstd, training, need)
        # Only the requested gradients are outputs (an op's outputs are arrays, never None).
        return tuple(grads) if all(need) else tuple(g for g, n in zip(grads, need) if n)

    def backward(self, *ggs):
        gy, x, weight = self.saved_tensors
        ggx, ggw, ggb = _spread(ggs, self.need)
        need_gy, need_x, need_w = self.needs_input_grad[:3]
        C = x.shape[1]
        numel = int(np.prod(x.shape))
        if numel == 0:
            return (zeros_like(gy) if need_gy else None, zeros_like(x) if need_x else None,
                    zeros_like(weight) if need_w else None, None, None, None, None, None)
        chan = (1, C) + (1,) * (len(x.shape) - 2)
        axes = (0,) + tuple(range(2, len(x.shape)))

        def per_channel(v):  # (C,) -> broadcastable against x
            return Reshape.call(v, chan, False)

        def mean_c(v):  # <v>, keeping dims
            return Mean.call(v, axes, True)

        def sum_c(v):  # sum over each channel's values, as (C,)
            return Sum.call(v, axes, False)

        gamma = 1 if weight is None else per_channel(weight)
        if self.training:
            mu = mean_c(x)
            xc = x - mu
            s = Rsqrt.call(mean_c(xc * xc) + self.eps)
        else:
            mean, invstd = self.stats
            xc = x - per_channel(mean)
            s = per_channel(invstd)
        xhat = xc * s

        def project(v):  # P(v): the first-order input gradient for gamma = 1
            if not self.training:
                return s * v
            return s * (v - mean_c(v) - xhat * mean_c(v * xhat))

        dgy = dx = dw = None
        if ggx is not None:
            if need_gy:
                dgy = gamma * project(ggx)
            if need_w:
                dw = sum_c(ggx * project(gy))
            if need_x and self.training:
                a, b = mean_c(ggx * xhat), mean_c(gy * xhat)
                mean_gy, mean_ggx = mean_c(gy), mean_c(ggx)
                inner = xhat * (3 * a * b - mean_c(ggx * gy) + mean_ggx * mean_gy) \
                    - b * (ggx - mean_ggx) - a * (gy - mean_gy)
                dx = gamma * (s * s) * inner
        if ggw is not None:
            ggw_c = per_channel(ggw)
            if need_gy:
                term = ggw_c * xhat
                dgy = term if dgy is None else dgy + term
            if need_x:
                term = ggw_c * project(gy)
                dx = term if dx is None else dx + term
        if ggb is not None and need_gy:
            term = Expand.call(per_channel(ggb), tuple(x.shape))
            dgy = term if dgy is None else dgy + term
        if need_gy and dgy is None:
            dgy = zeros_like(gy)
        if need_x and dx is None:
            dx = zeros_like(x)
        if need_w and dw is None:
            dw = zeros_like(weight)
        return dgy, dx, dw, None, None, None, None, None


def _batch_norm_grads(gy, x, weight, mean, invstd, training, need):
    """(dx, dgamma, dbeta) from the fused kernel, None where ``need`` says not needed."""
    k = device_kernels(gy)
    if k is None:
        return _C.batch_norm_backward(np.ascontiguousarray(gy), np.ascontiguousarray(x), mean,
                                      invstd, weight, training, *need)
    need_dx, need_dw, need_db = need
    if training:  # CUDA: pydl._C_cuda's kernels
        return k.batch_norm_backward_train(x, gy, weight, mean, invstd,
                                           (need_dx, need_dw and weight is not None, need_db))
    # Eval mode: the statistics are constants, so every gradient is elementwise work plus a
    # per-channel sum (no dedicated kernel; the array module runs it on the device).
    shape = (1, -1) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))
    invstd = invstd.reshape(shape)
    gx = gw = gb = None
    if need_dx:
        gx = gy * invstd if weight is None else gy * (weight.reshape(shape) * invstd)
    if need_dw:
        gw = (gy * ((x - mean.reshape(shape)) * invstd)).sum(axis=axes)
    if need_db:
        gb = gy.sum(axis=axes)
    return gx, gw, gb


def _spread(values, need):
    """(dx, dgamma, dbeta) from the values of the requested ones (None for the others)."""
    if len(values) == 3:
        return values
    it = iter(values)
    return tuple(next(it) if n else None for n in need)


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
    M = input._data.size // C if C else 0
    if training:
        if M == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {tuple(input.shape)}")
    elif running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var must be given in evaluation "
                         "mode (training=False)")
    y, mean, var = BatchNorm.apply(input, weight, bias, bool(training), float(eps),
                                   None if running_mean is None else running_mean._data,
                                   None if running_var is None else running_var._data)
    if training and M > 0:
        unbiased = var._data * (M / (M - 1))
        for stat, batch in ((running_mean, mean._data), (running_var, unbiased)):
            if stat is not None:
                stat._data *= 1.0 - momentum
                stat._data += (momentum * batch).astype(stat.dtype)
                stat._bump_version()
    return y

