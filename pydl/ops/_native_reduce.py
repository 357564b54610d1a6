"""Dispatch of reductions, softmax and strided copies of CPU float arrays to csrc/reduce/.

The kernels reduce any set of axes of a strided array without copying it, sum in float lanes
over short blocks whose totals go into double (more accurate than NumPy's pairwise float32 sum),
and split every output into units fixed by the shape, so results are bitwise the same for every
thread count. Arrays below ``MIN_ELEMS`` stay on NumPy: a binding call (argument conversion,
output allocation) costs about 1-2 us, NumPy's whole time on a tiny array.
"""
from __future__ import annotations

import math

import numpy as np

from pydl import _C

MIN_ELEMS = 4096
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

SUM, SQ_DIFF, ABS, EXP_DIFF = 0, 1, 2, 3
MAX, MIN, MAX_ABS = 0, 1, 2


def usable(x, min_elems: int = MIN_ELEMS) -> bool:
    """A CPU float32/float64 array, large enough, with non-negative strides."""
    return (type(x) is np.ndarray and x.dtype in _FLOATS and x.size >= min_elems
            and min(x.strides, default=0) >= 0)


def _keep(y, x, axes, keepdim):
    if keepdim:
        return y.reshape([1 if i in axes else s for i, s in enumerate(x.shape)])
    return y


def reduce_sum(x, axes, keepdim, op=SUM, centre=None):
    """Sum over axes of x, (x - centre)^2, |x| or exp(x - centre) (centre: one per output)."""
    return _keep(_C.reduce_sum(x, list(axes), op, centre), x, axes, keepdim)


def reduce_ext(x, axes, keepdim, op=MAX, index=False):
    """(values, indices or None) of max / min / max |x| over axes (NaN propagates)."""
    v, i = _C.reduce_ext(x, list(axes), op, index)
    return _keep(v, x, axes, keepdim), (None if i is None else _keep(i, x, axes, keepdim))


def count(x, axes) -> int:
    return math.prod([x.shape[a] for a in axes])


def softmax(x, axis: int, log: bool):
    """softmax / log_softmax along axis: rows of the last axis directly, any other axis moved
    last through the blocked transposing copy and back."""
    axis %= x.ndim
    if axis == x.ndim - 1:
        return _C.softmax_rows(np.ascontiguousarray(x), log)
    moved = _C.copy_strided(np.moveaxis(x, axis, -1))
    return _C.copy_strided(np.moveaxis(_C.softmax_rows(moved, log), -1, axis))


def contiguous_copy(x):
    """A C-contiguous copy (the transposing copy for strided views of 1-, 4- or 8-byte items)."""
    if (type(x) is np.ndarray and x.itemsize in (1, 4, 8) and x.size >= MIN_ELEMS
            and not x.flags.c_contiguous and all(s >= 0 for s in x.strides)
            and x.dtype.kind in "fiub"):
        return _C.copy_strided(x)
    return x.copy()
