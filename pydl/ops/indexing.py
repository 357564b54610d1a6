"""Indexing: ``x[key]`` with ints, slices, None, Ellipsis, integer arrays and boolean masks,
and ``x[key] = value``; ``gather`` and ``index_select``.

The gradient of ``x[key]`` scatters back into zeros of x's shape; ``add.at`` makes repeated
integer indices accumulate (x[[0, 0]] sends twice the gradient to x[0]). Each gather has its
scatter as gradient and each scatter its gather (GetItem / GetItemBackward, Gather / ScatterAdd,
IndexSelect / IndexAdd), so every formula here differentiates to any order.

Index tensors are passed to their op as arguments of their own, and saved: an in-place change of
an index (or mask) tensor before backward raises the version error instead of scattering the
gradient to the wrong places (or failing with a NumPy shape error).
"""
from __future__ import annotations

import numpy as np

from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.tensor import Tensor


def _convert_key(key, xp):
    """Tensors in the key become arrays; lists of ints become integer arrays."""
    if isinstance(key, tuple):
        return tuple(_convert_item(k, xp) for k in key)
    return _convert_item(key, xp)


def _convert_item(k, xp):
    if isinstance(k, Tensor):
        if k.dtype.kind not in "iub":
            raise IndexError(f"tensors used as indices must be long, int or bool tensors, got "
                             f"{k.dtype}")
        return k._data
    if isinstance(k, list):
        arr = np.asarray(k)
        if arr.dtype.kind not in "iub":
            raise IndexError(f"index list must hold ints or bools, got {arr.dtype}")
        return xp.asarray(arr)
    return k


def _index_tensors(key) -> tuple:
    """The tensors of a key: passed to the op as arguments so their versions are recorded."""
    items = key if isinstance(key, tuple) else (key,)
    return tuple(k for k in items if isinstance(k, Tensor))


def _is_basic(key) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, np.integer, slice)) or k is None or k is Ellipsis
               for k in items)


class GetItem(Function):
    """y = x[key]. ``index_arrays`` are the arrays of the key's index tensors, given again only so
    that they are saved and version-checked (the key holds the same arrays)."""

    def forward(self, x, key, *index_arrays):
        self.meta = (x.shape, key)
        self.basic = _is_basic(key)
        if index_arrays:
            self.save_for_backward(*index_arrays)
        try:
            return x[key]
        except IndexError as e:
            raise IndexError(f"{e} (indexing a tensor of shape {x.shape})") from None

    @property
    def is_view(self):
        return self.basic

    def backward(self, g):
        shape, key = self.meta
        if self._saved or self._freed:
            _ = self.saved_tensors  # the version check of the index tensors
        gx = GetItemBackward.call(g, key, shape, self.basic)
        return (gx, None) + (None,) * (len(self.parents) - 2)


class GetItemBackward(Function):
    """The gradient of x[key]: g put into zeros of x's shape, repeated advanced indices adding
    up. Linear in g; its own gradient is gg[key]."""

    def forward(self, g, key, shape, basic):
        self.key = key
        xp = array_module(g)
        gx = xp.zeros(shape, dtype=g.dtype)
        if basic:
            gx[key] = g
        else:
            xp.add.at(gx, key, g)
        return gx

    def backward(self, gg):
        return GetItem.call(gg, self.key), None, None, None


def getitem(x, key):
    return GetItem.apply(x, _convert_key(key, array_module(x._data)), *_index_tensors(key))


def _shape(v):
    return v.shape if hasattr(v, "shape") else ()


class IndexPut(Function):
    """out = x with out[key] = value; gradient: x gets g with key zeroed, value gets g[key]
    (summed back to value's shape where it was broadcast)."""

    def forward(self, x, value, key, *index_arrays):
        self.meta = (key, _shape(value))
        if index_arrays:
            self.save_for_backward(*index_arrays)
        out = x.copy()
        out[key] = value
        return out

    def backward(self, g):
        from pydl.ops.elementwise import unbroadcast

        key, vshape = self.meta
        if self._saved or self._freed:
            _ = self.saved_tensors  # the version check of the index tensors
        gx = gv = None
        if self.needs_input_grad[0]:
            gx = IndexPut.call(g, 0.0, key)
        if self.needs_input_grad[1]:
            gv = unbroadcast(GetItem.call(g, key), vshape)
        return (gx, gv, None) + (None,) * (len(self.parents) - 3)


def index_put(x, key, value):
    return IndexPut.apply(x, value, _convert_key(key, array_module(x._data)),
                          *_index_tensors(key))


def setitem_nograd(x, key, value) -> None:
    xp = array_module(x._data)
    key = _convert_key(key, xp)
    if isinstance(value, Tensor):
        value = value._data
    if not x._data.flags.writeable:
        raise RuntimeError(f"cannot assign into a read-only tensor of shape {x.shape}")
    x._data[key] = value


def masked_fill(input, mask, value):
    from pydl.ops.elementwise import where

    return where(mask, value, input)


# -- index_select: whole slices along one dim ------------------------------------------------------
class IndexSelect(Function):
    """y = x.take(index, axis=dim) (torch.index_select); a 0-d index keeps the dim, size 1."""

    def forward(self, x, dim, index):
        self.meta = (x.shape[dim], dim)
        self.save_for_backward(index)
        return array_module(x).take(x, index.reshape(-1) if index.ndim == 0 else index, axis=dim)

    def backward(self, g):
        (index,) = self.saved_tensors
        size, dim = self.meta
        return IndexAdd.call(g, dim, index, size), None, None


class IndexAdd(Function):
    """The gradient of index_select: zeros with ``size`` along dim, slice g[..., k, ...] added at
    index[k] (repeats add up); its own gradient is index_select again."""

    def forward(self, g, dim, index, size):
        self.meta = dim
        self.save_for_backward(index)
        xp = array_module(g)
        shape = list(g.shape)
        shape[dim] = size
        out = xp.zeros(shape, dtype=g.dtype)
        xp.add.at(xp.moveaxis(out, dim, 0), index.reshape(-1), xp.moveaxis(g, dim, 0))
        return out

    def backward(self, gg):
        (index,) = self.saved_tensors
        return IndexSelect.call(gg, self.meta, index), None, None, None


def index_select(input, dim, index):
    from pydl.tensor import _wrap_dim

    d = _wrap_dim(dim, input.ndim)
    if not isinstance(index, Tensor):
        index = Tensor(np.asarray(index))
    if index.dtype.kind not in "iu":
        raise IndexError(f"index_select(): expected an integer index tensor, got {index.dtype}")
    if index.ndim > 1:
        raise IndexError(f"index_select(): Index is supposed to be a vector, got shape "
                         f"{index.shape}")
    return IndexSelect.apply(input, d, index)


# -- gather: one element per index along one dim ---------------------------------------------------
class Gather(Function):
    """y[i][j][k] = x[i][index[i][j][k]][k] along dim (numpy.take_along_axis). As in PyTorch,
    index may be smaller than x in the other dims: only x's leading part there is read."""

    def forward(self, x, dim, index):
        self.meta = (x.shape, dim)
        self.save_for_backward(index)
        return array_module(x).take_along_axis(x[_leading_part(x.shape, index.shape, dim)],
                                               index, axis=dim)

    def backward(self, g):
        shape, dim = self.meta
        (index,) = self.saved_tensors
        return ScatterAdd.call(g, dim, index, shape), None, None


def _leading_part(shape, index_shape, dim):
    return tuple(slice(None) if d == dim or n == shape[d] else slice(0, n)
                 for d, n in enumerate(index_shape))


class ScatterAdd(Function):
    """out = zeros(shape); out[i][index[i][j][k]][k] += src[i][j][k] along dim (scatter_add into
    zeros): the gradient of gather, and gather is its gradient."""

    def forward(self, src, dim, index, shape):
        self.meta = dim
        self.save_for_backward(index)
        xp = array_module(src)
        out = xp.zeros(shape, dtype=src.dtype)
        if index.shape[dim] == 1:
            # One index per line along dim (max/min's argmax): no two land on one place.
            xp.put_along_axis(out[_leading_part(shape, index.shape, dim)], index, src, axis=dim)
            return out
        # Full index tuples, so that repeated indices accumulate.
        idx = list(np.indices(index.shape, sparse=True))
        idx[dim] = index
        xp.add.at(out, tuple(idx), src)
        return out

    def backward(self, gg):
        (index,) = self.saved_tensors
        return Gather.call(gg, self.meta, index), None, None, None


def gather(input, dim, index):
    """out[i][j][k] = input[i][index[i][j][k]][k] for dim = 1 (torch.gather): index has input's
    number of dims, and sizes no larger than input's outside ``dim``."""
    from pydl.tensor import _wrap_dim

    if not isinstance(index, Tensor):
        index = Tensor(np.asarray(index))
    d = _wrap_dim(dim, input.ndim)
    if index.dtype.kind not in "iu":
        raise RuntimeError(f"gather(): Expected dtype int64 for index, got {index.dtype}")
    if index.ndim != input.ndim:
        raise RuntimeError(f"gather(): Index tensor must have the same number of dimensions as "
                           f"input tensor (index shape {index.shape}, input shape "
                           f"{input.shape})")
    if any(n > input.shape[k] for k, n in enumerate(index.shape) if k != d):
        raise RuntimeError(f"gather(): Size does not match at a dimension other than {d}: "
                           f"index shape {index.shape}, input shape {input.shape}")
    return Gather.apply(input, d, index)
