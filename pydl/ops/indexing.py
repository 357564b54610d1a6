"""Indexing: ``x[key]`` with ints, slices, None, Ellipsis, integer arrays and boolean masks,
and ``x[key] = value``.

The gradient of ``x[key]`` scatters back into zeros of x's shape; ``add.at`` makes repeated
integer indices accumulate (x[[0, 0]] sends twice the gradient to x[0]).
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
        return k.data
    if isinstance(k, list):
        arr = np.asarray(k)
        if arr.dtype.kind not in "iub":
            raise IndexError(f"index list must hold ints or bools, got {arr.dtype}")
        return xp.asarray(arr)
    return k


def _is_basic(key) -> bool:
    items = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, np.integer, slice)) or k is None or k is Ellipsis
               for k in items)


class GetItem(Function):
    def forward(self, x, key):
        self.meta = (x.shape, x.dtype, key)
        self.basic = _is_basic(key)
        try:
            return x[key]
        except IndexError as e:
            raise IndexError(f"{e} (indexing a tensor of shape {x.shape})") from None

    @property
    def is_view(self):
        return self.basic

    def backward(self, g):
        shape, dtype, key = self.meta
        xp = array_module(g)
        gx = xp.zeros(shape, dtype=dtype)
        if self.basic:
            gx[key] = g
        else:
            xp.add.at(gx, key, g)
        return gx, None


def getitem(x, key):
    return GetItem.apply(x, _convert_key(key, array_module(x.data)))


class IndexPut(Function):
    """out = x with out[key] = value; gradient: x gets g with key zeroed, value gets g[key]."""

    def forward(self, x, value, key):
        self.meta = (key, value.shape if hasattr(value, "shape") else ())
        out = x.copy()
        out[key] = value
        return out

    def backward(self, g):
        from pydl.ops.elementwise import unbroadcast

        key, vshape = self.meta
        gx = gv = None
        if self.needs_input_grad[0]:
            gx = g.copy()
            gx[key] = 0
        if self.needs_input_grad[1]:
            gv = unbroadcast(g[key], vshape)
        return gx, gv, None


def index_put(x, key, value):
    return IndexPut.apply(x, value, _convert_key(key, array_module(x.data)))


def setitem_nograd(x, key, value) -> None:
    xp = array_module(x.data)
    key = _convert_key(key, xp)
    if isinstance(value, Tensor):
        value = value.data
    if not x.data.flags.writeable:
        raise RuntimeError(f"cannot assign into a read-only tensor of shape {x.shape}")
    x.data[key] = value


def masked_fill(input, mask, value):
    from pydl.ops.elementwise import where

    return where(mask, value, input)


def index_select(input, dim, index):
    from pydl.tensor import _wrap_dim

    d = _wrap_dim(dim, input.ndim)
    return getitem(input, (slice(None),) * d + (index,))


def gather(input, dim, index):
    return Gather.apply(input, dim, index)


class Gather(Function):
    def forward(self, x, dim, index):
        self.meta = (x.shape, dim, index)
        return array_module(x).take_along_axis(x, index, axis=dim)

    def backward(self, g):
        shape, dim, index = self.meta
        xp = array_module(g)
        gx = xp.zeros(shape, dtype=g.dtype)
        # Scatter-add along dim: build full index tuples so repeated indices accumulate.
        idx = list(np.indices(index.shape, sparse=True))
        idx[dim] = index
        xp.add.at(gx, tuple(idx), g)
        return gx, None, None
