"""Layer and group normalization (``F.layer_norm``, ``F.group_norm``): one fused C++ kernel pair
for both (csrc/norm/group_norm.cpp), as batch norm has.

Both normalise groups of values by their own mean and biased variance, then apply a learned
per-element (LayerNorm) or per-channel (GroupNorm) affine map:

    y = (x - mean) / sqrt(var + eps) * weight + bias

LayerNorm (Ba et al.) takes the statistics over the trailing ``normalized_shape`` dims of each
sample; GroupNorm (Wu & He) over each group of C / G channels (and all positions) of an
(N, C, *) input. Unlike batch norm there are no running statistics: training and evaluation
compute the same thing. Both are the kernel's (N, G, K, L) view: LayerNorm is
(prod(leading), 1, prod(normalized_shape), 1), GroupNorm (N, G, C / G, prod(*)).

Backward, per group with xhat = (x - mean) rstd and dxhat = dy * weight:
    dx = rstd (dxhat - <dxhat> - xhat <dxhat xhat>),  dweight = sum dy xhat,  dbias = sum dy.
First order runs the fused kernel. Under create_graph the same formula is written with
differentiable ops (mean and rstd recomputed from x), so it differentiates to any order.
"""
from __future__ import annotations

import numpy as np

from pydl import _C
from pydl.autograd.function import Function
from pydl.ops.elementwise import Rsqrt
from pydl.ops.reduction import Mean, Sum
from pydl.ops.shape import Reshape
from pydl.tensor import Tensor

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _use_kernel(x) -> bool:
    return isinstance(x, np.ndarray) and x.dtype in _KERNEL_DTYPES


class GroupNorm(Function):
    """y = normalised x over each (n, g) of the (N, G, K, L) view, times weight[g, k] plus
    bias[g, k]. Saves x and weight (the inputs) and mean, rstd (small: N * G values, used only
    by the first-order kernel; create_graph recomputes them from x)."""

    def forward(self, x, weight, bias, view, eps):
        self.view, self.eps = view, eps
        self.bias_shape = None if bias is None else bias.shape
        N, G, K, L = view
        self.save_for_backward(x, weight)
        if _use_kernel(x):
            y, mean, rstd = _C.group_norm_forward(
                np.ascontiguousarray(x), None if weight is None else np.ascontiguousarray(weight),
                None if bias is None else np.ascontiguousarray(bias), N, G, K, L, eps)
            self.stats = (mean, rstd)
            return y
        # Other dtypes and devices: the same arithmetic with the array module.
        self.stats = None
        y = _composite_forward(x, weight, bias, view, eps)
        return y

    def backward(self, gy):
        x, weight = self.saved_tensors
        need_x, need_w, need_b = self.needs_input_grad[:3]
        if self.stats is not None and not isinstance(gy, Tensor):
            mean, rstd = self.stats
            N, G, K, L = self.view
            dx, dw, db = _C.group_norm_backward(
                np.ascontiguousarray(gy), np.ascontiguousarray(x), mean, rstd,
                None if weight is None else np.ascontiguousarray(weight), N, G, K, L,
                bool(need_x), bool(need_w and weight is not None), bool(need_b))
            if dw is not None:
                dw = dw.reshape(weight.shape)
            if db is not None:
                db = db.reshape(self.bias_shape)
            return dx, dw, db, None, None
        return _composite_backward(gy, x, weight, self.view, self.eps,
                                   (need_x, need_w, need_b), self.bias_shape) + (None, None)


def _stats(x4, eps):
    mu = Mean.call(x4, (2, 3), True)
    xc = x4 - mu
    rstd = Rsqrt.call(Mean.call(xc * xc, (2, 3), True) + eps)
    return xc * rstd, rstd


def _composite_forward(x, weight, bias, view, eps):
    N, G, K, L = view
    xhat, _ = _stats(Reshape.call(x, view, False), eps)
    y = xhat
    if weight is not None:
        y = y * Reshape.call(weight, (1, G, K, 1), False)
    if bias is not None:
        y = y + Reshape.call(bias, (1, G, K, 1), False)
    return Reshape.call(y, x.shape, False)


def _composite_backward(gy, x, weight, view, eps, need, bias_shape):
    """(dx, dweight, dbias) written with ops (arrays or Tensors alike)."""
    N, G, K, L = view
    need_x, need_w, need_b = need
    x4 = Reshape.call(x, view, False)
    gy4 = Reshape.call(gy, view, False)
    xhat, rstd = _stats(x4, eps)
    dx = dw = db = None
    if need_x:
        dxhat = gy4 if weight is None else gy4 * Reshape.call(weight, (1, G, K, 1), False)
        dx = rstd * (dxhat - Mean.call(dxhat, (2, 3), True)
                     - xhat * Mean.call(dxhat * xhat, (2, 3), True))
        dx = Reshape.call(dx, x.shape, False)
    if need_w and weight is not None:
        dw = Reshape.call(Sum.call(gy4 * xhat, (0, 3), False), weight.shape, False)
    if need_b:
        db = Sum.call(gy4, (0, 3), False)
        db = Reshape.call(db, bias_shape, False)
    return dx, dw, db


def _check_affine(t, name, shape, dtype, op):
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(t).__name__}")
    if tuple(t.shape) != tuple(shape):
        raise RuntimeError(f"{op}: {name} must have shape {tuple(shape)}, got "
                           f"{tuple(t.shape)}")
    if t.dtype != dtype:
        raise TypeError(f"{op}: {name} dtype {t.dtype} differs from the input dtype {dtype}")


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalise over the last ``len(normalized_shape)`` dims (F.layer_norm); weight and bias
    have shape ``normalized_shape``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"layer_norm: input must be a Tensor, got {type(input).__name__}")
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    n = len(normalized_shape)
    if n == 0 or tuple(input.shape[input.ndim - n:]) != normalized_shape or input.ndim < n:
        raise RuntimeError(f"layer_norm: Given normalized_shape={list(normalized_shape)}, "
                           f"expected input with shape [*, {', '.join(map(str, normalized_shape))}]"
                           f", but got input of size {list(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"layer_norm: expected a floating input, got {input.dtype}")
    _check_affine(weight, "weight", normalized_shape, input.dtype, "layer_norm")
    _check_affine(bias, "bias", normalized_shape, input.dtype, "layer_norm")
    if not eps > 0:
        raise ValueError(f"layer_norm: eps must be positive, got {eps}")
    D = int(np.prod(normalized_shape))
    R = int(np.prod(input.shape[:input.ndim - n]))
    return GroupNorm.apply(input, weight, bias, (R, 1, D, 1), float(eps))


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):
    """Normalise each group of ``C / num_groups`` channels of an (N, C, *) input
    (F.group_norm); weight and bias have shape (C,)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"group_norm: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise RuntimeError(f"group_norm: expected input of shape (N, C, *) with at least 2 "
                           f"dims, got {list(input.shape)}")
    if input.dtype.kind != "f":
        raise TypeError(f"group_norm: expected a floating input, got {input.dtype}")
    N, C = input.shape[0], input.shape[1]
    if num_groups <= 0 or C % num_groups:
        raise RuntimeError(f"group_norm: Expected number of channels in input to be divisible "
                           f"by num_groups, but got input of shape {list(input.shape)} and "
                           f"num_groups={num_groups}")
    _check_affine(weight, "weight", (C,), input.dtype, "group_norm")
    _check_affine(bias, "bias", (C,), input.dtype, "group_norm")
    if not eps > 0:
        raise ValueError(f"group_norm: eps must be positive, got {eps}")
    L = int(np.prod(input.shape[2:]))
    return GroupNorm.apply(input, weight, bias, (N, num_groups, C // num_groups, L), float(eps))
