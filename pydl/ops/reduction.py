"""Reductions over ``dim`` (an int, a tuple, or None for all) with ``keepdim``.

Backward broadcasts the incoming gradient back over the reduced axes; for that it first puts the
reduced axes back as size-1 dims (``_expand_reduced``) when keepdim was False.
"""
from __future__ import annotations

from collections import namedtuple

import builtins as _bi
import math

import numpy as np

from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops import _native_reduce as _nr
from pydl.tensor import Tensor

values_indices = namedtuple("values_indices", ["values", "indices"])


def normalize_dims(dim, ndim: int):
    """dim argument -> sorted tuple of non-negative axes (None -> all axes)."""
    if dim is None:
        return tuple(range(ndim))
    if type(dim) is int and ndim and -ndim <= dim < ndim:
        return (dim % ndim,)  # the common case, without the general checks below
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
        if dtype is None and _nr.usable(x):
            return _nr.reduce_sum(x, axes, keepdim)
        return x.sum(axis=axes, keepdims=keepdim, dtype=dtype)

    def backward(self, g):
        shape, axes, keepdim = self.meta
        g = _expand_reduced(g, axes, keepdim)
        return _broadcast_back(g, shape), None, None, None


class Mean(Function):
    def forward(self, x, axes, keepdim):
        self.meta = (x.shape, axes, keepdim)
        self.count = math.prod([x.shape[a] for a in axes])
        if _nr.usable(x) and self.count:
            y = _nr.reduce_sum(x, axes, keepdim)
            y /= x.dtype.type(self.count)
            return y
        return x.mean(axis=axes, keepdims=keepdim)

    def backward(self, g):
        shape, axes, keepdim = self.meta
        g = _expand_reduced(g, axes, keepdim) / _bi.max(self.count, 1)
        return _broadcast_back(g, shape), None, None


def _var(x, axes, keepdim, correction):
    """sum((x - mean)^2) / max(N - correction, 0), and that denominator."""
    n = math.prod([x.shape[a] for a in axes])
    denom = _bi.max(n - correction, 0)
    if _nr.usable(x) and n:
        # Two passes over x, nothing materialised: the mean, then sum((x - mean)^2) in double.
        mean = _nr.reduce_sum(x, axes, False) / x.dtype.type(n)
        sq = _nr.reduce_sum(x, axes, keepdim, _nr.SQ_DIFF, mean)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(sq / x.dtype.type(denom), dtype=x.dtype), denom
    centered = x - x.mean(axis=axes, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (centered * centered).sum(axis=axes, keepdims=keepdim) / denom
    return array_module(x).asarray(v).astype(x.dtype, copy=False), denom


def _centered(x, axes):
    """x - mean(x) over axes, recomputed in backward from x (an input: under create_graph its
    derivative is known, where a saved ``centered`` would be a float intermediate)."""
    return x - Mean.call(x, axes, True)


def _inv(denom):
    return 1.0 / denom if denom else np.inf  # N - correction <= 0: var is inf/NaN, as PyTorch


class Var(Function):
    """sum((x - mean)^2) / (N - correction); d/dx = 2 (x - mean) / (N - correction) (the
    mean's own derivative drops out: sum(x - mean) = 0)."""

    def forward(self, x, axes, keepdim, correction):
        y, denom = _var(x, axes, keepdim, correction)
        self.save_for_backward(x)
        self.meta = (axes, keepdim, denom)
        return y

    def backward(self, g):
        (x,) = self.saved_tensors
        axes, keepdim, denom = self.meta
        g = _expand_reduced(g, axes, keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            return g * _centered(x, axes) * (2.0 * _inv(denom)), None, None, None


class Std(Function):
    """sqrt(var); d/dx = (x - mean) / ((N - correction) std), taken as 0 where std is 0 (a
    constant slice) as in PyTorch, instead of 0/0."""

    def forward(self, x, axes, keepdim, correction):
        v, denom = _var(x, axes, keepdim, correction)
        y = array_module(x).asarray(array_module(x).sqrt(v))  # asarray: an array, not a scalar
        self.save_for_backward(x, y)  # NB: the output: backward divides by it
        self.meta = (axes, keepdim, denom)
        return y

    def backward(self, g):
        from pydl.ops.elementwise import Where, raw

        x, y = self.saved_tensors
        axes, keepdim, denom = self.meta
        g = _expand_reduced(g, axes, keepdim)
        y = _expand_reduced(y, axes, keepdim)
        zero = raw(y) == 0
        # Where twice: the masked branch must stay finite, or its derivative is NaN.
        g_over_std = Where.call(zero, 0.0, g / Where.call(zero, 1.0, y))
        with np.errstate(divide="ignore", invalid="ignore"):
            return g_over_std * _centered(x, axes) * _inv(denom), None, None, None


def _check_reduced_sizes(x, axes, name, all_dims):
    """PyTorch refuses a max/min over an empty dim (there is no identity); other empty dims
    only make the result empty."""
    if all_dims:
        if x.size == 0:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                               f"input.numel() == 0 (input shape {x.shape}). Specify the "
                               f"reduction dim with the 'dim' argument.")
        return
    for a in axes:
        if x.shape[a] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {a} to have non-zero size "
                             f"(input shape {x.shape}).")


class MaxMin(Function):
    """max/min over one dim: values and indices; the gradient goes to the chosen index (a
    scatter, whose own gradient gathers at the same indices)."""

    def forward(self, x, dim, keepdim, is_max):
        xp = array_module(x)
        _check_reduced_sizes(x, (dim,), "max" if is_max else "min", False)
        if _nr.usable(x):
            values, idx = _nr.reduce_ext(x, (dim,), True, _nr.MAX if is_max else _nr.MIN, True)
            idx_k = idx
            idx = idx.squeeze(dim)
        else:
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
        from pydl.ops.indexing import ScatterAdd

        (idx_k,) = self.saved_tensors
        shape, dim, keepdim = self.meta
        g = _expand_reduced(g, (dim,), keepdim)
        return ScatterAdd.call(g, dim, idx_k, shape), None, None, None


class AMaxMin(Function):
    """max/min over several dims (or all): ties share the gradient equally, as PyTorch's. The
    share (mask / count) is piecewise constant: no derivative of its own."""

    def forward(self, x, axes, keepdim, is_max, name, all_dims):
        xp = array_module(x)
        _check_reduced_sizes(x, axes, name, all_dims)
        if _nr.usable(x):
            y = _nr.reduce_ext(x, axes, keepdim, _nr.MAX if is_max else _nr.MIN)[0]
        else:
            y = xp.asarray((xp.max if is_max else xp.min)(x, axis=axes, keepdims=keepdim))
        self.save_for_backward(x, y)  # y is the output itself (asarray: not a NumPy scalar)
        self.meta = (axes, keepdim)
        return y

    def backward(self, g):
        from pydl.ops.elementwise import raw

        x, y = (raw(t) for t in self.saved_tensors)
        axes, keepdim = self.meta
        g = _expand_reduced(g, axes, keepdim)
        if not keepdim:
            y = y.reshape([1 if i in axes else s for i, s in enumerate(x.shape)])
        mask = x == y
        share = (mask / mask.sum(axis=axes, keepdims=True)).astype(x.dtype, copy=False)
        return g * share, None, None, None, None, None


class Prod(Function):
    """prod over one axis (or all); d/dx_i = prod_{j != i} x_j (``ExclusiveProd``), computed
    without dividing by x so zeros in x are handled exactly."""

    def forward(self, x, dim, keepdim):
        self.save_for_backward(x)
        self.meta = (dim, keepdim)
        return x.prod(axis=dim, keepdims=keepdim)

    def backward(self, g):
        from pydl.ops.shape import Reshape

        (x,) = self.saved_tensors
        dim, keepdim = self.meta
        if dim is None:
            flat = Reshape.call(x, (int(np.prod(x.shape)),), False)
            return g * Reshape.call(ExclusiveProd.call(flat, 0), x.shape, False), None, None
        g = _expand_reduced(g, (dim,), keepdim)
        return g * ExclusiveProd.call(x, dim), None, None


class ExclusiveProd(Function):
    """E_i = prod_{k != i} x_k along ``axis`` (prefix times suffix products): the gradient of
    prod. Its derivative dE_i/dx_j = prod_{k != i, j} x_k (0 for j = i) is the same op on an
    n x n copy of x whose row i has x_i replaced by 1, so the pair differentiates to any order
    (each order adds an axis of size n)."""

    def forward(self, x, axis):
        self.save_for_backward(x)
        self.axis = axis
        return _exclusive_prod(x, axis, array_module(x))

    def backward(self, g):
        from pydl.ops.elementwise import Where, raw
        from pydl.ops.shape import Expand, Permute, Reshape

        (x,) = self.saved_tensors
        axis, nd, n = self.axis, len(x.shape), x.shape[self.axis]
        perm = tuple(k for k in range(nd) if k != axis) + (axis,)
        x_last = Permute.call(x, perm)                      # (..., n)
        g_last = Permute.call(g, perm)
        lead = tuple(x_last.shape[:-1])
        rows = Expand.call(Reshape.call(x_last, lead + (1, n), False), lead + (n, n))
        diag = array_module(raw(x)).eye(n, dtype=bool)
        rows = Where.call(diag, 1.0, rows)                  # rows[..., i, k] = x_k, 1 at k = i
        pair = Where.call(diag, 0.0, ExclusiveProd.call(rows, nd))   # prod_{k != i, j} x_k
        gx = Sum.call(Reshape.call(g_last, lead + (n, 1), False) * pair, (nd - 1,), False)
        return Permute.call(gx, tuple(np.argsort(perm))), None


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
    its gradient is softmax(x) = exp(x - y), written with the output y so that it is
    differentiable again."""

    def forward(self, x, axes, keepdim):
        xp = array_module(x)
        if _nr.usable(x) and _bi.all(x.shape[a] for a in axes):
            # max, then sum exp(x - max) in one fused pass (no exp(x - m) array).
            m = _nr.reduce_ext(x, axes, False)[0]
            m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
            s = _nr.reduce_sum(x, axes, False, _nr.EXP_DIFF, m)
            with np.errstate(divide="ignore"):
                y = np.asarray(np.log(s) + m, dtype=x.dtype)
            if keepdim:
                y = y.reshape([1 if i in axes else d for i, d in enumerate(x.shape)])
            self.save_for_backward(x, y)
            self.meta = (axes, keepdim)
            return y
        m = xp.max(x, axis=axes, keepdims=True) if x.size else xp.zeros((1,) * x.ndim, x.dtype)
        m = xp.where(xp.isfinite(m), m, 0)
        s = xp.exp(x - m).sum(axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):
            y = xp.log(s) + m
        if not keepdim:
            y = y.reshape([d for i, d in enumerate(x.shape) if i not in axes])
        self.save_for_backward(x, y)
        self.meta = (axes, keepdim)
        return y

    def backward(self, g):
        from pydl.ops.elementwise import Exp

        x, y = self.saved_tensors
        axes, keepdim = self.meta
        g = _expand_reduced(g, axes, keepdim)
        return g * Exp.call(x - _expand_reduced(y, axes, keepdim)), None, None


class Norm(Function):
    """Vector p-norm (sum |x|^p)^(1/p) over ``axes``; p = inf/-inf: max/min |x|; p = 0: the
    count of non-zeros (no gradient).

    d/dx = sign(x) |x|^(p-1) / norm^(p-1) (p = 2: x / norm; p = 1: sign(x); p = inf: sign(x) at
    the maxima, ties sharing). As PyTorch's norm_backward, the gradient is 0 where the norm is 0
    (a zero vector), and for p < 1 where x is 0, instead of 0/0.
    """

    def forward(self, x, p, axes, keepdim):
        xp = array_module(x)
        if p in (1, 2, np.inf) and _nr.usable(x) and (p != np.inf or _bi.all(
                x.shape[ax] for ax in axes)):
            if p == 2:
                y = np.sqrt(_nr.reduce_sum(x, axes, keepdim, _nr.SQ_DIFF))
            elif p == 1:
                y = _nr.reduce_sum(x, axes, keepdim, _nr.ABS)
            else:
                y = _nr.reduce_ext(x, axes, keepdim, _nr.MAX_ABS)[0]
            y = np.asarray(y, dtype=x.dtype)
            self.save_for_backward(x, y)
            self.meta = (p, axes, keepdim)
            return y
        a = xp.abs(x)
        if p == 2:
            y = xp.sqrt((x * x).sum(axis=axes, keepdims=keepdim))
        elif p == 1:
            y = a.sum(axis=axes, keepdims=keepdim)
        elif p in (np.inf, -np.inf):
            if _bi.any(x.shape[ax] == 0 for ax in axes) or (x.size == 0 and not axes):
                raise RuntimeError(f"norm(): cannot compute the {p} norm over an empty dim "
                                   f"(input shape {x.shape}): max/min have no identity")
            y = (a.max if p > 0 else a.min)(axis=axes, keepdims=keepdim)
        elif p == 0:
            y = (x != 0).sum(axis=axes, keepdims=keepdim)
        else:
            with np.errstate(divide="ignore", over="ignore"):
                y = (a ** p).sum(axis=axes, keepdims=keepdim) ** (1.0 / p)
        y = xp.asarray(y).astype(x.dtype, copy=False)
        self.save_for_backward(x, y)
        self.meta = (p, axes, keepdim)
        return y

    def backward(self, g):
        from pydl.ops.elementwise import Abs, Where, raw

        x, y = self.saved_tensors
        p, axes, keepdim = self.meta
        if p == 0:
            return None, None, None, None
        g = _expand_reduced(g, axes, keepdim)
        y = _expand_reduced(y, axes, keepdim)
        xr, yr = raw(x), raw(y)
        sign = array_module(xr).sign(xr)
        if p == 1:
            return g * sign, None, None, None
        if p in (np.inf, -np.inf):
            # Piecewise linear: the share of each extreme element is a constant.
            mask = (abs(xr) == yr) | array_module(xr).isnan(xr)
            share = (sign * mask / mask.sum(axis=axes, keepdims=True)).astype(xr.dtype)
            return g * share, None, None, None
        # Where twice (1 in the masked-off branch), so no 0/0 appears in the derivatives either.
        y_zero = yr == 0
        y_safe = Where.call(y_zero, 1.0, y)
        if p == 2:
            return Where.call(y_zero, 0.0, g / y_safe) * x, None, None, None
        if p < 1:
            x_zero = xr == 0
            abs_safe = Abs.call(Where.call(x_zero, 1.0, x))
            scaled = Where.call(x_zero, 0.0, sign * abs_safe ** (p - 1))
            return scaled * g * y ** (1 - p), None, None, None
        if p < 2:
            scaled = sign * Abs.call(x) ** (p - 1)
        else:
            scaled = x * Abs.call(x) ** (p - 2)
        return scaled * Where.call(y_zero, 0.0, g / y_safe ** (p - 1)), None, None, None


def sum(input, dim=None, keepdim=False, dtype=None):  # noqa: A001
    axes = normalize_dims(dim, input.ndim)
    if dtype is None and input.dtype.kind == "b":
        dtype = np.int64
    return Sum.apply(input, axes, keepdim, dtype)


def mean(input, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    if input.dtype.kind not in "fc":
        raise RuntimeError(f"mean(): could not infer output dtype. Input dtype must be floating "
                           f"point, got {input.dtype}")
    return Mean.apply(input, normalize_dims(dim, input.ndim), keepdim)


def _var_args(input, dim, unbiased, correction):
    if input.dtype.kind not in "fc":
        raise RuntimeError(f"std and var only support floating point and complex dtypes, got "
                           f"{input.dtype}")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return normalize_dims(dim, input.ndim), correction


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance with Bessel's ``correction`` (default 1: divide by N - 1), as torch.var."""
    axes, correction = _var_args(input, dim, unbiased, correction)
    return Var.apply(input, axes, keepdim, correction)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """sqrt(var(...)), with PyTorch's gradient 0 where std is 0."""
    axes, correction = _var_args(input, dim, unbiased, correction)
    return Std.apply(input, axes, keepdim, correction)


def _max_min(input, dim, keepdim, is_max, name):
    if isinstance(dim, Tensor):  # max(a, b): elementwise
        from pydl.ops import elementwise

        return (elementwise.maximum if is_max else elementwise.minimum)(input, dim)
    if dim is None:
        return AMaxMin.apply(input, tuple(range(input.ndim)), False, is_max, name, True)
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
    return AMaxMin.apply(input, normalize_dims(dim, input.ndim), keepdim, True, "amax",
                         dim is None)


def amin(input, dim=None, keepdim=False):
    return AMaxMin.apply(input, normalize_dims(dim, input.ndim), keepdim, False, "amin",
                         dim is None)


def _arg(input, dim, keepdim, fn):
    xp = array_module(input._data)
    f = xp.argmax if fn == "max" else xp.argmin
    if dim is None:
        if input._data.size == 0:
            raise IndexError(f"arg{fn}(): Expected reduction dim to be specified for "
                             f"input.numel() == 0 (input shape {input.shape}).")
        data = input._data
        if _nr.usable(data) and data.flags.c_contiguous:
            out = _nr.reduce_ext(data, tuple(range(data.ndim)), False,
                                 _nr.MAX if fn == "max" else _nr.MIN, True)[1]
        else:
            out = f(data.reshape(-1))
        if keepdim:
            out = out.reshape((1,) * input.ndim)
        return Tensor._wrap(xp.asarray(out, dtype=np.int64))
    (d,) = normalize_dims(dim, input.ndim) or (0,)
    if input.ndim == 0:
        return Tensor._wrap(xp.zeros((), dtype=np.int64))
    if input.shape[d] == 0:
        raise IndexError(f"arg{fn}(): Expected reduction dim {d} to have non-zero size "
                         f"(input shape {input.shape}).")
    if _nr.usable(input._data):
        return Tensor._wrap(_nr.reduce_ext(input._data, (d,), keepdim,
                                           _nr.MAX if fn == "max" else _nr.MIN, True)[1])
    return Tensor._wrap(f(input._data, axis=d, keepdims=keepdim).astype(np.int64))


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
    'fro' (= 2), inf, -inf, 0 (count of non-zeros) or any other number."""
    if p == "fro":
        p = 2
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or \
            np.isnan(p):
        raise ValueError(f"norm: unsupported p={p!r}")
    if input.dtype.kind not in "fc":
        raise RuntimeError(f"norm(): input dtype should be floating point, got {input.dtype}")
    return Norm.apply(input, float(p), normalize_dims(dim, input.ndim), keepdim)


def all(input, dim=None, keepdim=False):  # noqa: A001
    axes = None if dim is None else normalize_dims(dim, input.ndim)
    xp = array_module(input._data)
    return Tensor._wrap(xp.asarray(xp.all(input._data, axis=axes, keepdims=keepdim)))


def any(input, dim=None, keepdim=False):  # noqa: A001
    axes = None if dim is None else normalize_dims(dim, input.ndim)
    xp = array_module(input._data)
    return Tensor._wrap(xp.asarray(xp.any(input._data, axis=axes, keepdims=keepdim)))


def cumsum(input, dim):
    (d,) = normalize_dims(dim, input.ndim) or (0,)
    return CumSum.apply(input, d)


class CumSum(Function):
    """y_i = sum_{k <= i} x_k; its gradient is the reversed cumulative sum (a linear map whose
    transpose sums from the end), again a CumSum between two flips."""

    def forward(self, x, dim):
        self.dim = dim
        y = array_module(x).cumsum(x, axis=dim)
        return y.reshape(()) if x.ndim == 0 else y  # a 0-d tensor stays 0-d, as in PyTorch

    def backward(self, g):
        from pydl.ops.shape import Flip

        if len(g.shape) == 0:
            return g, None
        dims = (self.dim,)
        return Flip.call(CumSum.call(Flip.call(g, dims), self.dim), dims), None
