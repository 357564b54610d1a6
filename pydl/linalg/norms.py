"""Norms: ``vector_norm``, ``matrix_norm`` and ``norm`` with torch.linalg's arguments.

``vector_norm`` is one op whose backward is PyTorch's norm_backward, written with ``Op.call`` so
it differentiates again. At a zero vector the gradient is 0 (a subgradient), as PyTorch's,
instead of the 0/0 a composition of sqrt and sum would give; where a formula divides by x or by
the norm, the division is taken on a copy with the zeros replaced by 1 and the result masked,
so no NaN reaches a second derivative either.

Matrix norms are compositions: 'fro' is the 2-norm of the entries, 1 / inf the largest column
/ row sum of |A|, 'nuc' the sum of the singular values and 2 / -2 the largest / smallest one
(their gradients are U diag(dS) V^T, from ``svdvals``).
"""
from __future__ import annotations

import math

import numpy as np

from pydl.autograd.function import Function
from pydl.linalg._common import check_tensor
from pydl.ops.elementwise import Abs, Pow, Where, raw
from pydl.ops.reduction import _expand_reduced, normalize_dims
from pydl.tensor import Tensor

_INF = math.inf


def _vector_norm_array(x: np.ndarray, ord: float, axes: tuple, keepdim: bool) -> np.ndarray:
    a = np.abs(x)
    if ord == 2:
        return np.sqrt((x * x).sum(axis=axes, keepdims=keepdim))
    if ord == 1:
        return a.sum(axis=axes, keepdims=keepdim)
    if ord == _INF:
        return a.max(axis=axes, keepdims=keepdim)
    if ord == -_INF:
        return a.min(axis=axes, keepdims=keepdim)
    if ord == 0:
        return (x != 0).sum(axis=axes, keepdims=keepdim).astype(x.dtype)
    with np.errstate(divide="ignore"):
        return (a ** ord).sum(axis=axes, keepdims=keepdim) ** (1.0 / ord)


class VectorNorm(Function):
    """||x||_p over ``axes``. Backward (PyTorch's norm_backward), with n = ||x||_p:

    p = 2: x / n;  p = 1: sign(x);  p = +-inf: sign(x) on the entries where |x| = n, shared
    equally among ties;  p = 0: 0;  other p: sign(x) |x|^(p-1) / n^(p-1).
    Entries with n = 0 (and x = 0 for p < 1) get 0.
    """

    def forward(self, x, ord, axes, keepdim):
        y = np.asarray(_vector_norm_array(x, ord, axes, keepdim)).astype(x.dtype, copy=False)
        self.meta = (ord, axes, keepdim)
        self.save_for_backward(x, y)
        return y

    def backward(self, g):
        x, y = self.saved_tensors
        ord, axes, keepdim = self.meta
        g = _expand_reduced(g, axes, keepdim)
        n = _expand_reduced(y, axes, keepdim)
        xr, nr = raw(x), raw(n)
        if ord == 0:
            return np.zeros_like(xr), None, None, None
        if ord == 1:
            return g * np.sign(xr), None, None, None
        if ord in (_INF, -_INF):
            hit = (np.abs(xr) == nr)
            share = np.sign(xr) * hit / np.maximum(hit.sum(axis=axes, keepdims=True), 1)
            return g * share.astype(xr.dtype, copy=False), None, None, None
        n_zero = nr == 0
        n_safe = Where.call(n_zero, 1.0, n)
        if ord == 2:
            return g * x / n_safe * (~n_zero).astype(xr.dtype), None, None, None
        x_zero = xr == 0
        a_safe = Where.call(x_zero, 1.0, Abs.call(x))
        scaled = np.sign(xr) * Pow.call(a_safe, ord - 1) * Pow.call(n_safe, 1 - ord)
        keep = (~(x_zero | n_zero)).astype(xr.dtype)
        return g * scaled * keep, None, None, None


def _check_float(op: str, x: Tensor) -> None:
    if x.dtype.kind != "f":
        raise RuntimeError(f"{op}: Expected a floating point tensor as input. Got {x.dtype}")


def _to_dtype(x: Tensor, dtype):
    if dtype is None:
        return x
    from pydl import dtypes

    return x.to(dtypes.as_dtype(dtype))


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None,
                out=None) -> Tensor:
    """The vector p-norm (sum_i |x_i|^p)^(1/p) over ``dim`` (all entries when None), as
    ``torch.linalg.vector_norm``; ``ord`` may be any real, inf (max |x_i|), -inf (min |x_i|)
    or 0 (the number of non-zeros). ``dtype`` casts x first. The gradient at a zero vector
    is 0."""
    if out is not None:
        raise NotImplementedError("linalg.vector_norm: out= is not supported by pydl")
    op = "linalg.vector_norm"
    check_tensor(op, x, "x")
    if isinstance(ord, str) or not isinstance(ord, (int, float, np.integer, np.floating)):
        raise TypeError(f"linalg.vector_norm(): argument 'ord' must be Number, not "
                        f"{type(ord).__name__}")
    x = _to_dtype(x, dtype)
    _check_float(op, x)
    ord = float(ord)
    axes = normalize_dims(dim, x.ndim)
    if ord < 0 or ord == _INF:
        empty = x._data.size == 0 if dim is None else any(x.shape[a] == 0 for a in axes)
        if empty:
            raise RuntimeError(f"{op} cannot compute the {ord} norm on an empty tensor because "
                               f"the operation does not have an identity (input shape "
                               f"{tuple(x.shape)}, dim {dim})")
    return VectorNorm.apply(x, ord, axes, keepdim)


_MATRIX_ORDS = ("fro", "nuc", _INF, -_INF, 1, -1, 2, -2)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *, dtype=None,
                out=None) -> Tensor:
    """A matrix norm over the two dims ``dim``, as ``torch.linalg.matrix_norm``:
    'fro' (sqrt of the sum of squares), 'nuc' (sum of singular values), 1 / -1 (max / min
    column sum of |A|), inf / -inf (max / min row sum), 2 / -2 (largest / smallest singular
    value)."""
    from pydl.ops import reduction, shape

    if out is not None:
        raise NotImplementedError("linalg.matrix_norm: out= is not supported by pydl")
    op = "linalg.matrix_norm"
    check_tensor(op, A)
    if A.ndim < 2:
        raise RuntimeError(f"{op}: The input tensor A must have at least 2 dimensions.")
    if ord not in _MATRIX_ORDS:
        raise RuntimeError(f"{op}: Order {ord} not supported.")
    A = _to_dtype(A, dtype)
    _check_float(op, A)
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    if len(dims) != 2:
        raise RuntimeError(f"{op}: dim must be a 2-tuple. Got {dim}")
    d0, d1 = (d % A.ndim if -A.ndim <= d < A.ndim else None for d in dims)
    if d0 is None or d1 is None:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-A.ndim}, {A.ndim - 1}], but got {dim})")
    if d0 == d1:
        raise RuntimeError(f"{op}: dims must be different. Got ({dims[0]}, {dims[1]})")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in (1, -1, _INF, -_INF):
        # 1: sum over rows (d0), then the largest column; inf: the other way round.
        sum_dim, max_dim = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = vector_norm(A, 1, sum_dim, keepdim=True)
        pick = reduction.amax if ord > 0 else reduction.amin
        result = pick(sums, max_dim, keepdim=True)
        return result if keepdim else shape.squeeze(result, (d0, d1))
    # 'nuc', 2, -2: from the singular values, with the two dims moved to the end.
    from pydl.linalg.decompositions import svdvals

    rest = [i for i in range(A.ndim) if i not in (d0, d1)]
    S = svdvals(shape.permute(A, *rest, d0, d1))
    if ord == "nuc":
        result = reduction.sum(S, -1)
    elif ord == 2:
        result = reduction.amax(S, -1)
    else:
        result = reduction.amin(S, -1)
    if keepdim:
        for d in sorted((d0, d1)):
            result = shape.unsqueeze(result, d)
    return result


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None,
         out=None) -> Tensor:
    """``torch.linalg.norm``: a vector norm when ``dim`` is an int (or ``ord`` is None and
    ``dim`` is None: the 2-norm of all entries), a matrix norm when ``dim`` is a 2-tuple (or
    ``ord`` is given and A is 2-D)."""
    if out is not None:
        raise NotImplementedError("linalg.norm: out= is not supported by pydl")
    check_tensor("linalg.norm", A)
    if dim is not None:
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        if len(dims) == 1:
            if isinstance(ord, str):
                raise RuntimeError(f"linalg.norm: Order {ord} not supported for vector norms.")
            return vector_norm(A, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
        if len(dims) == 2:
            return matrix_norm(A, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
        raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. "
                           f"Got {list(dims)}")
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if A.ndim == 1:
        if isinstance(ord, str):
            raise RuntimeError(f"linalg.norm: Order {ord} not supported for vector norms.")
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    if A.ndim == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D "
                       f"or 2D. Got {A.ndim}D.")
