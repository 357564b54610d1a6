"""Bitwise ops on integer and bool tensors: ``& | ^ ~ << >>`` and ``bitwise_and/or/xor/not``,
``bitwise_left_shift``/``bitwise_right_shift`` (torch's names).

On bool tensors these are the logical ops (True & False is False); on integer tensors they act
on the bits (``5 & 3 == 1``, ``~0 == -1``), as PyTorch. Floating tensors are refused, as
PyTorch refuses them. The result dtype is PyTorch's (``pydl.result_type``: int64 & bool is
int64, an int tensor & a Python int keeps the tensor's dtype). No gradient: the results are
integers.
"""
from __future__ import annotations

import numpy as np

from pydl import dtypes as _dtypes
from pydl.device import array_module
from pydl.tensor import Tensor


def _as_operand(x, name):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (bool, int, np.integer, np.bool_)):
        return x
    if isinstance(x, float):
        raise RuntimeError(f"{name}(): not implemented for a float operand ({x!r})")
    if isinstance(x, (np.ndarray, list, tuple)):
        return Tensor(np.asarray(x))
    raise TypeError(f"{name}(): unsupported operand type {type(x).__name__}")


def _check_integral(x, name):
    if isinstance(x, Tensor) and x.dtype.kind not in "iub":
        raise RuntimeError(f"\"{name}_cpu\" not implemented for '"
                           f"{_dtypes.torch_name(x.dtype)}': bitwise ops take integer or bool "
                           f"tensors (got dtype {x.dtype})")


def _binary(ufunc_name, name):
    def op(input, other):
        a, b = _as_operand(input, name), _as_operand(other, name)
        _check_integral(a, name)
        _check_integral(b, name)
        dtype = _dtypes.result_type(a, b)
        ad = a._data if isinstance(a, Tensor) else a
        bd = b._data if isinstance(b, Tensor) else b
        xp = array_module(ad) if isinstance(a, Tensor) else array_module(bd)
        if isinstance(a, Tensor) and ad.dtype != dtype:
            ad = ad.astype(dtype)
        if isinstance(b, Tensor) and bd.dtype != dtype:
            bd = bd.astype(dtype)
        if not isinstance(a, Tensor):
            ad = xp.asarray(ad, dtype=dtype)
        if not isinstance(b, Tensor):
            bd = xp.asarray(bd, dtype=dtype)
        return Tensor._wrap(xp.asarray(getattr(xp, ufunc_name)(ad, bd)))

    op.__name__ = name
    op.__doc__ = f"Elementwise {name} of integer or bool tensors (torch.{name})."
    return op


bitwise_and = _binary("bitwise_and", "bitwise_and")
bitwise_or = _binary("bitwise_or", "bitwise_or")
bitwise_xor = _binary("bitwise_xor", "bitwise_xor")
bitwise_left_shift = _binary("left_shift", "bitwise_left_shift")
bitwise_right_shift = _binary("right_shift", "bitwise_right_shift")


def bitwise_not(input):
    """~x: logical not of a bool tensor, the bits of an integer tensor flipped."""
    if not isinstance(input, Tensor):
        raise TypeError(f"bitwise_not(): argument 'input' must be a Tensor, got "
                        f"{type(input).__name__}")
    _check_integral(input, "bitwise_not")
    xp = array_module(input._data)
    return Tensor._wrap(xp.asarray(xp.invert(input._data)))


def _reflected(fn):
    return lambda self, other: fn(other, self)


def _inplace(fn):
    def op(self, other):
        return self._inplace(fn, other)

    return op


# Operators and methods attached to Tensor in pydl/ops/__init__.py.
methods = {
    "__and__": bitwise_and, "__rand__": _reflected(bitwise_and),
    "__or__": bitwise_or, "__ror__": _reflected(bitwise_or),
    "__xor__": bitwise_xor, "__rxor__": _reflected(bitwise_xor),
    "__invert__": bitwise_not,
    "__lshift__": bitwise_left_shift, "__rlshift__": _reflected(bitwise_left_shift),
    "__rshift__": bitwise_right_shift, "__rrshift__": _reflected(bitwise_right_shift),
    "__iand__": _inplace(bitwise_and), "__ior__": _inplace(bitwise_or),
    "__ixor__": _inplace(bitwise_xor),
    "bitwise_and": bitwise_and, "bitwise_or": bitwise_or, "bitwise_xor": bitwise_xor,
    "bitwise_not": bitwise_not, "bitwise_left_shift": bitwise_left_shift,
    "bitwise_right_shift": bitwise_right_shift,
    "bitwise_and_": _inplace(bitwise_and), "bitwise_or_": _inplace(bitwise_or),
    "bitwise_xor_": _inplace(bitwise_xor),
    "bitwise_not_": lambda self: self._inplace(bitwise_not),
}
