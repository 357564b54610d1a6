"""Overflow-checked size arithmetic for the ops that compute output shapes (conv, pooling).

Python integers never overflow, but every size ends up in the C++ kernels as an int64: a padding
of 2**63 - 1 used to wrap there and give a wrong output (zeros, or a tensor taller than its
input), and a product past 2**63 printed negative sizes. These helpers check each derived size
against int64 *before* anything reaches a kernel and raise RuntimeError (PyTorch's type for
"value cannot be converted to type int64_t without overflow" and "Storage size calculation
overflowed"), naming the op, the quantity and the value. The C++ side checks again
(csrc/common/checked.h), for callers of pydl._C.
"""
from __future__ import annotations

from typing import Iterable, Sequence

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1


def int64(op: str, what: str, value: int) -> int:
    """``value`` if it fits int64, else RuntimeError naming ``what``."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise RuntimeError(f"{op}: {what} = {value} does not fit int64 (value cannot be "
                           f"converted to type int64_t without overflow)")
    return value


def check_args(op: str, **named: Sequence[int]) -> None:
    """Every value of every named argument tuple fits int64."""
    for name, values in named.items():
        for v in values:
            if not INT64_MIN <= v <= INT64_MAX:
                raise RuntimeError(f"{op}: {name}={tuple(values)} does not fit int64 (value "
                                   f"cannot be converted to type int64_t without overflow)")


def window_extent(op: str, kernel: int, dilation: int) -> int:
    """The span of a dilated window, dilation * (kernel - 1) + 1, checked."""
    return int64(op, f"dilation * (kernel_size - 1) + 1 (kernel_size {kernel}, dilation "
                     f"{dilation})", dilation * (kernel - 1) + 1)


def padded_extent(op: str, size: int, padding: int) -> int:
    """size + 2 * padding, checked."""
    return int64(op, f"input size + 2 * padding (size {size}, padding {padding})",
                 size + 2 * padding)


def check_numel(op: str, what: str, shape: Iterable[int], itemsize: int) -> None:
    """The element count and byte count of ``shape`` fit int64 (a zero dimension makes any
    shape fine, as in NumPy and PyTorch)."""
    shape = tuple(int(d) for d in shape)
    n = 1
    for d in shape:
        n *= d
    if n * itemsize > INT64_MAX:
        raise RuntimeError(f"{op}: {what} of shape {shape} would hold {n} elements "
                           f"({n * itemsize} bytes), more than int64 can count (Storage size "
                           f"calculation overflowed)")
