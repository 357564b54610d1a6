"""Shape ops: reshape/view, squeeze/unsqueeze, expand, transpose/permute, cat/stack,
split/chunk, flip, pad.

Ops marked ``is_view`` return NumPy views when NumPy can make one; the result then shares the
input's memory and version counter, so an in-place write through either is seen by both.
"""
from __future__ import annotations

import numpy as np

from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops.reduction import normalize_dims
from pydl.tensor import Tensor, _wrap_dim


def _size_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _infer_shape(shape, numel, in_shape):
    shape = [int(s) for s in shape]
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError("only one dimension can be inferred (-1)")
    if any(s < -1 for s in shape):
        raise RuntimeError(f"invalid shape dimension in {tuple(shape)}")
    known = int(np.prod([s for s in shape if s != -1]))
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel} "
                               f"(input shape {in_shape})")
        shape[neg[0]] = numel // known
    elif known != numel:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel} "
                           f"(input shape {in_shape})")
    return tuple(shape)


class Reshape(Function):
    is_view = True

    def forward(self, x, shape, require_view):
        self.in_shape = x.shape
        if require_view:
            try:
                return x.reshape(shape, copy=False)
            except (ValueError, TypeError):
                raise RuntimeError(
                    f"view size is not compatible with input tensor's size and stride (input "
                    f"shape {x.shape}, requested {shape}); use .reshape(...) instead") from None
        return x.reshape(shape)

    def backward(self, g):
        return Reshape.call(g, self.in_shape, False), None, None


def reshape(input, *shape):
    shape = _infer_shape(_size_args(shape), input._data.size, input.shape)
    if shape == input.shape:
        return input if not input.requires_grad else Reshape.apply(input, shape, False)
    return Reshape.apply(input, shape, False)


def view(input, *shape):
    shape = _infer_shape(_size_args(shape), input._data.size, input.shape)
    return Reshape.apply(input, shape, True)


def flatten(input, start_dim=0, end_dim=-1):
    if input.ndim == 0:
        return reshape(input, 1)
    s = _wrap_dim(start_dim, input.ndim)
    e = _wrap_dim(end_dim, input.ndim)
    if s > e:
        raise RuntimeError(f"flatten: start_dim ({start_dim}) comes after end_dim ({end_dim})")
    shape = input.shape[:s] + (int(np.prod(input.shape[s:e + 1])),) + input.shape[e + 1:]
    return reshape(input, shape)


def unflatten(input, dim, sizes):
    d = _wrap_dim(dim, input.ndim)
    sizes = _infer_shape(sizes, input.shape[d], input.shape)
    return reshape(input, input.shape[:d] + tuple(sizes) + input.shape[d + 1:])


def squeeze(input, dim=None):
    if dim is None:
        shape = tuple(s for s in input.shape if s != 1)
    else:
        dims = normalize_dims(dim, input.ndim)
        shape = tuple(s for i, s in enumerate(input.shape) if not (i in dims and s == 1))
    return reshape(input, shape)


def unsqueeze(input, dim):
    d = _wrap_dim(dim, input.ndim + 1)
    return reshape(input, input.shape[:d] + (1,) + input.shape[d:])


class Expand(Function):
    is_view = True

    def forward(self, x, shape):
        self.in_shape = x.shape
        return array_module(x).broadcast_to(x, shape)

    def backward(self, g):
        from pydl.ops.elementwise import unbroadcast

        return unbroadcast(g, self.in_shape), None


def expand(input, *sizes):
    sizes = _size_args(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater "
                           f"or equal to the number of dimensions in the tensor ({input.ndim})")
    lead = len(sizes) - input.ndim
    shape = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                raise RuntimeError(f"expand: -1 is not allowed for a new leading dimension {i}")
            shape.append(s)
            continue
        cur = input.shape[i - lead]
        if s == -1:
            s = cur
        if cur != s and cur != 1:
            raise RuntimeError(f"expand: the expanded size of the tensor ({s}) must match the "
                               f"existing size ({cur}) at non-singleton dimension {i}. Target "
                               f"sizes: {list(sizes)}. Tensor sizes: {list(input.shape)}")
        shape.append(s)
    return Expand.apply(input, tuple(shape))


def expand_as(input, other):
    return expand(input, other.shape)


def broadcast_to(input, shape):
    return expand(input, shape)


class Permute(Function):
    is_view = True

    def forward(self, x, perm):
        self.inv = tuple(np.argsort(perm))
        return x.transpose(perm)

    def backward(self, g):
        return Permute.call(g, self.inv), None


def permute(input, *dims):
    dims = _size_args(dims)
    if len(dims) != input.ndim:
        raise RuntimeError(f"permute: number of dims don't match: got {len(dims)} dims for a "
                           f"tensor of shape {input.shape}")
    perm = tuple(_wrap_dim(d, input.ndim) for d in dims)
    if sorted(perm) != list(range(input.ndim)):
        raise RuntimeError(f"permute: repeated dim in {dims}")
    return Permute.apply(input, perm)


def transpose(input, dim0, dim1):
    if input.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return input
    d0, d1 = _wrap_dim(dim0, input.ndim), _wrap_dim(dim1, input.ndim)
    perm = list(range(input.ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return Permute.apply(input, tuple(perm))


def t(input):
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, got shape {input.shape}")
    return transpose(input, 0, 1) if input.ndim == 2 else input


def T(input):
    """Reverse the dimensions (``x.T``)."""
    return Permute.apply(input, tuple(range(input.ndim))[::-1])


def mT(input):
    return transpose(input, -2, -1)


class Cat(Function):
    def forward(self, dim, *xs):
        self.dim = dim
        self.sizes = [x.shape[dim] for x in xs]
        return array_module(xs[0]).concatenate(xs, axis=dim)

    def backward(self, g):
        from pydl.ops.indexing import GetItem

        out = [None]
        start = 0
        for i, n in enumerate(self.sizes):
            if self.needs_input_grad[i + 1]:
                idx = [slice(None)] * len(g.shape)
                idx[self.dim] = slice(start, start + n)
                out.append(GetItem.call(g, tuple(idx)))
            else:
                out.append(None)
            start += n
        return tuple(out)


def cat(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat expects a non-empty list of tensors")
    ref = tensors[0]
    # PyTorch's legacy rule: 1-D empty tensors are skipped.
    tensors = [x for x in tensors if not (x.ndim == 1 and x.shape[0] == 0)] or tensors[:1]
    ref = tensors[0]
    d = _wrap_dim(dim, ref.ndim)
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"cat: expected Tensors, element {i} is a {type(x).__name__}")
        if x.ndim != ref.ndim or any(a != b for j, (a, b) in enumerate(zip(x.shape, ref.shape))
                                     if j != d):
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}: "
                               f"tensor 0 has shape {ref.shape}, tensor {i} has shape {x.shape}")
    return Cat.apply(d, *tensors)


concatenate = cat


def stack(tensors, dim=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack expects a non-empty list of tensors")
    for i, x in enumerate(tensors):
        if x.shape != tensors[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{tensors[0].shape} at entry 0 and {x.shape} at entry {i}")
    d = _wrap_dim(dim, tensors[0].ndim + 1)
    return cat([unsqueeze(x, d) for x in tensors], d)


def split(tensor, split_size_or_sections, dim=0):
    from pydl.ops.indexing import getitem

    d = _wrap_dim(dim, tensor.ndim)
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [min(step, n - s) for s in range(0, n, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise RuntimeError(f"split: sections {sizes} sum to {sum(sizes)}, but dimension "
                               f"{d} has size {n}")
    out = []
    start = 0
    for s in sizes:
        idx = (slice(None),) * d + (slice(start, start + s),)
        out.append(getitem(tensor, idx))
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    d = _wrap_dim(dim, input.ndim)
    n = input.shape[d]
    step = -(-n // chunks) if n else 1
    return split(input, step, d)


def unbind(input, dim=0):
    from pydl.ops.indexing import getitem

    d = _wrap_dim(dim, input.ndim)
    return tuple(getitem(input, (slice(None),) * d + (i,)) for i in range(input.shape[d]))


class Flip(Function):
    def forward(self, x, dims):
        self.dims = dims
        return array_module(x).flip(x, axis=dims)

    def backward(self, g):
        return Flip.call(g, self.dims), None


def flip(input, dims):
    return Flip.apply(input, normalize_dims(dims, input.ndim))


class Repeat(Function):
    """np.tile; the gradient sums the copies (a reshape and a sum, both differentiable)."""

    def forward(self, x, reps):
        self.in_shape = x.shape
        self.reps = reps
        return array_module(x).tile(x, reps)

    def backward(self, g):
        shape = self.in_shape
        lead = len(self.reps) - len(shape)
        full = (1,) * lead + shape
        # Split each axis into (repeat, size) and sum over the repeats.
        split_shape = []
        for r, s in zip(self.reps, full):
            split_shape += [r, s]
        from pydl.ops.reduction import Sum

        g = Sum.call(Reshape.call(g, tuple(split_shape), False),
                     tuple(range(0, 2 * len(full), 2)), False)
        return Reshape.call(g, shape, False), None


def repeat(input, *sizes):
    sizes = _size_args(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError(f"repeat: number of repeat dims ({len(sizes)}) can not be smaller "
                           f"than number of tensor dims ({input.ndim})")
    return Repeat.apply(input, tuple(sizes))


# -- padding --------------------------------------------------------------------------------------
def _pad_index(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """Source index for each position of a padded axis (reflect/replicate/circular)."""
    pos = np.arange(-before, n + after)
    if mode == "replicate":
        return np.clip(pos, 0, n - 1)
    if mode == "circular":
        return pos % n
    # reflect: mirror about the edge elements (edge not repeated): period 2(n-1)
    period = 2 * (n - 1)
    m = np.abs(pos) % period if period else np.zeros_like(pos)
    return np.where(m >= n, period - m, m)


class Pad(Function):
    """Constant mode: crop negative pads, then pad with ``value``; its gradient is the same op
    with the pads negated (crop what was added, zero-pad what was cropped). Other modes: a
    gather along each padded axis (``_pad_index``); the gradient scatter-adds back (IndexAdd),
    whose gradient is the gather again."""

    def forward(self, x, pads, mode, value):
        self.in_shape = x.shape
        self.pads = pads  # ((axis, before, after), ...)
        self.mode = mode
        xp = array_module(x)
        if mode == "constant":
            width = [(0, 0)] * x.ndim
            for axis, b, a in pads:
                width[axis] = (b, a)
            # Negative padding crops, as in PyTorch.
            crop = tuple(slice(-b if b < 0 else None, a if a < 0 else None)
                         for b, a in width)
            width = [(max(b, 0), max(a, 0)) for b, a in width]
            return xp.pad(x[crop], width, mode="constant", constant_values=value)
        self.index = []
        out = x
        for axis, b, a in pads:
            idx = xp.asarray(_pad_index(x.shape[axis], b, a, mode))
            self.index.append((axis, idx))
            out = xp.take(out, idx, axis=axis)
        return out

    def backward(self, g):
        from pydl.ops.indexing import IndexAdd

        if self.mode == "constant":
            crop = tuple((axis, -b, -a) for axis, b, a in self.pads)
            return Pad.call(g, crop, "constant", 0), None, None, None
        for axis, idx in reversed(self.index):
            g = IndexAdd.call(g, axis, idx, self.in_shape[axis])
        return g, None, None, None


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dims: ``pad = (left_last, right_last, left_2nd_last, ...)``,
    as torch.nn.functional.pad. Modes: constant (value, default 0), reflect, replicate, circular."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"pad: padding length must be divisible by 2, got {len(pad)}")
    if len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding length {len(pad)} is too large for a {input.ndim}-d "
                         f"input of shape {input.shape}")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(f"pad: unknown mode {mode!r}; expected constant, reflect, replicate or "
                         "circular")
    pads = []
    for i in range(len(pad) // 2):
        axis = input.ndim - 1 - i
        b, a = pad[2 * i], pad[2 * i + 1]
        n = input.shape[axis]
        if mode != "constant":
            if b < 0 or a < 0:
                raise ValueError(f"pad: negative padding is only supported in constant mode")
            if mode == "reflect" and (b >= n or a >= n):
                raise ValueError(f"pad: reflect padding ({b}, {a}) must be smaller than the "
                                 f"input dimension {axis} of size {n} (input shape {input.shape})")
            if mode == "circular" and (b > n or a > n):
                raise ValueError(f"pad: circular padding ({b}, {a}) can be at most the size {n} "
                                 f"of dimension {axis} (input shape {input.shape})")
            if n == 0 and (b or a):
                raise ValueError(f"pad: cannot {mode}-pad an empty dimension {axis}")
        elif n + b + a < 0:
            raise ValueError(f"pad: padding ({b}, {a}) leaves dimension {axis} of size {n} with "
                             f"negative size")
        pads.append((axis, b, a))
    return Pad.apply(input, tuple(pads), mode, 0 if value is None else value)
