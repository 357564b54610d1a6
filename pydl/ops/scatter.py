"""Scatter: ``scatter``/``scatter_`` (src or value), ``scatter_add``/``scatter_add_``,
``F.one_hot`` and ``masked_fill_`` (torch's names and argument checks).

For dim = 1, ``out = input.scatter(1, index, src)`` is ``out[i][index[i][j]] = src[i][j]``
(the inverse of gather's ``out[i][j] = input[i][index[i][j]]``). Gradients (PyTorch's
derivatives.yaml):

    scatter:      d input = g with the scattered places zeroed (a scatter of 0),
                  d src   = g.gather(dim, index)
    scatter_add:  d input = g,  d src = g.gather(dim, index)

Each is an op whose gradient is written with ops (Scatter, Gather, GetItemBackward), so they
differentiate to any order. ``index`` may be smaller than ``src`` in every dim and than
``input`` outside ``dim``: only the leading part of each is used, as in PyTorch.
"""
from __future__ import annotations

import numpy as np

from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops.indexing import Gather, GetItem, ScatterAdd, _leading_part
from pydl.tensor import Tensor, _wrap_dim


def _along_axis_index(index, dim: int):
    """Full index tuples for ``index`` along ``dim`` (open grids elsewhere)."""
    idx = list(np.indices(index.shape, sparse=True))
    idx[dim] = index
    return tuple(idx)


class Scatter(Function):
    """out = x with out[..., index[...], ...] = src[...] along dim (src: an array the shape of
    index, or a Python number)."""

    def forward(self, x, src, dim, index):
        self.meta = dim
        self.src_is_tensor = hasattr(src, "shape")
        self.save_for_backward(index)
        out = x.copy()
        part = out[_leading_part(out.shape, index.shape, dim)]
        if index.size:
            part[_along_axis_index(index, dim)] = src
        return out

    def backward(self, g):
        (index,) = self.saved_tensors
        dim = self.meta
        gx = gsrc = None
        if self.needs_input_grad[0]:
            gx = Scatter.call(g, 0.0, dim, index)
        if self.src_is_tensor and self.needs_input_grad[1]:
            gsrc = Gather.call(g, dim, index)
        return gx, gsrc, None, None


def _check_scatter(name, input, dim, index, src):
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be a Tensor, got "
                        f"{type(input).__name__}")
    if not isinstance(index, Tensor):
        index = Tensor(np.asarray(index))
    if index.dtype != np.int64 and index.dtype.kind in "iu":
        index = Tensor._wrap(index._data.astype(np.int64))
    if index.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index, got {index.dtype}")
    d = _wrap_dim(dim, input.ndim)
    nd = max(input.ndim, 1)
    if max(index.ndim, 1) != nd:
        raise RuntimeError(f"{name}(): Index tensor must have the same number of dimensions as "
                           f"self tensor (index shape {index.shape}, self shape {input.shape})")
    ishape = index.shape or (1,)
    xshape = input.shape or (1,)
    if any(n > xshape[k] for k, n in enumerate(ishape) if k != d):
        raise RuntimeError(f"{name}(): Expected index {index.shape} to be smaller than self "
                           f"{input.shape} apart from dimension {d}")
    if isinstance(src, Tensor):
        sshape = src.shape or (1,)
        if max(src.ndim, 1) != nd:
            raise RuntimeError(f"{name}(): Index tensor must have the same number of "
                               f"dimensions as src tensor (index shape {index.shape}, src "
                               f"shape {src.shape})")
        if any(n > sshape[k] for k, n in enumerate(ishape)):
            raise RuntimeError(f"{name}(): Expected index {index.shape} to be smaller than src "
                               f"{src.shape} in every dimension")
        if src.dtype != input.dtype:
            raise RuntimeError(f"{name}(): Expected self.dtype to be equal to src.dtype (got "
                               f"{input.dtype} and {src.dtype})")
    if index.numel():
        lo, hi = int(index._data.min()), int(index._data.max())
        size = xshape[d]
        if lo < 0 or hi >= size:
            bad = lo if lo < 0 else hi
            raise RuntimeError(f"{name}(): index {bad} is out of bounds for dimension {d} with "
                               f"size {size}")
    return d, index


def _src_part(src, index):
    """src's leading part, the shape of index (a differentiable slice when it is smaller)."""
    if src.shape == index.shape:
        return src
    key = tuple(slice(0, n) for n in index.shape)
    return GetItem.apply(src, key)


def _zero_d(fn, input, *args):
    """Scatter ops on 0-d tensors act as on shape (1,) (as PyTorch)."""
    if input.ndim:
        return fn(input, *args)
    return fn(input.reshape(1), *args).reshape(())


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """``out = input.clone(); out[i][index[i][j]] = src[i][j]`` for dim = 1 (torch.scatter);
    ``src`` a tensor or a number (``value=``). Duplicate indices: one of the values wins."""
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise RuntimeError(f"scatter(): reduce argument must be either add or multiply, "
                               f"got {reduce!r}")
        if reduce == "add" and isinstance(src, Tensor):
            return scatter_add(input, dim, index, src)
        raise NotImplementedError(f"scatter(reduce={reduce!r}) with this src is not "
                                  "implemented in pydl; use scatter_add or scatter_reduce")
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter() missing the 'src' tensor or 'value' number")
    d, index = _check_scatter("scatter", input, dim, index, src)
    if not isinstance(src, Tensor):
        if hasattr(src, "shape"):
            src = Tensor(src)
        else:
            src = _number_in(src, input.dtype, "scatter")
            return _zero_d(lambda x, i: Scatter.apply(x, src, d, i), input, index.reshape(
                index.shape or (1,)))
    index = index.reshape(index.shape or (1,))

    def run(x, i, s):
        s = s.reshape(s.shape or (1,))
        return Scatter.apply(x, _src_part(s, i), d, i)

    return _zero_d(run, input, index, src)


def _number_in(value, dtype, name):
    """A number cast to the tensor's dtype, as PyTorch casts a scalar fill value."""
    if isinstance(value, Tensor):
        value = value.item()
    if not isinstance(value, (bool, int, float, np.generic)):
        raise TypeError(f"{name}(): value must be a number, got {type(value).__name__}")
    return np.asarray(value).astype(dtype).item()


def scatter_add(input, dim, index, src):
    """``out = input.clone(); out[i][index[i][j]] += src[i][j]`` for dim = 1
    (torch.scatter_add): duplicate indices add up."""
    if not isinstance(src, Tensor):
        src = Tensor(np.asarray(src))
    d, index = _check_scatter("scatter_add", input, dim, index, src)
    index = index.reshape(index.shape or (1,))

    def run(x, i, s):
        s = s.reshape(s.shape or (1,))
        added = ScatterAdd.apply(_src_part(s, i), d, i, x.shape)
        return x + added

    return _zero_d(run, input, index, src)


def scatter_(input, dim, index, src=None, value=None, *, reduce=None):
    """In-place scatter (Tensor.scatter_)."""
    return input._inplace(lambda s, i, v: scatter(s, dim, i, v, reduce=reduce), index,
                          src if src is not None else value)


def scatter_add_(input, dim, index, src):
    """In-place scatter_add (Tensor.scatter_add_)."""
    return input._inplace(lambda s, i, v: scatter_add(s, dim, i, v), index, src)


def masked_fill_(input, mask, value):
    """Set ``input`` to ``value`` where ``mask`` (bool, broadcast to input) holds, in place
    (Tensor.masked_fill_). A number is cast to input's dtype, as PyTorch; a tensor value must be
    0-d. d input = g with the filled places zeroed; d value = the sum of g over them."""
    from pydl.ops.elementwise import where

    if not isinstance(mask, Tensor):
        mask = Tensor(np.asarray(mask))
    if mask.dtype != np.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{mask.dtype}")
    shape = np.broadcast_shapes(mask.shape, input.shape) if _broadcastable(
        mask.shape, input.shape) else None
    if shape != tuple(input.shape):
        raise RuntimeError(f"masked_fill_: mask of shape {mask.shape} cannot be broadcast to "
                           f"the tensor's shape {input.shape}")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value.ndim} dimension(s)")
        if value.dtype != input.dtype:
            value = value.to(input.dtype)
    else:
        value = _number_in(value, input.dtype, "masked_fill_")
        if input.dtype.kind == "f":
            value = float(value)
    return input._inplace(lambda s, m, v: where(m, v, s), mask, value)


def _broadcastable(a, b) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def one_hot(tensor, num_classes: int = -1):
    """int64 tensor of shape ``tensor.shape + (num_classes,)`` with a 1 at each class index
    (F.one_hot); ``num_classes=-1``: one more than the largest index."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"one_hot(): argument 'input' must be a Tensor, got "
                        f"{type(tensor).__name__}")
    if tensor.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot is only applicable to index tensor of type LongTensor, got "
                           f"{tensor.dtype}")
    x = tensor._data
    xp = array_module(x)
    if num_classes == -1:
        if x.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(x.max()) + 1
    elif num_classes < -1:
        raise RuntimeError(f"one_hot(): num_classes should be -1 or non-negative, got "
                           f"{num_classes}")
    if x.size:
        if int(x.min()) < 0:
            raise RuntimeError("Class values must be non-negative.")
        if int(x.max()) >= num_classes:
            raise RuntimeError(f"Class values must be smaller than num_classes ({num_classes}), "
                               f"got {int(x.max())}.")
    out = xp.zeros(x.shape + (num_classes,), dtype=np.int64)
    if x.size:
        xp.put_along_axis(out, x[..., None].astype(np.int64), 1, axis=-1)
    return Tensor._wrap(out)

