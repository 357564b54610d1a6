"""max/avg/adaptive pooling: float64 NumPy loop references, indices, gradcheck, errors."""
import math

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.autograd import gradcheck


def t(a, requires_grad=False):
    return pydl.tensor(a, requires_grad=requires_grad)


def out_size(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size, written out from its documentation."""
    span = n + 2 * p - d * (k - 1) - 1
    o = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def ref_max_pool2d(x, k, s, p, d, ceil_mode):
    """Loops over windows; padding never wins. PyTorch's rule: the first element of a window
    starts the scan, a later one replaces the maximum when it is larger or NaN (so the last NaN
    wins, otherwise the first maximum). Returns values and flat indices (-1: empty window)."""
    N, C, H, W = x.shape
    OH, OW = out_size(H, k[0], s[0], p[0], d[0], ceil_mode), out_size(W, k[1], s[1], p[1], d[1], ceil_mode)
    y = np.full((N, C, OH, OW), -np.inf)
    idx = np.full((N, C, OH, OW), -1, np.int64)
    for i in range(OH):
        for j in range(OW):
            for r in range(k[0]):
                for c in range(k[1]):
                    ih, iw = i * s[0] - p[0] + r * d[0], j * s[1] - p[1] + c * d[1]
                    if 0 <= ih < H and 0 <= iw < W:
                        v = x[:, :, ih, iw]
                        cur = y[:, :, i, j]
                        take = (v > cur) | np.isnan(v) | (idx[:, :, i, j] < 0)
                        y[:, :, i, j] = np.where(take, v, cur)
                        idx[:, :, i, j] = np.where(take, ih * W + iw, idx[:, :, i, j])
    return y, idx


def ref_avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override=None):
    N, C, H, W = x.shape
    OH, OW = out_size(H, k[0], s[0], p[0], 1, ceil_mode), out_size(W, k[1], s[1], p[1], 1, ceil_mode)
    y = np.zeros((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            padded_count = (h1 - h0) * (w1 - w0)  # window clipped to the padded input
            hs, ws, he, we = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            total = x[:, :, hs:he, ws:we].sum(axis=(2, 3))
            if divisor_override:
                div = divisor_override
            elif count_include_pad:
                div = padded_count
            else:
                div = (he - hs) * (we - ws)
            y[:, :, i, j] = total / div
    return y


def ref_adaptive_avg_pool2d(x, out):
    N, C, H, W = x.shape
    y = np.zeros((N, C) + tuple(out))
    for i in range(out[0]):
        hs, he = (i * H) // out[0], -(-((i + 1) * H) // out[0])
        for j in range(out[1]):
            ws, we = (j * W) // out[1], -(-((j + 1) * W) // out[1])
            y[:, :, i, j] = x[:, :, hs:he, ws:we].mean(axis=(2, 3))
    return y


def random_pool_config(seed, dilation=True):
    rng = np.random.default_rng(seed)
    while True:
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        p = tuple(int(rng.integers(0, ki // 2 + 1)) for ki in k)
        d = tuple(int(v) for v in rng.integers(1, 3, 2)) if dilation else (1, 1)
        H, W = int(rng.choice([1, 4, 7, 8])), int(rng.choice([2, 5, 9]))
        ceil_mode = bool(rng.random() < 0.5)
        N = int(rng.choice([0, 1, 2]))
        try:
            oh = out_size(H, k[0], s[0], p[0], d[0], ceil_mode)
            ow = out_size(W, k[1], s[1], p[1], d[1], ceil_mode)
        except ZeroDivisionError:
            continue
        if oh >= 1 and ow >= 1:
            return dict(N=N, C=int(rng.integers(1, 4)), H=H, W=W, k=k, s=s, p=p, d=d,
                        ceil_mode=ceil_mode)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(16))
def test_max_pool2d_random_configs(seed, dtype):
    cfg = random_pool_config(seed)
    x = np.random.default_rng(seed).standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    x = x.astype(dtype)
    y, idx = F.max_pool2d(t(x), cfg["k"], cfg["s"], cfg["p"], cfg["d"], cfg["ceil_mode"],
                          return_indices=True)
    ey, eidx = ref_max_pool2d(x.astype(np.float64), cfg["k"], cfg["s"], cfg["p"], cfg["d"],
                              cfg["ceil_mode"])
    assert y.shape == ey.shape and y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y.numpy(), ey.astype(dtype))
    np.testing.assert_array_equal(idx.numpy(), eidx)


@pytest.mark.parametrize("seed", range(8))
def test_max_pool2d_gradcheck(seed):
    cfg = random_pool_config(100 + seed)
    rng = np.random.default_rng(seed)
    x = t(rng.standard_normal((max(cfg["N"], 1), cfg["C"], cfg["H"], cfg["W"])), True)
    assert gradcheck(lambda x: F.max_pool2d(x, cfg["k"], cfg["s"], cfg["p"], cfg["d"],
                                            cfg["ceil_mode"]), (x,))


def test_max_pool2d_backward_routes_to_saved_argmax():
    # Overlapping windows (stride 1 < kernel 3): an element that is the max of several windows
    # receives the sum of their gradients.
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    xt = t(x, True)
    y = F.max_pool2d(xt, 3, stride=1)
    g = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(t(g))
    expected = np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            expected[0, 0, i + 2, j + 2] += g[0, 0, i, j]
    np.testing.assert_allclose(xt.grad.numpy(), expected)


def test_max_pool_nan_propagates():
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    y = F.max_pool2d(t(x), 2).numpy()
    assert np.isnan(y[0, 0, 0, 0]) and (y.ravel()[1:] == 1).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(12))
def test_avg_pool2d_random_configs(seed, dtype):
    cfg = random_pool_config(200 + seed, dilation=False)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(dtype)
    include = bool(seed % 2)
    divisor = 3 if seed % 5 == 0 else None
    y = F.avg_pool2d(t(x), cfg["k"], cfg["s"], cfg["p"], cfg["ceil_mode"], include, divisor)
    expected = ref_avg_pool2d(x.astype(np.float64), cfg["k"], cfg["s"], cfg["p"],
                              cfg["ceil_mode"], include, divisor)
    assert y.shape == expected.shape
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y.numpy(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("seed", range(6))
def test_avg_pool2d_gradcheck(seed):
    cfg = random_pool_config(300 + seed, dilation=False)
    x = t(np.random.default_rng(seed).standard_normal((1, cfg["C"], cfg["H"], cfg["W"])), True)
    assert gradcheck(lambda x: F.avg_pool2d(x, cfg["k"], cfg["s"], cfg["p"], cfg["ceil_mode"],
                                            bool(seed % 2), 2 if seed == 3 else None), (x,))


@pytest.mark.parametrize("out", [(1, 1), (2, 3), (3, 3), (5, 4), (7, 9)])
def test_adaptive_avg_pool2d(out):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 9))
    y = F.adaptive_avg_pool2d(t(x), out)
    np.testing.assert_allclose(y.numpy(), ref_adaptive_avg_pool2d(x, out), rtol=1e-12)
    assert gradcheck(lambda x: F.adaptive_avg_pool2d(x, out), (t(x[:1, :2], True),))


def test_adaptive_avg_pool2d_none_and_int():
    x = pydl.randn(2, 3, 6, 5, dtype=pydl.float64)
    assert F.adaptive_avg_pool2d(x, (None, 2)).shape == (2, 3, 6, 2)
    y = F.adaptive_avg_pool2d(x, 1)
    np.testing.assert_allclose(y.numpy()[..., 0, 0], x.numpy().mean(axis=(2, 3)), rtol=1e-12)


def test_pool1d_variants():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 11))
    y, idx = F.max_pool1d(t(x), 3, 2, 1, 2, True, return_indices=True)
    ey, eidx = ref_max_pool2d(x[:, :, None], (1, 3), (1, 2), (0, 1), (1, 2), True)
    np.testing.assert_array_equal(y.numpy(), ey[:, :, 0])
    np.testing.assert_array_equal(idx.numpy(), eidx[:, :, 0])
    ya = F.avg_pool1d(t(x), 4, 3, 2, False, False)
    np.testing.assert_allclose(ya.numpy(), ref_avg_pool2d(x[:, :, None], (1, 4), (1, 3), (0, 2),
                                                          False, False)[:, :, 0], rtol=1e-12)
    yd = F.adaptive_avg_pool1d(t(x), 4)
    np.testing.assert_allclose(yd.numpy(), ref_adaptive_avg_pool2d(x[:, :, None], (1, 4))[:, :, 0],
                               rtol=1e-12)
    for fn in (lambda x: F.max_pool1d(x, 3, 2, 1), lambda x: F.avg_pool1d(x, 3, 2, 1),
               lambda x: F.adaptive_avg_pool1d(x, 3)):
        assert gradcheck(fn, (t(x[:1], True),))


def test_pool_unbatched_and_noncontiguous():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 3, 8, 2)).transpose(3, 1, 0, 2)  # (2, 3, 9, 8) non-contiguous
    assert not x.flags.c_contiguous
    y = F.max_pool2d(t(x), 2)
    np.testing.assert_array_equal(y.numpy(), ref_max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)[0])
    y1 = F.avg_pool2d(t(x[0]), 3, 2, 1)
    assert y1.shape == (3, 5, 4)
    np.testing.assert_allclose(y1.numpy(), ref_avg_pool2d(x[:1], (3, 3), (2, 2), (1, 1), False,
                                                          True)[0], rtol=1e-12)


def test_pool_errors():
    x = pydl.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="at most half of kernel size"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match="at most half of kernel size"):
        F.avg_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="stride must be positive"):
        F.max_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        F.avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="padding must be non-negative"):
        F.max_pool2d(x, 2, padding=-1)
    with pytest.raises(ValueError, match=r"4-D \(batched\)"):
        F.max_pool2d(pydl.randn(8, 8), 2)
    with pytest.raises(ValueError, match="too small"):
        F.max_pool2d(x, 9)
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.max_pool2d(pydl.ones(1, 1, 4, 4, dtype=pydl.int64), 2)
    with pytest.raises(ValueError, match="output_size"):
        F.adaptive_avg_pool2d(x, (1, 2, 3))


# ---- wide planes: the AVX2 kernels (8 output columns at a time) and the portable loops -------
# Shapes wide enough for the vector kernels, with odd sizes, padding, dilation, ceil_mode, ties
# and NaNs; each case runs on both SIMD paths against the float64 reference, and the paths must
# agree exactly (same tap order, same sums).
WIDE_MAX_CASES = [
    # (H, W), kernel, stride, padding, dilation, ceil_mode
    ((20, 37), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((7, 64), (2, 2), (2, 2), (0, 0), (1, 1), False),   # 32 windows: two whole AVX-512 blocks
    ((18, 36), (2, 2), (2, 2), (1, 1), (1, 1), False),  # padding: interior columns from 1
    ((6, 2), (2, 2), (2, 2), (0, 0), (1, 1), False),    # one window per row
    ((9, 33), (2, 2), (2, 2), (0, 0), (1, 1), True),
    ((19, 41), (2, 2), (2, 2), (0, 0), (1, 1), True),
    ((21, 40), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ((17, 43), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((13, 35), (3, 3), (1, 1), (1, 1), (1, 1), False),
    ((15, 44), (2, 3), (1, 2), (1, 0), (2, 2), False),
    ((12, 47), (1, 1), (1, 2), (0, 0), (1, 1), False),
    ((11, 50), (4, 5), (2, 2), (2, 1), (1, 1), True),
    ((9, 38), (3, 2), (3, 3), (0, 1), (1, 1), False),
    # Windows of 16+ columns with none clipped (the AVX2 wide-window path): global pooling with
    # int64 indices (256 and 264 taps), byte taps, dilated rows; clipped ones fall back.
    ((16, 16), (16, 16), (16, 16), (0, 0), (1, 1), False),
    ((8, 33), (8, 33), (1, 1), (0, 0), (1, 1), False),
    ((9, 45), (3, 40), (2, 5), (0, 0), (1, 1), False),
    ((10, 40), (4, 20), (3, 7), (0, 0), (2, 1), False),
    ((12, 50), (3, 17), (3, 3), (1, 1), (1, 1), True),
]


SIMD_PATHS = pydl._C.available_simd_paths()  # e.g. ['avx512', 'avx2+fma', 'portable']


@pytest.fixture(params=SIMD_PATHS)
def simd(request):
    pydl._C.set_simd_path(request.param)
    yield request.param
    pydl._C.set_simd_path("auto")


def wide_input(seed, shape, dtype):
    """Random values with ties (a ReLU's zeros, repeated values) and a few NaN / -inf."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.3] = 0.0
    x[rng.random(shape) < 0.05] = 1.5
    x[rng.random(shape) < 0.01] = -np.inf
    x[rng.random(shape) < 0.005] = np.nan
    return x.astype(dtype)


@pytest.mark.parametrize("case", range(len(WIDE_MAX_CASES)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_wide_planes(case, dtype, simd):
    hw, k, s, p, d, ceil_mode = WIDE_MAX_CASES[case]
    x = wide_input(case, (2, 3) + hw, dtype)
    ey, eidx = ref_max_pool2d(x.astype(np.float64), k, s, p, d, ceil_mode)
    y, idx = F.max_pool2d(t(x), k, s, p, d, ceil_mode, return_indices=True)
    np.testing.assert_array_equal(y._data, ey.astype(dtype))
    np.testing.assert_array_equal(idx._data, eidx)
    with pydl.no_grad():  # no argmax kept at all
        np.testing.assert_array_equal(F.max_pool2d(t(x), k, s, p, d, ceil_mode).numpy(),
                                      ey.astype(dtype))
    # Backward through the one-byte taps: every dy lands on its window's argmax.
    xt = t(x, True)
    gy = np.random.default_rng(case).standard_normal(ey.shape).astype(dtype)
    y = F.max_pool2d(xt, k, s, p, d, ceil_mode)  # the forward that keeps taps
    np.testing.assert_array_equal(y._data, ey.astype(dtype))
    y.backward(t(gy))
    np.testing.assert_allclose(xt.grad._data, scatter_ref(gy, eidx, x.shape), rtol=1e-6,
                               atol=1e-6)


def scatter_ref(gy, idx, x_shape):
    N, C, H, W = x_shape
    gx = np.zeros((N, C, H * W))
    for n in range(N):
        for c in range(C):
            np.add.at(gx[n, c], idx[n, c].ravel(), gy[n, c].ravel())
    return gx.reshape(x_shape)


@pytest.mark.parametrize("case", range(len(WIDE_MAX_CASES)))
def test_max_pool2d_simd_paths_agree_exactly(case):
    hw, k, s, p, d, ceil_mode = WIDE_MAX_CASES[case]
    x = wide_input(100 + case, (3, 2) + hw, np.float32)
    gy = np.random.default_rng(case).standard_normal(
        F.max_pool2d(t(x), k, s, p, d, ceil_mode).shape).astype(np.float32)
    results = []
    for path in SIMD_PATHS:
        pydl._C.set_simd_path(path)
        try:
            y, idx = F.max_pool2d(t(x), k, s, p, d, ceil_mode, return_indices=True)
            xt = t(x, True)
            F.max_pool2d(xt, k, s, p, d, ceil_mode).backward(t(gy))
            results.append((y._data, idx._data, xt.grad._data))
        finally:
            pydl._C.set_simd_path("auto")
    for other in results[:-1]:  # every path against the portable one (last)
        for a, b in zip(other, results[-1]):
            np.testing.assert_array_equal(a, b)


WIDE_AVG_CASES = [
    # (H, W), kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((20, 37), (2, 2), (2, 2), (0, 0), False, True, None),
    ((19, 41), (2, 2), (2, 2), (0, 0), True, False, None),
    ((21, 40), (3, 3), (2, 2), (1, 1), False, False, None),
    ((17, 43), (3, 3), (2, 2), (1, 1), True, True, None),
    ((13, 35), (3, 3), (1, 1), (1, 1), False, True, 7),
    ((11, 50), (4, 5), (2, 2), (2, 1), True, False, None),
    ((10, 33), (2, 2), (2, 2), (1, 1), False, True, None),
    # 2x2/2 planes without clipped windows (AVX-512's whole-plane path): 16 windows and a tail,
    # exactly 32 windows, one window, a divisor override.
    ((6, 34), (2, 2), (2, 2), (0, 0), False, True, None),
    ((4, 64), (2, 2), (2, 2), (0, 0), False, True, None),
    ((2, 2), (2, 2), (2, 2), (0, 0), False, True, None),
    ((9, 47), (2, 2), (2, 2), (0, 0), False, True, 3),
    # Global windows (the plane mean through the adaptive kernels), unless a divisor overrides.
    ((16, 16), (16, 16), (16, 16), (0, 0), False, True, None),
    ((7, 9), (7, 9), (1, 1), (0, 0), False, False, None),
    ((7, 9), (7, 9), (7, 9), (0, 0), False, True, 5),
    # Overlapping windows (the separable backward scatter), with clipping and ceil_mode.
    ((13, 35), (3, 3), (1, 1), (0, 0), False, True, None),
    ((12, 31), (5, 4), (3, 2), (2, 1), True, False, None),
]


@pytest.mark.parametrize("case", range(len(WIDE_AVG_CASES)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_wide_planes(case, dtype, simd):
    hw, k, s, p, ceil_mode, include, divisor = WIDE_AVG_CASES[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal((2, 3) + hw).astype(dtype)
    expected = ref_avg_pool2d(x.astype(np.float64), k, s, p, ceil_mode, include, divisor)
    xt = t(x, True)
    y = F.avg_pool2d(xt, k, s, p, ceil_mode, include, divisor)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y._data, expected, rtol=tol, atol=tol)
    # Backward is the adjoint: <avg(x), g> == <x, avg_backward(g)> for any g.
    g = rng.standard_normal(expected.shape)
    y.backward(t(g.astype(dtype)))
    lhs = (expected * g).sum()
    rhs = (x.astype(np.float64) * xt.grad._data.astype(np.float64)).sum()
    np.testing.assert_allclose(rhs, lhs, rtol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("case", range(len(WIDE_AVG_CASES)))
def test_avg_pool2d_simd_paths_agree_exactly(case):
    hw, k, s, p, ceil_mode, include, divisor = WIDE_AVG_CASES[case]
    x = np.random.default_rng(case).standard_normal((3, 2) + hw).astype(np.float32)
    # Signed zeros: a window of -0s sums to +0 in the portable loop (it starts from +0).
    x[0, 0] = -0.0
    x[1, 1, ::2] = -0.0
    results = []
    for path in SIMD_PATHS:  # the portable path is last
        pydl._C.set_simd_path(path)
        try:
            xt = t(x, True)
            y = F.avg_pool2d(xt, k, s, p, ceil_mode, include, divisor)
            y.backward(t(np.ones(y.shape, np.float32)))
            results.append((y._data, xt.grad._data))
        finally:
            pydl._C.set_simd_path("auto")
    for other in results[:-1]:
        for a, b in zip(other, results[-1]):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


def test_avg_pool2d_wide_gradcheck():
    x = t(np.random.default_rng(5).standard_normal((1, 2, 9, 36)), True)
    assert gradcheck(lambda x: F.avg_pool2d(x, 2), (x,))
    assert gradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1, True, False), (x,))
    assert gradcheck(lambda x: F.avg_pool2d(x, 3, 1), (x,))  # separable backward scatter
    assert gradcheck(lambda x: F.avg_pool2d(x, (9, 36)), (x,))  # global: the plane mean


def test_max_pool2d_wide_gradcheck():
    # Distinct values (no ties), so the maximum is stable under the finite-difference step.
    x = np.random.default_rng(6).permutation(2 * 9 * 36).reshape(1, 2, 9, 36) * 0.01
    xt = t(x, True)
    assert gradcheck(lambda x: F.max_pool2d(x, 2), (xt,))
    assert gradcheck(lambda x: F.max_pool2d(x, 3, 2, 1), (xt,))


def test_max_pool2d_large_window_keeps_int64_argmax():
    # A 16x16 window has 256 taps, one more than a byte holds: backward uses int64 indices.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 20, 21))
    xt = t(x, True)
    y = F.max_pool2d(xt, 16, 2)
    gy = rng.standard_normal(y.shape)
    y.backward(t(gy))
    ey, eidx = ref_max_pool2d(x, (16, 16), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(y._data, ey)
    np.testing.assert_allclose(xt.grad._data, scatter_ref(gy, eidx, x.shape), rtol=1e-12)


@pytest.mark.parametrize("out", [(1, 1), (5, 1), (3, 5), (7, 9), (13, 40), (20, 57)])
def test_adaptive_avg_pool2d_wide(out, simd):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 13, 40)).astype(np.float32)
    xt = t(x, True)
    y = F.adaptive_avg_pool2d(xt, out)
    expected = ref_adaptive_avg_pool2d(x.astype(np.float64), out)
    np.testing.assert_allclose(y._data, expected, rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(expected.shape)
    y.backward(t(g.astype(np.float32)))
    np.testing.assert_allclose((x.astype(np.float64) * xt.grad._data).sum(),
                               (expected * g).sum(), rtol=1e-4)


def test_max_pool2d_kernel_argument_errors():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="indices must be"):
        pydl._C.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), (2, 2), "int32")
    with pytest.raises(ValueError, match="at most 255"):
        pydl._C.max_pool2d_forward(np.zeros((1, 1, 16, 16), np.float32), (16, 16), (1, 1),
                                   (0, 0), (1, 1), (1, 1), "taps")
    y, taps = pydl._C.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0), (1, 1), (2, 2), "taps")
    assert taps.dtype == np.uint8 and taps.shape == y.shape
    with pytest.raises(TypeError, match="uint8"):
        pydl._C.max_pool2d_backward_taps(y, taps.astype(np.int64), (4, 4), (2, 2), (2, 2), (0, 0),
                                         (1, 1))
    with pytest.raises(ValueError, match="shapes differ"):
        pydl._C.max_pool2d_backward_taps(y, taps[..., :1], (4, 4), (2, 2), (2, 2), (0, 0), (1, 1))
    # Taps that point outside the window or the plane are skipped, never written through.
    bad = np.full_like(taps, 200)
    gx = pydl._C.max_pool2d_backward_taps(np.ones_like(y), bad, (4, 4), (2, 2), (2, 2), (0, 0),
                                          (1, 1))
    assert (gx == 0).all()


# ---- large gradients: a dx of 8 MiB or more is built plane by plane in a buffer and streamed
# to memory (csrc/pool.cpp, PlaneSink); planes of 33 x 31 values start off 32-byte alignment.
LARGE_PLANES = (2100, 1, 33, 31)


def scatter_planes_ref(gy, idx, x_shape):
    """dx from flat in-plane indices, for any number of planes (vectorised np.add.at)."""
    P = int(np.prod(x_shape[:-2]))
    HW = x_shape[-2] * x_shape[-1]
    gx = np.zeros((P, HW))
    rows = np.repeat(np.arange(P), gy.shape[-2] * gy.shape[-1])
    np.add.at(gx, (rows, idx.reshape(-1)), gy.reshape(-1).astype(np.float64))
    return gx.reshape(x_shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k, s, p, indices", [((2, 2), (2, 2), (0, 0), False),
                                              ((3, 3), (2, 2), (1, 1), False),
                                              ((3, 3), (2, 2), (1, 1), True)])
def test_max_pool2d_large_gradient(k, s, p, indices, dtype):
    x = wide_input(7, LARGE_PLANES, dtype)
    ey, eidx = ref_max_pool2d(x.astype(np.float64), k, s, p, (1, 1), False)
    gy = np.random.default_rng(8).standard_normal(ey.shape).astype(dtype)
    xt = t(x, True)
    out = F.max_pool2d(xt, k, s, p, return_indices=indices)
    y = out[0] if indices else out
    np.testing.assert_array_equal(y._data, ey.astype(dtype))
    y.backward(t(gy))
    assert xt.grad._data.nbytes >= 8 << 20
    np.testing.assert_allclose(xt.grad._data, scatter_planes_ref(gy, eidx, x.shape), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k, s, p", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1))])
def test_avg_pool2d_large_gradient(k, s, p, dtype):
    rng = np.random.default_rng(9)
    x = rng.standard_normal(LARGE_PLANES).astype(dtype)
    xt = t(x, True)
    y = F.avg_pool2d(xt, k, s, p)
    gy = rng.standard_normal(y.shape)
    y.backward(t(gy.astype(dtype)))
    # avg_pool2d is linear: dx[i] = sum over windows w containing i of gy[w] / |w| (padding
    # counted), written with one window at a time.
    N, C, H, W = x.shape
    dx = np.zeros((N, C, H + 2 * p[0], W + 2 * p[1]))
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            h0, w0 = i * s[0], j * s[1]
            dx[:, :, h0:h0 + k[0], w0:w0 + k[1]] += gy[:, :, i:i + 1, j:j + 1] / (k[0] * k[1])
    dx = dx[:, :, p[0]:p[0] + H, p[1]:p[1] + W]
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(xt.grad._data, dx, rtol=tol, atol=tol)


def test_avg_pool2d_large_output_streamed(simd):
    # y of 8 MiB and more (10.5 MB here, from 42 MB of input) with planes of 4 KB is built per plane and streamed out
    # on the AVX-512 path; every path must give the float64 reference's values.
    x = np.random.default_rng(10).standard_normal((160, 16, 64, 64)).astype(np.float32)
    y = F.avg_pool2d(t(x), 2)
    assert y._data.nbytes >= 8 << 20
    expected = x.astype(np.float64).reshape(160, 16, 32, 2, 32, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(y._data, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("out", [(1, 1), (3, 5)])
def test_adaptive_avg_pool2d_large_gradient(out, dtype):
    rng = np.random.default_rng(10)
    x = rng.standard_normal(LARGE_PLANES).astype(dtype)
    xt = t(x, True)
    y = F.adaptive_avg_pool2d(xt, out)
    gy = rng.standard_normal(y.shape)
    y.backward(t(gy.astype(dtype)))
    N, C, H, W = x.shape
    dx = np.zeros(x.shape)
    for i in range(out[0]):
        hs, he = (i * H) // out[0], -(-((i + 1) * H) // out[0])
        for j in range(out[1]):
            ws, we = (j * W) // out[1], -(-((j + 1) * W) // out[1])
            dx[:, :, hs:he, ws:we] += gy[:, :, i:i + 1, j:j + 1] / ((he - hs) * (we - ws))
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(xt.grad._data, dx, rtol=tol, atol=tol)


# ---- 2x2 / stride 2 max pooling on every SIMD path (AVX-512: sixteen windows per block, masked
# row tails, whole planes with y and dx streamed out in 64-byte lines when large) ----------------
def max_pool_all_paths(x, gy, k=2, s=2, p=0, ceil_mode=False):
    """(path, y, flat indices, y without grad, dx through the taps) for every SIMD path."""
    out = []
    for path in SIMD_PATHS:
        pydl._C.set_simd_path(path)
        try:
            y, idx = F.max_pool2d(t(x), k, s, p, ceil_mode=ceil_mode, return_indices=True)
            with pydl.no_grad():
                y0 = F.max_pool2d(t(x), k, s, p, ceil_mode=ceil_mode)
            xt = t(x, True)
            F.max_pool2d(xt, k, s, p, ceil_mode=ceil_mode).backward(t(gy))
            out.append((path, y._data, idx._data, y0._data, xt.grad._data))
        finally:
            pydl._C.set_simd_path("auto")
    return out


def check_against_reference(x, k, s, p, ceil_mode, results, gy):
    kk, ss, pp = (k, k), (s, s), (p, p)
    ey, eidx = ref_max_pool2d(x.astype(np.float64).reshape((-1, 1) + x.shape[-2:]), kk, ss,
                                  pp, (1, 1), ceil_mode)
    ey = ey.reshape(x.shape[:-2] + ey.shape[-2:])
    eidx = eidx.reshape(ey.shape)
    egx = scatter_planes_ref(gy, eidx, x.shape)
    portable = results[-1]
    for path, y, idx, y0, gx in results:
        np.testing.assert_array_equal(y, ey.astype(x.dtype), err_msg=path)
        np.testing.assert_array_equal(y0, ey.astype(x.dtype), err_msg=path)
        np.testing.assert_array_equal(idx, eidx, err_msg=path)
        np.testing.assert_allclose(gx, egx, rtol=1e-6, atol=1e-6, err_msg=path)
        for a, b in zip((y, idx, y0, gx), portable[1:]):  # bit for bit as the portable loops
            np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8), err_msg=path)


BITWISE_SHAPES = [(2, 3, 8, 32), (1, 2, 9, 33), (1, 1, 4, 34), (3, 1, 5, 3), (1, 2, 6, 2),
                  (2, 2, 12, 62), (0, 3, 8, 32), (1, 1, 2, 94)]
BITWISE_WINDOWS = [(2, 2, 0, False), (2, 2, 0, True), (2, 2, 1, False), (3, 2, 1, False),
                   (3, 2, 1, True), (3, 2, 0, False)]  # kernel, stride, padding, ceil_mode


@pytest.mark.parametrize("shape, k, s, p, ceil_mode", [
    (shape,) + w for shape in BITWISE_SHAPES for w in BITWISE_WINDOWS
    if min(shape[-2:]) + 2 * w[2] >= w[0]])  # windows that fit the padded plane
def test_max_pool2d_paths_agree_bitwise(shape, k, s, p, ceil_mode):
    x = wide_input(sum(shape), shape, np.float32)
    x[..., 0, :3] = -0.0  # signed zeros tie with +0 (the first one's bits must win)
    x[..., 1, :3] = 0.0
    x[..., -1, -4:] = np.nan  # NaNs in the last columns (the masked block tail)
    oh = out_size(shape[-2], k, s, p, 1, ceil_mode)
    ow = out_size(shape[-1], k, s, p, 1, ceil_mode)
    gy = np.random.default_rng(1).standard_normal(shape[:-2] + (oh, ow)).astype(np.float32)
    gy.reshape(-1)[::7] = -0.0  # a -0 gradient: portable writes it as it is (2x2) or adds it to 0
    check_against_reference(x, k, s, p, ceil_mode, max_pool_all_paths(x, gy, k, s, p, ceil_mode),
                            gy)


def test_max_pool2d_2x2_noncontiguous_and_ties_all_paths():
    base = wide_input(3, (2, 3, 10, 70), np.float32)
    x = base[:, ::-1, :, 1:67]  # reversed channels, a column window: not contiguous
    x[..., ::2, ::2] = 1.0  # whole windows of ties on some rows
    x[..., ::2, 1::2] = 1.0
    gy = np.random.default_rng(2).standard_normal((2, 3, 5, 33)).astype(np.float32)
    check_against_reference(np.ascontiguousarray(x), 2, 2, 0, False,
                            max_pool_all_paths(x, gy), gy)


@pytest.mark.parametrize("k, p", [(2, 0), (3, 1)])
def test_max_pool2d_streamed_planes_all_paths(k, p):
    """y of 8 MiB or more: AVX-512 builds each plane in a buffer and streams it (as dx); planes of
    58 x 58 (and their 29 x 29 outputs) start at every 4-byte offset from line alignment."""
    x = wide_input(11, (2500, 1, 58, 58), np.float32)
    gy = np.random.default_rng(12).standard_normal((2500, 1, 29, 29)).astype(np.float32)
    results = max_pool_all_paths(x, gy, k, 2, p)
    assert results[0][1].nbytes >= 8 << 20
    check_against_reference(x, k, 2, p, False, results, gy)
