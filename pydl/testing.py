"""Helpers for testing pydl ops (and code built on pydl), like ``torch.testing``."""
from __future__ import annotations

import numpy as np

from pydl.tensor import Tensor

# Default tolerances by dtype: float32 carries ~7 significant digits.
_TOL = {np.dtype(np.float32): (1.3e-5, 1e-5), np.dtype(np.float64): (1e-7, 1e-7),
        np.dtype(np.float16): (1e-3, 1e-5)}


def to_numpy(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.numpy_view()
    return np.asarray(x)


def assert_close(actual, expected, rtol: float = None, atol: float = None, msg: str = "",
                 check_shape: bool = True) -> None:
    """Assert |actual - expected| <= atol + rtol |expected| elementwise (NaNs must match)."""
    a, e = to_numpy(actual), to_numpy(expected)
    if check_shape and a.shape != e.shape:
        raise AssertionError(f"shape mismatch: actual {a.shape} vs expected {e.shape}. {msg}")
    d_rtol, d_atol = _TOL.get(a.dtype, (0.0, 0.0))
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    a64 = a.astype(np.float64) if a.dtype.kind in "fiub" else a
    e64 = e.astype(np.float64) if e.dtype.kind in "fiub" else e
    if a64.size == 0 and e64.size == 0:
        return
    ok = np.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
    if not ok.all():
        bad = np.argwhere(~ok)
        idx = tuple(bad[0]) if a64.ndim else ()
        err = np.abs(a64 - e64)
        raise AssertionError(
            f"{int((~ok).sum())} of {ok.size} elements differ (rtol={rtol}, atol={atol}); first at "
            f"{idx}: actual {a64[idx]!r} vs expected {e64[idx]!r}; max abs error "
            f"{np.nanmax(err):.3g}. {msg}")


def noncontiguous(array: np.ndarray) -> np.ndarray:
    """A non-contiguous view holding the same values (every other element of a larger buffer)."""
    array = np.asarray(array)
    if array.ndim == 0:
        return array
    big = np.empty(array.shape[:-1] + (array.shape[-1] * 2,), dtype=array.dtype)
    view = big[..., ::2]
    view[...] = array
    return view


def rand_array(shape, dtype=np.float64, rng=None, low=-1.0, high=1.0) -> np.ndarray:
    rng = rng or np.random.default_rng(0)
    return rng.uniform(low, high, size=shape).astype(dtype)
