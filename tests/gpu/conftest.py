"""GPU parity tests: the same checks as tests/cuda (emulated) on real CuPy arrays through
pydl._C_cuda. Every test here is skipped unless pydl.cuda.is_available()."""
import numpy as np
import pytest

from pydl import cuda



@pytest.fixture(scope="session")
def gpu_kernels():
    return cuda.kernels()


@pytest.fixture(scope="session")
def cp():
    import cupy

    return cupy


@pytest.fixture
def rng():
    return np.random.default_rng(0)
