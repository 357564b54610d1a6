"""Fuzz: max/avg/adaptive pooling forward and backward against a float64 NumPy reference, over
kernel sizes, strides, paddings, dilations, ceil_mode and layouts; hostile argmax indices and
window taps to the backward kernels must never write outside dx."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # fuzz_common (importlib mode)
from fuzz_common import CLEAN_ERRORS, fuzz, strided, tol  # noqa: E402

import pydl
import pydl.nn.functional as F
from pydl import _C


def out_size(n, k, s, p, d, ceil):
    num = n + 2 * p - d * (k - 1) - 1
    if ceil:
        o = -(-num // s) + 1
        if (o - 1) * s >= n + p:
            o -= 1
        return o
    return num // s + 1


def windows(n, k, s, p, d, o):
    """Input positions of each output's window along one axis (-1 where outside the input)."""
    pos = np.arange(o)[:, None] * s - p + np.arange(k)[None] * d
    return np.where((pos >= 0) & (pos < n), pos, -1)


def max_pool_ref(x, k, s, p, d, ceil):
    N, C, H, W = x.shape
    OH, OW = (out_size(H, k[0], s[0], p[0], d[0], ceil), out_size(W, k[1], s[1], p[1], d[1], ceil))
    rows, cols = windows(H, k[0], s[0], p[0], d[0], OH), windows(W, k[1], s[1], p[1], d[1], OW)
    y = np.full((N, C, OH, OW), -np.inf)
    idx = np.full((N, C, OH, OW), -1, np.int64)
    for i in range(OH):
        for j in range(OW):
            for r in rows[i]:
                for c in cols[j]:
                    if r < 0 or c < 0:
                        continue
                    v = x[:, :, r, c]
                    better = v > y[:, :, i, j]
                    y[:, :, i, j] = np.where(better, v, y[:, :, i, j])
                    idx[:, :, i, j] = np.where(better, r * W + c, idx[:, :, i, j])
    return y, idx


def avg_pool_ref(x, k, s, p, ceil, count_include_pad, divisor):
    N, C, H, W = x.shape
    OH, OW = out_size(H, k[0], s[0], p[0], 1, ceil), out_size(W, k[1], s[1], p[1], 1, ceil)
    y = np.zeros((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            pool_size = (h1 - h0) * (w1 - w0)
            a, b = max(h0, 0), max(w0, 0)
            h1c, w1c = min(h1, H), min(w1, W)
            total = x[:, :, a:h1c, b:w1c].sum((2, 3))
            div = divisor or (pool_size if count_include_pad else (h1c - a) * (w1c - b))
            y[:, :, i, j] = total / div
    return y


pool_case = st.fixed_dictionaries(dict(
    N=st.integers(0, 2), C=st.integers(1, 3), H=st.integers(1, 10), W=st.integers(1, 10),
    k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    s=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    p=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    d=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    ceil=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
    layout=st.integers(0, 3), seed=st.integers(0, 2 ** 16)))


def _valid(c, dil=True):
    d = c["d"] if dil else (1, 1)
    if any(p > k // 2 for p, k in zip(c["p"], c["k"])):
        return False
    return all(out_size(n, k, s, p, dd, c["ceil"]) >= 1 for n, k, s, p, dd in
               zip((c["H"], c["W"]), c["k"], c["s"], c["p"], d))


@fuzz
@given(pool_case)
def test_max_pool2d_matches_reference(c):
    rng = np.random.default_rng(c["seed"])
    # Distinct values: the argmax is unique, so the gradient's position is well defined.
    n = c["N"] * c["C"] * c["H"] * c["W"]
    x = (rng.permutation(n) / max(n, 1)).reshape(c["N"], c["C"], c["H"], c["W"]).astype(c["dtype"])
    xt = pydl.tensor(strided(x, c["layout"]), requires_grad=True)
    kw = dict(kernel_size=c["k"], stride=c["s"], padding=c["p"], dilation=c["d"],
              ceil_mode=c["ceil"])
    if not _valid(c):
        with pytest.raises(ValueError):
            F.max_pool2d(xt, **kw)
        return
    y, idx = F.max_pool2d(xt, return_indices=True, **kw)
    y_ref, idx_ref = max_pool_ref(x.astype(np.float64), c["k"], c["s"], c["p"], c["d"], c["ceil"])
    np.testing.assert_allclose(y.detach().numpy(), y_ref, **tol(c["dtype"]))
    np.testing.assert_array_equal(idx.numpy(), idx_ref)
    dy = rng.standard_normal(y_ref.shape).astype(c["dtype"])
    (y * pydl.tensor(dy)).sum().backward()
    dx_ref = np.zeros((c["N"] * c["C"], c["H"] * c["W"]))
    flat = idx_ref.reshape(c["N"] * c["C"], idx_ref.shape[2] * idx_ref.shape[3])
    for pl in range(flat.shape[0]):
        np.add.at(dx_ref[pl], flat[pl][flat[pl] >= 0], dy.reshape(flat.shape)[pl][flat[pl] >= 0])
    np.testing.assert_allclose(xt.grad.numpy(), dx_ref.reshape(x.shape), **tol(c["dtype"]))


@fuzz
@given(pool_case, st.booleans(), st.sampled_from([None, 1, 3, 7]))
def test_avg_pool2d_matches_reference(c, count_include_pad, divisor):
    rng = np.random.default_rng(c["seed"])
    x = rng.standard_normal((c["N"], c["C"], c["H"], c["W"])).astype(c["dtype"])
    xt = pydl.tensor(strided(x, c["layout"]), requires_grad=True)
    kw = dict(kernel_size=c["k"], stride=c["s"], padding=c["p"], ceil_mode=c["ceil"],
              count_include_pad=count_include_pad, divisor_override=divisor)
    if not _valid(c, dil=False):
        with pytest.raises(ValueError):
            F.avg_pool2d(xt, **kw)
        return
    y = F.avg_pool2d(xt, **kw)
    ref = avg_pool_ref(x.astype(np.float64), c["k"], c["s"], c["p"], c["ceil"],
                       count_include_pad, divisor)
    np.testing.assert_allclose(y.detach().numpy(), ref, **tol(c["dtype"]))
    # backward is the adjoint: <avg(x), dy> = <x, avg^T(dy)>, checked with the reference
    dy = rng.standard_normal(ref.shape)
    (y * pydl.tensor(dy.astype(c["dtype"]))).sum().backward()
    eye = np.eye(c["H"] * c["W"]).reshape(-1, 1, c["H"], c["W"])
    basis = avg_pool_ref(eye, c["k"], c["s"], c["p"], c["ceil"], count_include_pad, divisor)
    dx_ref = np.einsum("eij,ncij->nce", basis[:, 0], dy).reshape(x.shape)
    np.testing.assert_allclose(xt.grad.numpy(), dx_ref, **tol(c["dtype"]))


@fuzz
@given(st.integers(0, 2), st.integers(1, 3), st.integers(1, 11), st.integers(1, 11),
       st.integers(1, 6), st.integers(1, 6), st.integers(0, 2 ** 16))
def test_adaptive_avg_pool2d_matches_reference(N, C, H, W, OH, OW, seed):
    x = np.random.default_rng(seed).standard_normal((N, C, H, W))
    y = F.adaptive_avg_pool2d(pydl.tensor(x), (OH, OW))
    ref = np.zeros((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            h0, h1 = (i * H) // OH, -(-((i + 1) * H) // OH)
            w0, w1 = (j * W) // OW, -(-((j + 1) * W) // OW)
            ref[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean((2, 3))
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-12, atol=1e-12)


@fuzz
@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.integers(1, 4),
       st.integers(1, 4), st.integers(0, 2 ** 16), st.sampled_from([np.float32, np.float64]))
def test_max_pool_backward_hostile_indices_stay_in_bounds(planes, H, W, OH, OW, seed, dtype):
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((planes, OH, OW)).astype(dtype)
    hw = H * W
    idx = rng.choice(np.array([-2 ** 63, -1, 0, hw - 1, hw, hw + 7, 2 ** 62, 2 ** 63 - 1] +
                              list(range(hw)), np.int64), size=dy.shape)
    dx = _C.max_pool2d_backward(dy, idx, (H, W))
    ref = np.zeros((planes, hw))
    for p in range(planes):
        ok = (idx[p] >= 0) & (idx[p] < hw)
        np.add.at(ref[p], idx[p][ok], dy[p][ok].astype(np.float64))
    np.testing.assert_allclose(dx.reshape(planes, hw), ref, **tol(dtype))


@fuzz
@given(st.integers(1, 3), st.integers(2, 12), st.integers(2, 12),
       st.tuples(st.integers(1, 3), st.integers(1, 3)),
       st.tuples(st.integers(1, 3), st.integers(1, 3)),
       st.tuples(st.integers(0, 1), st.integers(0, 1)), st.booleans(), st.integers(0, 2 ** 16))
def test_max_pool_backward_hostile_taps_stay_in_bounds(planes, H, W, k, s, p, ceil, seed):
    p = tuple(min(pp, kk // 2) for pp, kk in zip(p, k))
    OH, OW = out_size(H, k[0], s[0], p[0], 1, ceil), out_size(W, k[1], s[1], p[1], 1, ceil)
    if OH < 1 or OW < 1:
        return
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((planes, OH, OW)).astype(np.float32)
    taps = rng.integers(0, 256, size=dy.shape, dtype=np.uint8)
    dx = _C.max_pool2d_backward_taps(dy, taps, (H, W), k, s, p, (1, 1))
    ref = np.zeros((planes, H, W))
    for pl in range(planes):
        for i in range(OH):
            for j in range(OW):
                t = int(taps[pl, i, j])
                if t >= k[0] * k[1]:
                    continue
                r, c = i * s[0] - p[0] + t // k[1], j * s[1] - p[1] + t % k[1]
                if 0 <= r < H and 0 <= c < W:
                    ref[pl, r, c] += dy[pl, i, j]
    np.testing.assert_allclose(dx, ref, rtol=1e-5, atol=1e-5)


hostile = st.sampled_from([0, -1, -(2 ** 63), 2 ** 62, 2 ** 63 - 1, 2 ** 64]) | st.integers(0, 6)


@fuzz
@given(st.lists(hostile, min_size=12, max_size=12))
def test_pool_bindings_hostile_arguments_raise_cleanly(v):
    x = np.ones((2, 5, 5), np.float32)
    calls = [
        lambda: _C.max_pool2d_forward(x, (v[0], v[1]), (v[2], v[3]), (v[4], v[5]), (v[6], v[7]),
                                      (v[8], v[9])),
        lambda: _C.max_pool2d_forward(x, (v[0], v[1]), (v[2], v[3]), (v[4], v[5]), (v[6], v[7]),
                                      (v[8], v[9]), "taps"),
        lambda: _C.avg_pool2d_forward(x, (v[0], v[1]), (v[2], v[3]), (v[4], v[5]), (v[8], v[9]),
                                      bool(v[10] % 2), v[11]),
        lambda: _C.avg_pool2d_backward(np.ones((2, 3, 3), np.float32), (v[8], v[9]),
                                       (v[0], v[1]), (v[2], v[3]), (v[4], v[5]), True, v[11]),
        lambda: _C.adaptive_avg_pool2d_forward(x, (v[8], v[9])),
        lambda: _C.adaptive_avg_pool2d_backward(np.ones((2, 3, 3), np.float32), (v[8], v[9])),
        lambda: _C.max_pool2d_backward_taps(np.ones((2, 3, 3), np.float32),
                                            np.full((2, 3, 3), v[10] % 256, np.uint8),
                                            (v[8], v[9]), (v[0], v[1]), (v[2], v[3]),
                                            (v[4], v[5]), (v[6], v[7])),
    ]
    for call in calls:
        try:
            call()
        except CLEAN_ERRORS:
            pass
