"""``pydl.accelerator``: which accelerator this process can use, as ``torch.accelerator``.

pydl's one accelerator type is CUDA (through CuPy and ``pydl._C_cuda``); scripts written for
PyTorch 2.6+ pick their device with::

    device = (torch.accelerator.current_accelerator()
              if torch.accelerator.is_available() else torch.device("cpu"))
"""
from __future__ import annotations

from typing import Optional

from pydl import cuda as _cuda
from pydl.device import device as _device


def is_available() -> bool:
    """True when an accelerator (a CUDA GPU that pydl can drive) is usable."""
    return _cuda.is_available()


def device_count() -> int:
    """Number of accelerator devices (0 without one)."""
    return _cuda.device_count()


def current_accelerator(check_available: bool = False) -> Optional[_device]:
    """The accelerator's device type, ``device(type='cuda')``, or None when pydl was built
    without CUDA (or, with ``check_available=True``, when no GPU is usable right now)."""
    from pydl._config import cuda_module

    if check_available:
        return _device("cuda") if is_available() else None
    return _device("cuda") if cuda_module() is not None else None


def current_device_index() -> int:
    """The index of the current accelerator device (pydl uses device 0)."""
    if not is_available():
        raise RuntimeError(f"pydl.accelerator: no accelerator is available "
                           f"({_cuda.unavailable_reason()})")
    return 0


current_device_idx = current_device_index


def set_device_index(device) -> None:
    """Select the current accelerator device; pydl drives device 0 only."""
    index = device.index if isinstance(device, _device) else device
    if index not in (None, 0):
        raise ValueError(f"pydl.accelerator: pydl uses device 0 only, got index {index}")


set_device_idx = set_device_index


def synchronize(device=None) -> None:
    """Wait for the accelerator's queued work (a no-op without one)."""
    if is_available():
        import cupy

        cupy.cuda.get_current_stream().synchronize()


__all__ = ["current_accelerator", "current_device_idx", "current_device_index", "device_count",
           "is_available", "set_device_idx", "set_device_index", "synchronize"]
