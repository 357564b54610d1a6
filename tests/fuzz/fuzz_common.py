"""Shared settings of the fuzz tests (tests/fuzz/).

Each kernel family gets a hypothesis test that draws shapes, strides, paddings, dilations,
groups and hostile index arrays: valid inputs are compared with a float64 NumPy reference
written in the test, invalid ones must raise a Python exception (never crash, never return).
CI also runs this folder under AddressSanitizer (.ci/run, PYDL_SANITIZE=address), where
PYDL_FUZZ_EXAMPLES keeps the example count small; the normal suite uses a modest budget too.
"""
import os

import numpy as np
from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("PYDL_FUZZ_EXAMPLES", "25"))

fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# Exceptions a rejected input may raise: anything else (or a crash) fails the test.
CLEAN_ERRORS = (ValueError, TypeError, RuntimeError, IndexError, MemoryError)


def strided(a: np.ndarray, how: int) -> np.ndarray:
    """The same values as ``a`` in a different memory layout: 0 contiguous, 1 a view into a
    larger buffer (every other element of the last axis), 2 reversed along axis 0 (negative
    stride), 3 Fortran order."""
    if a.ndim == 0:
        return a.copy()  # (np.ascontiguousarray would make it 1-d)
    if how == 1:
        buf = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        buf[..., ::2] = a
        return buf[..., ::2]
    if how == 2:
        return a[::-1].copy()[::-1]
    if how == 3:
        return np.asfortranarray(a)
    return np.ascontiguousarray(a)


def tol(dtype):
    return dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
