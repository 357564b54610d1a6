"""Tensor creation: ``tensor``, ``from_numpy``, ``zeros/ones/full/empty/arange/linspace/eye``,
the ``*_like`` forms and random ``rand/randn/randint/normal``, all with PyTorch's signatures."""
from __future__ import annotations

import math

import numpy as np

from pydl import dtypes as _dtypes
from pydl import random as _random
from pydl.device import device as _device
from pydl.device import to_device_array
from pydl.tensor import Tensor, _to_array


def _finish(arr, dtype, device, requires_grad) -> Tensor:
    if dtype is not None:
        arr = arr.astype(_dtypes.as_dtype(dtype), copy=False)
    if device is not None and _device(device).type != "cpu":
        arr = to_device_array(arr, _device(device))
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s.item())
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            raise TypeError(f"size must be ints, got {size!r}")
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {size}")
        out.append(int(s))
    return tuple(out)


def _float(dtype):
    return _dtypes.as_dtype(dtype) if dtype is not None else _dtypes.get_default_dtype()


def tensor(data, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, numbers, arrays or tensors).
    Python floats become float32 (the default dtype), ints int64, bools bool."""
    if isinstance(data, Tensor):
        arr = data.numpy_view().copy()
    elif isinstance(data, np.ndarray):
        arr = data.copy()
    else:
        # The requested dtype goes in at conversion: Python floats must not pass through the
        # default float32 first (1e-17 would come back as 9.99999984e-18 in float64).
        arr = _to_array(data, _dtypes.as_dtype(dtype) if dtype is not None else None)
    return _finish(arr, dtype, device, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with a NumPy array when dtype and device allow."""
    if isinstance(data, Tensor):
        return data.to(device or data.device, dtype or data.dtype)
    if isinstance(data, np.ndarray):
        return _finish(data, dtype, device, False)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory: writes through either are seen by both."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    _dtypes.as_dtype(array.dtype)
    return Tensor._wrap(array)


def zeros(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(np.zeros(_size(size), dtype=_float(dtype)), None, device, requires_grad)


def ones(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(np.ones(_size(size), dtype=_float(dtype)), None, device, requires_grad)


def empty(*size, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(np.empty(_size(size), dtype=_float(dtype)), None, device, requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    if dtype is None:
        dtype = _to_array(fill_value).dtype
    return _finish(np.full(_size((size,)), fill_value, dtype=_dtypes.as_dtype(dtype)), None,
                   device, requires_grad)


def _like(fn, input, dtype, device, requires_grad, *args):
    return fn(input.shape, *args, dtype=dtype or input.dtype, requires_grad=requires_grad,
              device=device or input.device)


def zeros_like(input, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _like(zeros, input, dtype, device, requires_grad)


def ones_like(input, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _like(ones, input, dtype, device, requires_grad)


def empty_like(input, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _like(empty, input, dtype, device, requires_grad)


def full_like(input, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    return full(input.shape, fill_value, dtype=dtype or input.dtype, requires_grad=requires_grad,
                device=device or input.device)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device=None) -> Tensor:
    """[start, end) in steps; ints give int64, any float argument the default float dtype."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, end, step))
        dtype = _dtypes.get_default_dtype() if is_float else _dtypes.int64
    n = max(0, math.ceil((end - start) / step))
    arr = (start + step * np.arange(n, dtype=np.float64)) if dtype.kind == "f" else \
        np.arange(start, end, step)
    return _finish(arr, dtype, device, requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False, device=None) -> Tensor:
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    return _finish(np.linspace(start, end, steps), _float(dtype), device, requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(np.eye(n, m), _float(dtype), device, requires_grad)


def rand(*size, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Uniform on [0, 1)."""
    arr = _random.generator(generator).random(_size(size))
    return _finish(arr, _float(dtype), device, requires_grad)


def randn(*size, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Standard normal."""
    arr = _random.generator(generator).standard_normal(_size(size))
    return _finish(arr, _float(dtype), device, requires_grad)


def randint(low, high=None, size=None, generator=None, dtype=None, device=None) -> Tensor:
    """Integers uniform on [low, high); ``randint(high, size)`` as in PyTorch."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() needs a size tuple: randint(low, high, size) or "
                            "randint(high, size)")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"randint: expected low < high, got low={low}, high={high}")
    arr = _random.generator(generator).integers(low, high, size=_size((size,)))
    return _finish(arr, dtype or _dtypes.int64, device, False)


def randperm(n, generator=None, dtype=None, device=None) -> Tensor:
    return _finish(_random.generator(generator).permutation(n), dtype or _dtypes.int64, device,
                   False)


def normal(mean=0.0, std=1.0, size=None, generator=None, dtype=None, requires_grad=False,
           device=None) -> Tensor:
    """Normal samples: ``normal(mean, std, size)`` with float mean/std, or element-wise with
    tensor mean/std."""
    m = mean.numpy_view() if isinstance(mean, Tensor) else mean
    s = std.numpy_view() if isinstance(std, Tensor) else std
    if size is None:
        size = np.broadcast_shapes(np.shape(m), np.shape(s))
    arr = _random.generator(generator).normal(m, s, size=_size((size,)))
    ref = mean if isinstance(mean, Tensor) else std if isinstance(std, Tensor) else None
    return _finish(arr, dtype or (ref.dtype if ref is not None else _float(None)), device,
                   requires_grad)


def rand_like(input, dtype=None, requires_grad=False, device=None) -> Tensor:
    return rand(input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad,
                device=device or input.device)


def randn_like(input, dtype=None, requires_grad=False, device=None) -> Tensor:
    return randn(input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad,
                 device=device or input.device)
