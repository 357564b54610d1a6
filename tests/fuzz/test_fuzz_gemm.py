"""Fuzz: pydl._C.gemm / matmul (the GEMM kernels under every matmul, linear and conv) against a
float64 NumPy product, over shapes 0..70 (micro-kernel edges), transposes, strided and
negative-stride views, broadcast batches, alpha/beta and a strided output; mismatched
shapes raise cleanly."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # fuzz_common (importlib mode)
from fuzz_common import CLEAN_ERRORS, fuzz  # noqa: E402

from pydl import _C

dim = st.integers(0, 70) | st.sampled_from([1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65])


def view(a, how):
    """a (2-D) in another layout: 0 C, 1 Fortran, 2 every other column of a larger buffer,
    3 rows reversed (negative stride)."""
    if how == 1:
        return np.asfortranarray(a)
    if how == 2:
        buf = np.zeros((a.shape[0], 2 * a.shape[1] + 1), a.dtype)
        buf[:, 1::2] = a
        return buf[:, 1::2]
    if how == 3:
        return np.ascontiguousarray(a[::-1])[::-1]
    return np.ascontiguousarray(a)


def tol(dtype, k):
    return dict(rtol=1e-4, atol=1e-5 * max(k, 1)) if dtype == np.float32 else \
        dict(rtol=1e-11, atol=1e-12 * max(k, 1))


@fuzz
@given(dim, dim, dim, st.booleans(), st.booleans(), st.integers(0, 3), st.integers(0, 3),
       st.sampled_from([np.float32, np.float64]), st.sampled_from([0.0, 1.0, -0.5]),
       st.sampled_from([0.0, 1.0, 2.5]), st.booleans(), st.integers(0, 2 ** 16))
def test_gemm_matches_numpy(m, n, k, ta, tb, la, lb, dtype, beta, alpha, c_rowslice, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    if c_rowslice:  # rows of a wider buffer (ldc > n)
        buf = np.zeros((m, n + 5), dtype)
        buf[:, :n] = c0
        c = buf[:, :n]
    else:
        c = c0.copy()
    out = _C.gemm(view(a, la), view(b, lb), c, alpha=alpha, beta=beta, trans_a=ta, trans_b=tb)
    oa = a.T if ta else a
    ob = b.T if tb else b
    ref = alpha * (oa.astype(np.float64) @ ob.astype(np.float64))
    if beta:
        ref += beta * c0.astype(np.float64)
    np.testing.assert_allclose(out, ref, **tol(dtype, k))
    np.testing.assert_allclose(c, ref, **tol(dtype, k))  # written in place


@fuzz
@given(st.lists(st.integers(1, 3), max_size=2), st.lists(st.integers(1, 3), max_size=2),
       dim, dim, dim, st.booleans(), st.booleans(), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2 ** 16))
def test_matmul_batched_broadcast_matches_numpy(ba, bb, m, n, k, ta, tb, dtype, seed):
    rng = np.random.default_rng(seed)
    # make the batch shapes broadcastable by setting clashing dims to 1
    L = max(len(ba), len(bb))
    pa, pb = [1] * (L - len(ba)) + ba, [1] * (L - len(bb)) + bb
    pb = [y if x == y or x == 1 or y == 1 else 1 for x, y in zip(pa, pb)]
    ba, bb = pa[L - len(ba):], pb[L - len(bb):]
    a = rng.standard_normal((*ba, *((k, m) if ta else (m, k)))).astype(dtype)
    b = rng.standard_normal((*bb, *((n, k) if tb else (k, n)))).astype(dtype)
    out = _C.matmul(a, b, trans_a=ta, trans_b=tb)
    oa = np.swapaxes(a, -1, -2) if ta else a
    ob = np.swapaxes(b, -1, -2) if tb else b
    ref = np.matmul(oa.astype(np.float64), ob.astype(np.float64))
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, **tol(dtype, k))


@fuzz
@given(st.lists(st.integers(0, 6), min_size=4, max_size=4), st.integers(0, 5))
def test_gemm_hostile_arguments_raise_cleanly(d, which):
    a = np.ones((d[0], d[1]), np.float32)
    b = np.ones((d[2], d[3]), np.float32)
    bad = [np.ones((d[0], d[3]), np.float64), np.ones(3, np.float32),
           np.ones((d[0], d[3]), np.float32)[:, ::-1], np.ones((d[0], d[3]), np.int32),
           np.ones((d[0], d[3]), np.float32)[::2], None][which]
    if which == 2 and bad.size:
        bad.flags.writeable = True
    for call in (lambda: _C.gemm(a, b, bad), lambda: _C.matmul(a, b),
                 lambda: _C.gemm(a, b, None, trans_a=True),
                 lambda: _C.gemm(a.astype(np.float16), b)):
        try:
            call()
        except CLEAN_ERRORS:
            pass


def test_gemm_refuses_read_only_output():
    c = np.zeros((2, 2), np.float32)
    c.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _C.gemm(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), c)
