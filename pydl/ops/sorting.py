"""Sorting: ``sort``, ``argsort``, ``topk``, ``unique`` (torch's names, arguments and outputs).

A sort is a permutation along one dim followed by a gather: the indices are computed once
(piecewise constant, no derivative) and the values are ``Gather(x, dim, indices)``, whose
gradient scatters back to where each value came from (and differentiates again, to any order:
pydl/ops/indexing.py). ``unique`` has no gradient, as in PyTorch.

Order: NaN sorts as the largest value (after +inf ascending, first descending), as PyTorch.
Descending stable sorts keep equal elements in their original order (torch's ``stable=True``):
an ascending stable sort of the reversed line, reversed.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from pydl.device import array_module
from pydl.ops.indexing import Gather
from pydl.tensor import Tensor, _wrap_dim

sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])


def _sort_indices(x, dim: int, descending: bool):
    """int64 indices that sort ``x`` (an array) stably along ``dim``."""
    xp = array_module(x)
    if x.ndim == 0:
        return xp.zeros((), dtype=np.int64)
    if not descending:
        return xp.argsort(x, axis=dim, kind="stable").astype(np.int64, copy=False)
    n = x.shape[dim]
    rev = xp.flip(x, axis=dim)
    idx = xp.flip(xp.argsort(rev, axis=dim, kind="stable"), axis=dim)
    return (n - 1 - idx).astype(np.int64, copy=False)


def _check_sortable(input, name: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, got "
                        f"{type(input).__name__}")
    if input.dtype.kind == "c":
        raise RuntimeError(f"{name}(): complex tensors have no order")


def _gather_values(input, dim: int, idx):
    if input.ndim == 0:
        return input.clone() if input.requires_grad else Tensor._wrap(input._data.copy())
    return Gather.apply(input, dim, Tensor._wrap(idx))


def sort(input, dim: int = -1, descending: bool = False, *, stable: bool = False):
    """(values, indices) of ``input`` sorted along ``dim`` (torch.sort). pydl's sort is always
    stable, so ``stable`` only documents the wish. d values / d input: the gradient of each
    value goes back to the index it came from."""
    _check_sortable(input, "sort")
    d = _wrap_dim(dim, input.ndim)
    idx = _sort_indices(input._data, d, descending)
    return sort_result(_gather_values(input, d, idx), Tensor._wrap(idx))


def argsort(input, dim: int = -1, descending: bool = False, stable: bool = False):
    """The int64 indices that sort ``input`` along ``dim`` (torch.argsort)."""
    _check_sortable(input, "argsort")
    d = _wrap_dim(dim, input.ndim)
    return Tensor._wrap(_sort_indices(input._data, d, descending))


def topk(input, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim`` with their
    indices (torch.topk), in sorted order; ties keep their original order."""
    _check_sortable(input, "topk")
    d = _wrap_dim(dim, input.ndim)
    n = input.shape[d] if input.ndim else 1
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise TypeError(f"topk(): k must be an int, got {type(k).__name__}")
    if not 0 <= k <= n:
        raise RuntimeError(f"topk(): selected index k ({k}) out of range for dimension {d} of "
                           f"size {n} (input shape {input.shape})")
    idx = _sort_indices(input._data, d, largest)
    if input.ndim:
        idx = idx[(slice(None),) * d + (slice(0, k),)]
        idx = array_module(idx).ascontiguousarray(idx)
    return topk_result(_gather_values(input, d, idx), Tensor._wrap(idx))


def msort(input):
    """``sort(input, dim=0).values`` (torch.msort)."""
    return sort(input, dim=0).values


def unique(input, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim=None):
    """The distinct elements of ``input`` (``dim=None``, flattened) or its distinct slices along
    ``dim`` (torch.unique), always sorted. ``return_inverse``: int64 indices into the result
    that rebuild ``input`` (shape of input for dim=None, else ``(input.shape[dim],)``);
    ``return_counts``: int64 count of each. No gradient (as PyTorch)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"unique(): argument 'input' must be a Tensor, got "
                        f"{type(input).__name__}")
    x = input._data
    xp = array_module(x)
    if dim is None:
        values, inverse, counts = xp.unique(x.reshape(-1), return_inverse=True,
                                            return_counts=True)
        inverse = inverse.reshape(x.shape)
    else:
        d = _wrap_dim(dim, x.ndim)
        if x.ndim == 0:
            raise IndexError("unique(): dim given for a 0-d tensor")
        if x.shape[d] == 0:
            values = x.copy()
            inverse = xp.zeros((0,), dtype=np.int64)
            counts = xp.zeros((0,), dtype=np.int64)
        elif x.size == 0:
            # Every slice is empty, hence equal: one of them remains.
            values = x[(slice(None),) * d + (slice(0, 1),)].copy()
            inverse = xp.zeros((x.shape[d],), dtype=np.int64)
            counts = xp.asarray([x.shape[d]], dtype=np.int64)
        else:
            values, inverse, counts = xp.unique(x, axis=d, return_inverse=True,
                                                return_counts=True)
            inverse = inverse.reshape(-1)
    out = Tensor._wrap(xp.ascontiguousarray(values))
    if not (return_inverse or return_counts):
        return out
    result = (out,)
    if return_inverse:
        result += (Tensor._wrap(inverse.astype(np.int64, copy=False)),)
    if return_counts:
        result += (Tensor._wrap(counts.astype(np.int64, copy=False)),)
    return result
