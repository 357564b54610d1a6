"""Fixtures for the emulated CUDA kernels: ``kernels`` wraps pydl._C_cuda_emu (the CUDA
launchers and device code compiled by g++ against cuda/emu/cuda_emu.h)."""
import os
import zlib

import numpy as np
import pytest


@pytest.fixture(scope="session")
def emu_module():
    try:
        from pydl import _C_cuda_emu
    except ImportError as e:
        # Absent from release wheels (PYDL_CUDA_EMU=OFF) and where the C++ compiler lacks C++20.
        # .ci/run sets PYDL_REQUIRE_EMU=1 for its source-build run, where the module must exist,
        # so that these tests can never silently stop running in CI.
        if os.environ.get("PYDL_REQUIRE_EMU") == "1":
            pytest.fail(f"PYDL_REQUIRE_EMU=1 but pydl._C_cuda_emu is not importable: {e}")
        pytest.skip(f"pydl._C_cuda_emu not built (release wheels leave it out): {e}")
    return _C_cuda_emu


@pytest.fixture(scope="session")
def kernels(emu_module):
    from pydl._cuda_kernels import CudaKernels

    return CudaKernels(emu_module)


class Guarded:
    """An array inside a larger buffer whose margins hold a sentinel, so that a kernel reading
    out of bounds sees NaN (it reaches the result) and one writing out of bounds is caught by
    ``check()``. ``offset`` elements before the array make its start misaligned when odd."""

    def __init__(self, values, offset=16, margin=64, fill=np.nan):
        values = np.asarray(values)
        self.buffer = np.full(values.size + offset + margin, fill, dtype=values.dtype)
        self.fill = fill
        self.lo, self.hi = offset, offset + values.size
        self.array = self.buffer[self.lo:self.hi].reshape(values.shape)
        self.array[...] = values

    def check(self):
        for part in (self.buffer[:self.lo], self.buffer[self.hi:]):
            ok = np.isnan(part) if np.isnan(self.fill) else part == self.fill
            assert ok.all(), "kernel wrote outside its buffer"



@pytest.fixture(scope="session")
def guarded():
    """The Guarded class (sentinel margins around an array)."""
    return Guarded


@pytest.fixture
def rng(request):
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))
