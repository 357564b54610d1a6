"""torch.cumprod: the running product along ``dim``, with torch's exact gradient when the input
has zeros.

The gradient of y_i = prod_{j <= i} x_j is dL/dx_k = sum_{i >= k} g_i prod_{j <= i, j != k} x_j.
With z the first zero along the dim (per row):
  * k < z:  x_k != 0, so it is (reverse cumsum of g * y)_k / x_k;
  * k = z:  prod_{j < z} x_j * sum_{i >= z} g_i prod_{z < j <= i} x_j, a reverse cumsum of g
            times the cumprod of x with everything up to z replaced by 1;
  * k > z:  every product holds x_z = 0, so 0.
The formula is written with ops (cumprod itself, cumsum, flips, sums and products with constant
masks), so it runs on arrays at first order and on Tensors under create_graph.
"""
from __future__ import annotations

import numpy as np

from pydl import dtypes as _dtypes
from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops import elementwise as _e
from pydl.ops.elementwise import raw
from pydl.ops.reduction import CumSum, Sum
from pydl.ops.shape import Flip
from pydl.tensor import Tensor, _wrap_dim


def _reverse_cumsum(t, dim):
    return Flip.call(CumSum.call(Flip.call(t, (dim,)), dim), (dim,))


class CumProd(Function):
    def forward(self, x, dim):
        self.dim = dim
        y = array_module(x).cumprod(x, axis=dim)
        y = y.reshape(()) if x.ndim == 0 else y  # a 0-d tensor stays 0-d, as in torch
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_tensors
        xr = raw(x)
        dim = self.dim
        if xr.ndim == 0 or xr.shape[dim] == 0:
            return g, None
        if isinstance(g, Tensor):
            return _differentiable_backward(x, g, dim), None
        xp = array_module(xr)
        n = xr.shape[dim]
        is_zero = xr == 0
        shape = [1] * xr.ndim
        shape[dim] = n
        idx = xp.arange(n).reshape(shape)
        first_zero = xp.where(is_zero.any(axis=dim, keepdims=True),
                              xp.argmax(is_zero, axis=dim).reshape(
                                  is_zero.shape[:dim] + (1,) + is_zero.shape[dim + 1:]), n)
        before = idx < first_zero
        # Before the first zero: x_k is nonzero, so dividing by it is exact.
        grad = _reverse_cumsum(g * y, dim) / (x * before + ~before) * before
        if is_zero.any():
            at = idx == first_zero
            after = idx > first_zero
            tail = CumProd.call(x * after + ~after, dim)  # prod_{z < j <= i} x_j, 1 up to z
            prefix = Sum.call(y * (idx == first_zero - 1), (dim,), True) + (first_zero == 0)
            grad = grad + _reverse_cumsum(g * tail, dim) * prefix * at
        return grad, None


def _differentiable_backward(x, g, dim):
    """The gradient under create_graph, as torch computes it there: the masked O(n) formula
    above is exact at first order but treats the positions after a zero as constants, which
    loses their second derivative. Here every dL/dx_k is built from x itself,
    sum_{i >= k} g_i * [prod_{j < k} x_j] * [prod_{k < j <= i} x_j], one column at a time
    (O(n^2) work, as torch's double-backward path)."""
    from pydl.ops.shape import cat

    n = x.shape[dim]
    ndim = len(x.shape)

    def part(t, start, stop):
        key = [slice(None)] * ndim
        key[dim] = slice(start, stop)
        return t[tuple(key)]

    cols = []
    for k in range(n):
        if k > 0:
            head = part(CumProd.call(part(x, 0, k), dim), k - 1, k)  # prod_{j < k} x_j
        else:
            ones_shape = list(x.shape)
            ones_shape[dim] = 1
            head = Tensor._wrap(array_module(x._data).ones(tuple(ones_shape), x.dtype))
        if k < n - 1:
            omitted = cat([head, head * CumProd.call(part(x, k + 1, n), dim)], dim)
        else:
            omitted = head
        cols.append(Sum.call(part(g, k, n) * omitted, (dim,), True))
    return cat(cols, dim)


def cumprod(input, dim, *, dtype=None):
    """y_i = x_0 x_1 ... x_i along ``dim``; integer and bool inputs accumulate in int64 (torch);
    ``dtype`` casts the input first."""
    if not isinstance(input, Tensor):
        raise TypeError(f"cumprod(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if dim is None or isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"cumprod(): argument 'dim' must be int, not {type(dim).__name__}")
    d = _wrap_dim(int(dim), max(input.ndim, 1))
    if dtype is not None:
        target = _dtypes.as_dtype(dtype)
    elif input.dtype.kind in "biu":
        target = _dtypes.int64
    else:
        target = input.dtype
    x = input if input.dtype == target else _e.cast(input, target)
    return CumProd.apply(x, 0 if input.ndim == 0 else d)


def _cumprod_(self, dim, *, dtype=None):
    return self._inplace(lambda s: cumprod(s, dim, dtype=dtype))


methods = {"cumprod": cumprod, "cumprod_": _cumprod_}
