"""torch.cdist: the p-norm distance between each pair of rows of x1 (..., P, M) and x2
(..., R, M), batch dims broadcast, result (..., P, R).

p = 0 counts differing coordinates, p = inf takes the largest |difference|, other p >= 0 the
p-norm. ``compute_mode`` as torch: for p = 2, "use_mm_for_euclid_dist" (and the default
"use_mm_for_euclid_dist_if_necessary" when P > 25 or R > 25) computes
sqrt(max(||a||^2 + ||b||^2 - 2 a.b, 0)) with one matrix product, as torch does (memory P * R;
cancellation can leave a small positive distance between equal rows, as in torch); otherwise
the distances come from the differences directly (memory P * R * M per batch, exact).
The p = 2 gradient is always the product form x1 * rowsum(W) - W @ x2 with W = g / d.

Gradient w.r.t. the difference u = x1_p - x2_r (torch's cdist backward):
  p = 1: sign(u);  p = 2: u / d;  p = inf: sign(u) where |u| == d;  p = 0: 0;
  otherwise: sign(u) |u|^(p-1) / d^(p-1);
zero where d = 0 (and where u = 0 for p < 1). It is written with ops, so it runs under
create_graph too.
"""
from __future__ import annotations

import math

from pydl import dtypes as _dtypes
from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops import elementwise as _e
from pydl.ops.elementwise import raw, unbroadcast
from pydl.ops.reduction import Sum
from pydl.ops.shape import Permute
from pydl.tensor import Tensor

_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
          "donot_use_mm_for_euclid_dist")


def _pairwise_difference(x1, x2):
    """(..., P, 1, M) - (..., 1, R, M): works on arrays and on Tensors."""
    a = x1.reshape(tuple(x1.shape[:-1]) + (1, x1.shape[-1]))
    b = x2.reshape(tuple(x2.shape[:-2]) + (1,) + tuple(x2.shape[-2:]))
    return a - b


def _swap_last(t):
    n = len(t.shape)
    return Permute.call(t, tuple(range(n - 2)) + (n - 1, n - 2))


class Cdist(Function):
    def forward(self, x1, x2, p, use_mm=False):
        self.p = p
        self.shapes = (x1.shape, x2.shape)
        xp = array_module(x1)
        if p == 2 and use_mm and x1.shape[-1]:
            # torch's _euclidean_dist: one GEMM instead of the P * R * M differences.
            n1 = (x1 * x1).sum(axis=-1)[..., :, None]
            n2 = (x2 * x2).sum(axis=-1)[..., None, :]
            d2 = n1 + n2 - 2.0 * (x1 @ x2.swapaxes(-1, -2))
            y = xp.sqrt(xp.maximum(d2, 0.0)).astype(x1.dtype, copy=False)
            self.save_for_backward(x1, x2, y)
            return y
        u = _pairwise_difference(x1, x2)
        if u.shape[-1] == 0:
            y = xp.zeros(u.shape[:-1], dtype=x1.dtype)
        elif p == 0:
            y = (u != 0).sum(axis=-1).astype(x1.dtype)
        elif p == math.inf:
            y = xp.abs(u).max(axis=-1)
        elif p == 1:
            y = xp.abs(u).sum(axis=-1)
        elif p == 2:
            y = xp.sqrt((u * u).sum(axis=-1))
        else:
            y = (xp.abs(u) ** p).sum(axis=-1) ** (1.0 / p)
        y = xp.asarray(y, dtype=x1.dtype)
        self.save_for_backward(x1, x2, y)
        return y

    def backward(self, g):
        x1, x2, y = self.saved_tensors
        p = self.p
        s1, s2 = self.shapes
        if p == 2:
            # sum_r W_pr (x1_p - x2_r) = x1_p sum_r W_pr - (W @ x2)_p: no P * R * M array.
            yr = raw(y)
            w = g / (y + (yr == 0))  # 0 where d = 0 (g / 1 times a zero difference)
            w = w * (yr != 0)
            n = len(yr.shape)
            g1 = g2 = None
            if self.needs_input_grad[0]:
                g1 = unbroadcast(x1 * Sum.call(w, (n - 1,), True) - w @ x2, s1)
            if self.needs_input_grad[1]:
                g2 = unbroadcast(x2 * _swap_last(Sum.call(w, (n - 2,), True))
                                 - _swap_last(w) @ x1, s2)
            return g1, g2, None, None
        u = _pairwise_difference(x1, x2)
        ur, yr = raw(u), raw(y)
        if p == 0 or ur.shape[-1] == 0:
            gu = _e.zeros_like(ur)
        else:
            ge = g.reshape(tuple(g.shape) + (1,))
            ye = y.reshape(tuple(y.shape) + (1,))
            zero_d = (yr == 0)[..., None]
            if p == 1:
                gu = ge * _e.Sign.call(u)
            elif p == math.inf:
                gu = ge * _e.Sign.call(u) * (array_module(ur).abs(ur) == yr[..., None])
            else:
                zero_u = ur == 0
                au = _e.Abs.call(u) + zero_u  # |u|, with 1 where u = 0 (sign(u) zeroes it)
                gu = ge * _e.Sign.call(u) * au ** (p - 1) / (ye + zero_d) ** (p - 1)
        n = len(ur.shape)
        g1 = g2 = None
        if self.needs_input_grad[0]:
            g1 = unbroadcast(Sum.call(gu, (n - 2,), False), s1)
        if self.needs_input_grad[1]:
            g2 = unbroadcast(-Sum.call(gu, (n - 3,), False), s2)
        return g1, g2, None, None


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """Pairwise p-norm distances between the rows of x1 (B.., P, M) and x2 (B.., R, M)."""
    for name, t in (("x1", x1), ("x2", x2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"cdist(): argument '{name}' must be Tensor, not "
                            f"{type(t).__name__}")
    if compute_mode not in _MODES and compute_mode is not None:
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    for name, t in (("X1", x1), ("X2", x2)):
        if t.dtype.kind != "f":
            raise RuntimeError(f"cdist only supports floating-point dtypes, {name} got: "
                               f"{_dtypes.torch_name(t.dtype)}")
    for name, t in (("X1", x1), ("X2", x2)):
        if t.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, {name} got: "
                               f"{t.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: "
                           f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    if x1.dtype != x2.dtype:
        raise RuntimeError(f"expected scalar type {_dtypes.torch_name(x1.dtype)} but found "
                           f"{_dtypes.torch_name(x2.dtype)}")
    _e._check_same_device(x1, x2, "cdist")
    p = float(p)
    if not p >= 0:
        raise RuntimeError("cdist only supports non-negative p values")
    # Batch dims must broadcast (torch's message for a mismatch).
    from pydl.ops.shape_extra import broadcast_shapes

    broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    use_mm = compute_mode == "use_mm_for_euclid_dist" or (
        compute_mode in (None, "use_mm_for_euclid_dist_if_necessary")
        and (x1.shape[-2] > 25 or x2.shape[-2] > 25))
    return Cdist.apply(x1, x2, p, use_mm)
