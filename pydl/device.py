"""Devices: ``pydl.device('cpu')``, ``pydl.device('cuda')``.

A CPU tensor holds a NumPy array, a CUDA tensor a CuPy array; the array's type is the truth, and
``array_module`` gives the NumPy-compatible module that operates on it.
"""
from __future__ import annotations

import numpy as np


class device:
    """A device name with an optional index, compared equal to its string form."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0', got {spec!r}")
        name, _, idx = spec.partition(":")
        if name not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {spec!r}: pydl knows 'cpu' and 'cuda'")
        self.type = name
        if idx:
            if not idx.isdigit():
                raise ValueError(f"bad device index in {spec!r}")
            index = int(idx)
        if name == "cpu" and index not in (None, 0):
            raise ValueError(f"cpu has no device index {index}")
        self.index = index if name == "cuda" else None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + (
            f", index={self.index})" if self.index is not None else ")")

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (ValueError, TypeError):
                return False
        if not isinstance(other, device):
            return NotImplemented
        if self.type != other.type:
            return False
        return self.index is None or other.index is None or self.index == other.index

    def __hash__(self) -> int:
        return hash(self.type)


CPU = device("cpu")


def device_of(array) -> device:
    # np.generic too: NumPy hands back scalars for 0-d results, and a scalar is host memory.
    if isinstance(array, (np.ndarray, np.generic)):
        return CPU
    dev = getattr(array, "device", None)
    idx = getattr(dev, "id", 0)
    return device("cuda", idx)


def array_module(array):
    """numpy for CPU arrays (and NumPy scalars), cupy for CUDA arrays."""
    if isinstance(array, (np.ndarray, np.generic)):
        return np
    import cupy

    return cupy


def to_device_array(array, dev: device):
    """Copy (only if needed) an ndarray to the given device."""
    dev = device(dev)
    if dev.type == "cpu":
        if isinstance(array, np.ndarray):
            return array
        return array.get()
    from pydl import cuda

    reason = cuda.unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"cannot use device 'cuda': {reason}")
    import cupy

    if isinstance(array, cupy.ndarray) and (dev.index is None or array.device.id == dev.index):
        return array
    with cupy.cuda.Device(dev.index or 0):
        return cupy.asarray(array)
