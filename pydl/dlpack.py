"""DLPack: zero-copy exchange of tensors with NumPy, PyTorch, CuPy, JAX and other array libraries.

    t = pydl.randn(3, 4)
    x = torch.from_dlpack(t)        # shares t's memory: x[0, 0] = 1 is seen in t
    a = numpy.from_dlpack(t)        # the same, for NumPy
    u = pydl.from_dlpack(x)         # and back: any object with __dlpack__, or a DLPack capsule

``Tensor.__dlpack__`` and ``Tensor.__dlpack_device__`` (attached to ``pydl.Tensor`` here) hand
out the tensor's own array (NumPy on CPU, CuPy on CUDA) through that array's DLPack export, so
no byte is copied; ``from_dlpack`` wraps what NumPy's or CuPy's ``from_dlpack`` import gives.

PyTorch's rules (``torch.Tensor.__dlpack__``, ``torch.from_dlpack``):
  * a tensor that requires grad cannot be exported: ``BufferError("Can't export tensors that
    require gradient, use tensor.detach()")``; export ``t.detach()``, which shares the memory;
  * an imported tensor is a new leaf with ``requires_grad=False`` and a version counter of its
    own, starting at 0: writes made through the other library are not seen by pydl's autograd
    (as writes through NumPy to ``pydl.from_numpy`` memory are not), so do not change memory
    that a pydl graph has saved for backward;
  * the memory stays alive as long as either side uses it.
"""
from __future__ import annotations

import ctypes
from typing import Any, Optional, Tuple

import numpy as np

from pydl import dtypes as _dtypes
from pydl.tensor import Tensor

__all__ = ["from_dlpack", "DLDeviceType"]


class DLDeviceType:
    """DLPack's device type codes (dlpack.h) that pydl handles."""

    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3  # pinned host memory: readable by the CPU
    kDLCUDAManaged = 13  # unified memory: CuPy imports it


_CPU_TYPES = (DLDeviceType.kDLCPU, DLDeviceType.kDLCUDAHost)
_CUDA_TYPES = (DLDeviceType.kDLCUDA, DLDeviceType.kDLCUDAManaged)


def _is_numpy(array) -> bool:
    return isinstance(array, np.ndarray)


def __dlpack__(self: Tensor, stream: Optional[Any] = None, *, max_version=None, dl_device=None,
               copy: Optional[bool] = None):
    """Export this tensor as a DLPack capsule that shares its memory (the array API's
    ``__dlpack__``; ``stream`` is CUDA's, as CuPy takes it, and must be None on CPU)."""
    if self.requires_grad:
        raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
    kwargs = {}
    if max_version is not None:
        kwargs["max_version"] = max_version
    if dl_device is not None:
        kwargs["dl_device"] = dl_device
    if copy is not None:
        kwargs["copy"] = copy
    array = self._data
    if _is_numpy(array):
        if stream is not None:
            raise BufferError(f"__dlpack__: a CPU tensor takes no stream, got stream={stream!r}")
        try:
            return array.__dlpack__(**kwargs)
        except TypeError:
            # NumPy before 2.1 has no max_version/dl_device/copy: an unversioned capsule is what
            # the DLPack protocol asks a producer without versioned support to give.
            if set(kwargs) - {"max_version"}:
                raise
            return array.__dlpack__()
    return array.__dlpack__(stream=stream, **kwargs)


def __dlpack_device__(self: Tensor) -> Tuple[int, int]:
    """``(device_type, device_id)`` in DLPack's codes: ``(1, 0)`` on CPU, ``(2, index)`` on CUDA."""
    return tuple(int(v) for v in self._data.__dlpack_device__())


Tensor.__dlpack__ = __dlpack__
Tensor.__dlpack_device__ = __dlpack_device__


class _Capsule:
    """A bare DLPack capsule (from a ``to_dlpack`` function) dressed as a ``__dlpack__`` producer,
    so that NumPy's and CuPy's importers take it. A capsule can be consumed only once."""

    def __init__(self, capsule):
        self.capsule = capsule
        self.device = _capsule_device(capsule)

    def __dlpack__(self, stream=None, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return self.device


def _is_capsule(obj) -> bool:
    return type(obj).__name__ == "PyCapsule"


def _capsule_device(capsule) -> Tuple[int, int]:
    """The device of a DLPack capsule, read from its DLTensor (dlpack.h): a legacy "dltensor"
    capsule points at a DLManagedTensor whose first member is the DLTensor {void* data;
    DLDevice device; ...}; a "dltensor_versioned" one at a DLManagedTensorVersioned {DLPackVersion
    version; void* manager_ctx; deleter; uint64 flags; DLTensor dl_tensor}."""
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    name = get_name(capsule)
    if name == b"dltensor":
        offset = 0
    elif name == b"dltensor_versioned":
        offset = 8 + 2 * ctypes.sizeof(ctypes.c_void_p) + 8  # version, ctx, deleter, flags
    else:
        raise ValueError(f"from_dlpack: a capsule named {name!r} is not an unconsumed DLPack "
                         "capsule (expected 'dltensor' or 'dltensor_versioned'; a capsule can "
                         "be consumed only once)")
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object,
                                                                   ctypes.c_char_p]
    base = get_pointer(capsule, name)
    device = (ctypes.c_int32 * 2).from_address(base + offset + ctypes.sizeof(ctypes.c_void_p))
    return int(device[0]), int(device[1])


def from_dlpack(ext_tensor: Any, *, copy: Optional[bool] = None) -> Tensor:
    """A pydl tensor sharing the memory of ``ext_tensor``: any object with ``__dlpack__`` and
    ``__dlpack_device__`` (a PyTorch tensor, NumPy or CuPy array, JAX array, pydl tensor), or a
    DLPack capsule. CPU memory becomes a CPU tensor (over a NumPy array), CUDA memory a CUDA
    tensor (over a CuPy array; needs CuPy).

    ``copy=None`` (default) and ``copy=False`` share the memory (False refuses to copy);
    ``copy=True`` returns a tensor with memory of its own. The result has
    ``requires_grad=False`` and its own version counter (see the module docstring)."""
    if copy not in (None, True, False):
        raise TypeError(f"from_dlpack: copy must be None, True or False, got {copy!r}")
    producer = _Capsule(ext_tensor) if _is_capsule(ext_tensor) else ext_tensor
    if not (hasattr(producer, "__dlpack__") and hasattr(producer, "__dlpack_device__")):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ and __dlpack_device__ "
                        f"or a DLPack capsule, got {type(ext_tensor).__name__}")
    device_type, device_id = producer.__dlpack_device__()
    if device_type in _CPU_TYPES:
        array = np.from_dlpack(producer)
    elif device_type in _CUDA_TYPES:
        try:
            import cupy
        except ImportError:
            raise RuntimeError(f"from_dlpack: {type(ext_tensor).__name__} lives on CUDA device "
                               f"{device_id}; CUDA tensors need CuPy (pip install "
                               "'pydl-nn[cuda]')") from None
        with cupy.cuda.Device(device_id):
            array = cupy.from_dlpack(producer)
    else:
        raise BufferError(f"from_dlpack: DLPack device type {device_type} (device {device_id}) "
                          "is not supported; pydl takes CPU (1) and CUDA (2) memory")
    try:
        _dtypes.as_dtype(array.dtype)
    except (TypeError, ValueError) as e:
        raise TypeError(f"from_dlpack: pydl has no dtype for {array.dtype} data ({e})") from None
    if copy:
        array = array.copy()
    return Tensor._wrap(array)
