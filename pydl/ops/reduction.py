"""Reductions over ``dim`` (an int, a tuple, or None for all) with ``keepdim``.

Backward broadcasts the incoming gradient back over the reduced axes; for that it first puts the
reduced axes back as size-1 dims (``_expand_reduced``) when keepdim was False.
"""
from __future__ import annotations

from collections import namedtuple

import builtins as _bi

import numpy as np

from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.tensor import Tensor

values_indices = namedtuple("values_indices", ["values", "indices"])


def normalize_dims(dim, ndim: int):
    """dim argument -> sorted tuple of non-negative axes (None -> all axes)."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    n = _bi.max(ndim, 1)
    out = []
    for d in dims:
        if not isinstance(d, (int, np.integer)):
            raise TypeError(f"dim must be an int or a tuple of ints, got {dim!r}")
        if not -n <= d < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}]"
                             f", but got {d})")
        out.append(int(d) % n)
    if len(set(out)) != len(out):
        raise ValueError(f"dim {dim!r} names a dimension more than once")
    if ndim == 0:
        return ()
    return tuple(sorted(out))


def _expand_reduced(g, axes, keepdim):
    """Put the reduced axes back as size-1 dims (a reshape: works on arrays and Tensors)."""
    if keepdim or not axes:
        return g
    from pydl.ops.shape import Reshape

    shape = list(g.shape)
    for a in axes:
        shape.insert(a, 1)
    return Reshape.call(g, tuple(shape), False)


def _broadcast_back(g, shape):
    from pydl.ops.shape import Expand

    return Expand.call(g, shape)


class Sum(Function):
    def forward(self, x, axes, keepdim, dtype=None):
        self.meta = (x.shape, axes, keepdim)
        return x.sum(axis=axes, keepdims=keepdim, dtype=dtype)

    def backward(self, g):
        shape, axes, keepdim = self.meta
        g = _expand_reduced(g, axes, keepdim)
        return _broadcast_back(g, shape), None, None, None


class Mean(Function):
    def forward(self, x, axes, keepdim):
        self.meta = (x.shape, axes, keepdim)
        self.count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        return x.mean(axis=axes, keepdims=keepdim)

    def backward(self, g):
        shape, axes, keepdim = self.meta
        g = _expand_reduced(g, axes, keepdim) / _bi.max(self.count, 1)
        return _broadcast_back(g, shape), None, None


class Var(Function):
    """sum((x - mean)^2) / (N - correction); d/dx = 2 (x - mean) / (N - correction)."""

    def forward(self, x, axes, keepdim, correction):
        n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        denom = _bi.max(n - correction, 0)
        self.save_for_backward(centered)
        self.meta = (axes, keepdim, denom)
        with np.errstate(divide="ignore", invalid="ignore"):
            return ((centered * centered).sum(axis=axes, keepdims=keepdim) / denom).astype(
                x.dtype, copy=False)

    def backward(self, g):
        (centered,) = self.saved_tensors
        axes, keepdim, denom = self.meta
        g = _expand_reduced(g, axes, keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * centered * (2.0 / denom if denom else np.inf), None, None, None


class MaxMin(Function):
    """max/min over one dim: values and indices; the gradient goes to the chosen index."""

    def forward(self, x, dim, keepdim, is_max):
        xp = array_module(x)
        if x.shape[dim] == 0:
            raise IndexError(f"{'max' if is_max else 'min'}(): cannot reduce over dimension {dim}"
                             f" of size 0 (input shape {x.shape})")
        idx = (xp.argmax if is_max else xp.argmin)(x, axis=dim)
        idx_k = xp.expand_dims(idx, dim)
        values = xp.take_along_axis(x, idx_k, axis=dim)
        self.meta = (x.shape, dim, keepdim)
        self.save_for_backward(idx_k)
        if not keepdim:
            values = values.squeeze(dim)
            idx = idx.astype(np.int64)
        else:
            idx = idx_k.astype(np.int64)
        self.mark_non_differentiable(idx)
        return values, idx

    def backward(self, g, _gidx):
        (idx_k,) = self.saved_tensors
        shape, dim, keepdim = self.meta
        xp = array_module(g)
        if not keepdim:
            g = xp.expand_dims(g, dim)
        out = xp.zeros(shape, dtype=g.dtype)
        xp.put_along_axis(out, idx_k, g, axis=dim)
        return out, None, None, None


class AMaxMin(Function):
    """max/min over several dims (or all): ties share the gradient equally, as PyTorch's."""

    def forward(self, x, axes, keepdim, is_max):
        xp = array_module(x)
        if x.size == 0:
            raise RuntimeError(f"{'max' if is_max else 'min'}(): expected a non-empty tensor, "
                               f"got shape {x.shape}")
        y = (xp.max if is_max else xp.min)(x, axis=axes, keepdims=True)
        self.save_for_backward(x, y)
        self.meta = (axes, keepdim)
        return y if keepdim else y.reshape([s for i, s in enumerate(x.shape) if i not in axes])

    def backward(self, g):
        x, y = self.saved_tensors
        axes, keepdim = self.meta
        g = _expand_reduced(g, axes, keepdim)
        mask = (x == y)
        count = mask.sum(axis=axes, keepdims=True)
        return g * mask / count, None, None, None


class Prod(Function):
    """prod over axes; d/dx_i = prod_{j != i} x_j, computed with exclusive products so zeros
    in x are handled exactly."""

    def forward(self, x, dim, keepdim):
        self.save_for_backward(x)
        self.meta = (dim, keepdim)
        return x.prod(axis=dim, keepdims=keepdim)

    def backward(self, g):
        (x,) = self.saved_tensors
        dim, keepdim = self.meta
        xp = array_module(x)
        if dim is None:
            flat = x.reshape(-1)
            gx = _exclusive_prod(flat, 0, xp).reshape(x.shape)
            return g * gx, None, None
        if not keepdim:
            g = xp.expand_dims(g, dim)
        return g * _exclusive_prod(x, dim, xp), None, None


def _exclusive_prod(x, axis, xp):
    n = x.shape[axis]
    if n == 0:
        return xp.zeros_like(x)
    ones_shape = list(x.shape)
    ones_shape[axis] = 1
    one = xp.ones(ones_shape, dtype=x.dtype)
    left = xp.concatenate([one, xp.cumprod(x, axis=axis)], axis=axis)
    left = xp.take(left, xp.arange(n), axis=axis)
    rev = xp.flip(x, axis=axis)
    right = xp.concatenate([one, xp.cumprod(rev, axis=axis)], axis=axis)
    right = xp.flip(xp.take(right, xp.arange(n), axis=axis), axis=axis)
    return left * right


class LogSumExp(Function):
    """log sum exp(x), computed as m + log sum exp(x - m) with m = max so nothing overflows;
    its gradient is softmax(x)."""

    def forward(self, x, axes, keepdim):
        xp = array_module(x)
        m = xp.max(x, axis=axes, keepdims=True) if x.size else xp.zeros((1,) * x.ndim, x.dtype)
        m = xp.where(xp.isfinite(m), m, 0)
        s = xp.exp(x - m).sum(axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):
            y = xp.log(s) + m
        self.save_for_backward(x, y)
        self.meta = (axes, keepdim)
        return y if keepdim else y.reshape([d for i, d in enumerate(x.shape) if i not in axes])

    def backward(self, g):
        x, y = self.saved_tensors
        axes, keepdim = self.meta
        g = _expand_reduced(g, axes, keepdim)
        return g * array_module(x).exp(x - y), None, None


def sum(input, dim=None, keepdim=False, dtype=None):  # noqa: A001
    axes = normalize_dims(dim, input.ndim)
    if input.dtype == np.bool_ and dtype is None:
        dtype = np.int64
    return Sum.apply(input, axes, keepdim, dtype)


def mean(input, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind not in "fc":
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating "
                           f"point, got {input.dtype}")
    return Mean.apply(input, normalize_dims(dim, input.ndim), keepdim)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance with Bessel's ``correction`` (default 1: divide by N - 1), as torch.var."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return Var.apply(input, normalize_dims(dim, input.ndim), keepdim, correction)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    from pydl.ops.elementwise import sqrt

    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def _max_min(input, dim, keepdim, is_max, name):
    if isinstance(dim, Tensor):  # max(a, b): elementwise
        from pydl.ops import elementwise

        return (elementwise.maximum if is_max else elementwise.minimum)(input, dim)
    if dim is None:
        return AMaxMin.apply(input, tuple(range(input.ndim)), False, is_max)
    (d,) = normalize_dims(dim, input.ndim) or (0,)
    if input.ndim == 0:
        return values_indices(input, Tensor._wrap(np.zeros((), dtype=np.int64)))
    values, indices = MaxMin.apply(input, d, keepdim, is_max)
    return values_indices(values, indices)


def max(input, dim=None, keepdim=False):  # noqa: A001
    """Without dim: the largest element. With dim: (values, indices) along it."""
    return _max_min(input, dim, keepdim, True, "max")


def min(input, dim=None, keepdim=False):  # noqa: A001
    return _max_min(input, dim, keepdim, False, "min")


def amax(input, dim=None, keepdim=False):
    return AMaxMin.apply(input, normalize_dims(dim, input.ndim), keepdim, True)


def amin(input, dim=None, keepdim=False):
    return AMaxMin.apply(input, normalize_dims(dim, input.ndim), keepdim, False)


def _arg(input, dim, keepdim, fn):
    xp = array_module(input.data)
    if input.data.size == 0:
        raise RuntimeError(f"arg{fn}(): expected a non-empty tensor, got shape {input.shape}")
    f = xp.argmax if fn == "max" else xp.argmin
    if dim is None:
        out = f(input.data.reshape(-1))
        if keepdim:
            out = out.reshape((1,) * input.ndim)
        return Tensor._wrap(xp.asarray(out, dtype=np.int64))
    (d,) = normalize_dims(dim, input.ndim) or (0,)
    if input.ndim == 0:
        return Tensor._wrap(xp.zeros((), dtype=np.int64))
    return Tensor._wrap(f(input.data, axis=d, keepdims=keepdim).astype(np.int64))


def argmax(input, dim=None, keepdim=False):
    return _arg(input, dim, keepdim, "max")


def argmin(input, dim=None, keepdim=False):
    return _arg(input, dim, keepdim, "min")


def prod(input, dim=None, keepdim=False):
    if dim is not None:
        (dim,) = normalize_dims(dim, input.ndim) or (None,)
    return Prod.apply(input, dim, keepdim)


def logsumexp(input, dim=None, keepdim=False):
    return LogSumExp.apply(input, normalize_dims(dim, input.ndim), keepdim)


def norm(input, p="fro", dim=None, keepdim=False):
    """Vector p-norm over ``dim`` (all elements by default): (sum |x|^p)^(1/p); p may be
    'fro' (= 2), inf, -inf, 0 (count of non-zeros) or any positive number."""
    from pydl.ops import elementwise as ew

    if p == "fro" or p == 2:
        return ew.sqrt(sum(ew.mul(input, input), dim, keepdim))
    if p == 1:
        return sum(ew.abs(input), dim, keepdim)
    if p == float("inf"):
        return amax(ew.abs(input), dim, keepdim)
    if p == float("-inf"):
        return amin(ew.abs(input), dim, keepdim)
    if p == 0:
        return sum(ew.ne(input, 0), dim, keepdim).to(input.dtype)
    if isinstance(p, (int, float)) and p > 0:
        return ew.pow(sum(ew.pow(ew.abs(input), p), dim, keepdim), 1.0 / p)
    raise ValueError(f"norm: unsupported p={p!r}")


def all(input, dim=None, keepdim=False):  # noqa: A001
    axes = None if dim is None else normalize_dims(dim, input.ndim)
    xp = array_module(input.data)
    return Tensor._wrap(xp.asarray(xp.all(input.data, axis=axes, keepdims=keepdim)))


def any(input, dim=None, keepdim=False):  # noqa: A001
    axes = None if dim is None else normalize_dims(dim, input.ndim)
    xp = array_module(input.data)
    return Tensor._wrap(xp.asarray(xp.any(input.data, axis=axes, keepdims=keepdim)))


def cumsum(input, dim):
    (d,) = normalize_dims(dim, input.ndim) or (0,)
    return CumSum.apply(input, d)


class CumSum(Function):
    def forward(self, x, dim):
        self.dim = dim
        return array_module(x).cumsum(x, axis=dim)

    def backward(self, g):
        xp = array_module(g)
        return xp.flip(xp.cumsum(xp.flip(g, self.dim), axis=self.dim), self.dim), None
