"""More shape ops with torch's names and errors: ``broadcast_tensors``/``broadcast_shapes``,
``roll``, ``tril``/``triu`` (``diagonal=``), ``diff`` (``n``, ``dim``, ``prepend``, ``append``),
``meshgrid`` (``indexing="ij" | "xy"``), ``rot90``, ``outer``, ``kron``.

Ops that are a rearrangement of existing ones (rot90 = flip + transpose, diff = cat + slices
+ subtraction, outer/kron = reshapes and a broadcast product, meshgrid = reshape + expand) are
written as that composition: their gradients, double gradients and view semantics are those of
the parts. roll and tril/triu are ops of their own, each its own gradient's shape.
"""
from __future__ import annotations

import warnings

import numpy as np

from pydl import dtypes as _dtypes
from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops import elementwise as _e
from pydl.ops import shape as _s
from pydl.tensor import Tensor, _wrap_dim


def _need_tensor(name, x, arg="input", pos=1):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}")


# -- broadcasting ---------------------------------------------------------------------------------
def broadcast_shapes(*shapes) -> tuple:
    """The shape tensors of these shapes broadcast to (torch.broadcast_shapes)."""
    out = []
    for k, shape in enumerate(shapes):
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        for s in shape:
            if s < 0:
                raise RuntimeError(f"Trying to create tensor with negative dimension {s}: "
                                   f"{list(shape)}")
        n = max(len(out), len(shape))
        a = [1] * (n - len(out)) + out
        b = [1] * (n - len(shape)) + list(shape)
        merged = []
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y and x != 1 and y != 1:
                raise RuntimeError(f"The size of tensor a ({x}) must match the size of tensor b "
                                   f"({y}) at non-singleton dimension {i}")
            merged.append(y if x == 1 else x)
        out = merged
    return tuple(out)


def broadcast_tensors(*tensors):
    """Views of the tensors expanded to their common shape (torch.broadcast_tensors)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"broadcast_tensors(): expected Tensors, element {i} is a "
                            f"{type(t).__name__}")
    shape = broadcast_shapes(*(t.shape for t in tensors))
    return tuple(t if t.shape == shape else _s.expand(t, shape) for t in tensors)


# -- roll -----------------------------------------------------------------------------------------
class Roll(Function):
    """Cyclic shift; its gradient is the shift back."""

    def forward(self, x, shifts, dims):
        self.args = (shifts, dims)
        if dims is None:
            return array_module(x).roll(x, shifts[0])
        return array_module(x).roll(x, shifts, axis=dims)

    def backward(self, g):
        shifts, dims = self.args
        return Roll.call(g, tuple(-s for s in shifts), dims), None, None


def roll(input, shifts, dims=None):
    _need_tensor("roll", input)
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    if dims is None:
        if len(shifts) == 0:
            raise RuntimeError("`shifts` required")
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                               f"dims:0")
        return Roll.apply(input, (int(shifts[0]),), None)
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if len(shifts) == 0:
        raise RuntimeError("`shifts` required")
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, "
                           f"dims:{len(dims)}")
    dims = tuple(_wrap_dim(d, max(input.ndim, 1)) for d in dims)
    if input.ndim == 0:
        return _e.clone(input)
    return Roll.apply(input, tuple(int(s) for s in shifts), dims)


# -- tril / triu ----------------------------------------------------------------------------------
class Tri(Function):
    """Keep the lower (tril) or upper (triu) triangle of the last two dims; zero the rest. The
    gradient is the same mask applied to g."""

    def forward(self, x, diagonal, lower):
        self.args = (diagonal, lower)
        xp = array_module(x)
        return xp.tril(x, diagonal) if lower else xp.triu(x, diagonal)

    def backward(self, g):
        diagonal, lower = self.args
        return Tri.call(g, diagonal, lower), None, None


def _tri(name, input, diagonal, lower):
    _need_tensor(name, input)
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
    if not isinstance(diagonal, (int, np.integer)) or isinstance(diagonal, bool):
        raise TypeError(f"{name}(): argument 'diagonal' must be int, not "
                        f"{type(diagonal).__name__}")
    return Tri.apply(input, int(diagonal), lower)


def tril(input, diagonal=0):
    return _tri("tril", input, diagonal, True)


def triu(input, diagonal=0):
    return _tri("triu", input, diagonal, False)


# -- diff -----------------------------------------------------------------------------------------
def _narrow(x, dim, start, stop):
    key = [slice(None)] * x.ndim
    key[dim] = slice(start, stop)
    return x[tuple(key)]


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The n-th forward difference along ``dim`` (torch.diff), after concatenating ``prepend``
    and ``append``; bool tensors give logical xor, as torch."""
    _need_tensor("diff", input)
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if n < 0:
        raise RuntimeError(f"order must be non-negative but got {n}")
    d = _wrap_dim(dim, input.ndim)
    parts = []
    for arg in (prepend, input, append):
        if arg is None:
            continue
        _need_tensor("diff", arg, "prepend" if arg is prepend else "append")
        if arg is not input:
            if arg.ndim != input.ndim:
                raise RuntimeError("diff expects prepend or append to be the same dimension as "
                                   "input")
            for i in range(input.ndim):
                if i != d and arg.shape[i] != input.shape[i]:
                    raise RuntimeError(
                        f"diff expects the shape of tensor to prepend or append to match that "
                        f"of input except along the differencing dimension; input.size({i}) = "
                        f"{input.shape[i]}, but got tensor.size({i}) = {arg.shape[i]}")
        parts.append(arg)
    if len(parts) > 1:
        dtype = _dtypes.result_type(*parts)
        parts = [p if p.dtype == dtype else _e.cast(p, dtype) for p in parts]
        x = _s.cat(parts, d)
    else:
        x = input
    if n == 0:
        return x
    for _ in range(n):
        length = x.shape[d]
        if length == 0:
            break
        hi, lo = _narrow(x, d, 1, length), _narrow(x, d, 0, length - 1)
        x = _e.ne(hi, lo) if x.dtype.kind == "b" else _e.sub(hi, lo)
    return x


# -- meshgrid -------------------------------------------------------------------------------------
def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 0-d or 1-d tensors (torch.meshgrid). ``indexing="ij"``: output i
    varies along dim i; ``"xy"``: the first two dims swapped (Cartesian, NumPy's default).
    Without ``indexing`` torch warns and uses "ij"; so does pydl. The outputs are expanded
    views: write to a clone()."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f'torch.meshgrid: indexing must be one of "xy" or "ij", but '
                           f"received: {indexing}")
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"meshgrid(): expected Tensors, element {i} is a "
                            f"{type(t).__name__}")
        if t.ndim > 1:
            raise RuntimeError(f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list "
                               f"but got a tensor of shape {t.shape}")
        if t.dtype != tensors[0].dtype:
            raise RuntimeError("meshgrid expects all tensors to have the same dtype")
        _e._check_same_device(tensors[0], t, "meshgrid")
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        order[0], order[1] = 1, 0  # grid axis k comes from input order[k]
    sizes = tuple(int(np.prod(tensors[i].shape)) for i in order)
    out = [None] * len(tensors)
    for axis, i in enumerate(order):
        shape = [1] * len(tensors)
        shape[axis] = sizes[axis]
        out[i] = _s.expand(_s.reshape(tensors[i], tuple(shape)), sizes)
    return tuple(out)


# -- rot90 ----------------------------------------------------------------------------------------
def rot90(input, k=1, dims=(0, 1)):
    """Rotate by 90 degrees k times in the plane of ``dims``, from dims[0] towards dims[1]."""
    _need_tensor("rot90", input)
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = (_wrap_dim(d, input.ndim) for d in dims)
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and "
                           f"dim1 = {d1}")
    k = int(k) % 4
    if k == 1:
        return _s.transpose(_s.flip(input, (d1,)), d0, d1)
    if k == 2:
        return _s.flip(input, (d0, d1))
    if k == 3:
        return _s.transpose(_s.flip(input, (d0,)), d0, d1)
    return _e.clone(input)


# -- outer, kron ----------------------------------------------------------------------------------
def outer(input, vec2):
    """input[i] * vec2[j] for 1-d tensors (torch.outer, alias ger)."""
    _need_tensor("outer", input)
    _need_tensor("outer", vec2, "vec2", 2)
    for name, t in (("self", input), ("vec2", vec2)):
        if t.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {name}, but got {t.ndim}-D")
    return _e.mul(_s.reshape(input, (input.shape[0], 1)), vec2)


ger = outer


def kron(input, other):
    """The Kronecker product: block (i, j, ...) is input[i, j, ...] * other; the shorter shape
    is padded with leading 1s."""
    _need_tensor("kron", input)
    _need_tensor("kron", other, "other", 2)
    n = max(input.ndim, other.ndim)
    sa = (1,) * (n - input.ndim) + input.shape
    sb = (1,) * (n - other.ndim) + other.shape
    # Interleave: a as (a0, 1, a1, 1, ...), b as (1, b0, 1, b1, ...); the product's
    # consecutive pairs of axes merge into the result's axes.
    a = _s.reshape(input, tuple(v for s in sa for v in (s, 1)))
    b = _s.reshape(other, tuple(v for s in sb for v in (1, s)))
    prod = _e.mul(a, b)
    return _s.reshape(prod, tuple(x * y for x, y in zip(sa, sb)))


# -- Tensor methods and in-place forms ------------------------------------------------------------
def _inplace(fn):
    def method(self, *args, **kwargs):
        return self._inplace(lambda s, *a: fn(s, *a, **kwargs), *args)

    method.__name__ = fn.__name__ + "_"
    return method


methods = {
    "roll": roll, "tril": tril, "triu": triu, "tril_": _inplace(tril), "triu_": _inplace(triu),
    "diff": diff, "rot90": rot90, "outer": outer, "ger": outer, "kron": kron,
    "broadcast_to": _s.broadcast_to,
}
