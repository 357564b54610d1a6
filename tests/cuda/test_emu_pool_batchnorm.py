"""CUDA pooling and batch norm (cuda/pool.cuh, cuda/batchnorm.cuh) on the emulation harness,
against float64 NumPy references written here with plain loops."""
import itertools

import numpy as np
import pytest

from pydl._cuda_kernels import CudaKernels

out_size = CudaKernels.pool_output_size


def ref_max_pool(x, k, s, p, d, ceil_mode):
    n, c, h, w = x.shape
    oh, ow = out_size(h, k[0], s[0], p[0], d[0], ceil_mode), out_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    y = np.empty((n, c, oh, ow))
    idx = np.empty((n, c, oh, ow), np.int64)
    for oy, ox in itertools.product(range(oh), range(ow)):
        best = np.full((n, c), -np.inf)
        at = np.full((n, c), -1, np.int64)
        for ky, kx in itertools.product(range(k[0]), range(k[1])):
            iy, ix = oy * s[0] - p[0] + ky * d[0], ox * s[1] - p[1] + kx * d[1]
            if 0 <= iy < h and 0 <= ix < w:
                v = x[:, :, iy, ix].astype(np.float64)
                take = (v > best) | (at < 0)
                best = np.where(take, v, best)
                at = np.where(take, iy * w + ix, at)
        y[:, :, oy, ox], idx[:, :, oy, ox] = best, at
    return y, idx


def ref_avg_pool(x, k, s, p, ceil_mode, include_pad, divisor):
    n, c, h, w = x.shape
    oh, ow = out_size(h, k[0], s[0], p[0], 1, ceil_mode), out_size(w, k[1], s[1], p[1], 1, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    weights = np.zeros((oh, ow, h, w))  # d y[oy, ox] / d x[iy, ix]
    for oy, ox in itertools.product(range(oh), range(ow)):
        y0, x0 = oy * s[0] - p[0], ox * s[1] - p[1]
        y1, x1 = min(y0 + k[0], h + p[0]), min(x0 + k[1], w + p[1])
        padded = (y1 - y0) * (x1 - x0)
        y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
        div = divisor or (padded if include_pad else (y1 - y0) * (x1 - x0))
        weights[oy, ox, y0:y1, x0:x1] = 1.0 / div
    y = np.einsum("ncyx,abyx->ncab", x.astype(np.float64), weights)
    return y, weights


POOLS = [  # (shape, kernel, stride, padding, dilation, ceil_mode)
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((1, 2, 7, 9), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((2, 1, 11, 6), (3, 2), (1, 2), (1, 1), (2, 1), False),
    ((1, 4, 5, 5), (5, 5), (1, 1), (2, 2), (1, 1), False),
    ((3, 2, 10, 13), (4, 3), (3, 3), (2, 1), (1, 1), True),
    ((0, 3, 6, 6), (2, 2), (2, 2), (0, 0), (1, 1), False),
]
POOL_IDS = [f"{'x'.join(map(str, c[0]))}-k{c[1][0]}{c[1][1]}-s{c[2][0]}{c[2][1]}-p{c[3][0]}"
            f"{c[3][1]}-d{c[4][0]}{c[4][1]}-ceil{int(c[5])}" for c in POOLS]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", POOLS, ids=POOL_IDS)
def test_max_pool2d(kernels, rng, case, dtype):
    shape, k, s, p, d, ceil_mode = case
    # Distinct values: ties would make the argmax ambiguous between implementations.
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(dtype) / 7
    y, idx = kernels.max_pool2d_forward(x, k, s, p, d, ceil_mode)
    y_ref, idx_ref = ref_max_pool(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))
    np.testing.assert_array_equal(idx, idx_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = kernels.max_pool2d_backward(dy, idx, shape, k, s, p, d, ceil_mode)
    dx_ref = np.zeros((shape[0] * shape[1], shape[2] * shape[3]))
    for plane in range(dx_ref.shape[0]):
        np.add.at(dx_ref[plane], idx_ref.reshape(dx_ref.shape[0], -1)[plane],
                  dy.reshape(dx_ref.shape[0], -1)[plane].astype(np.float64))
    np.testing.assert_allclose(dx.reshape(dx_ref.shape), dx_ref, rtol=1e-6, atol=1e-6)


def test_max_pool2d_nan_propagates(kernels):
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 1, 2] = np.nan
    y, idx = kernels.max_pool2d_forward(x, (2, 2), (2, 2))
    assert np.isnan(y[0, 0, 0, 1]) and idx[0, 0, 0, 1] == 6
    assert y[0, 0, 1, 1] == 15


@pytest.mark.parametrize("include_pad,divisor", [(True, None), (False, None), (True, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", [c for c in POOLS if c[4] == (1, 1)],
                         ids=[i for i, c in zip(POOL_IDS, POOLS) if c[4] == (1, 1)])
def test_avg_pool2d(kernels, rng, case, dtype, include_pad, divisor):
    shape, k, s, p, _, ceil_mode = case
    x = rng.standard_normal(shape).astype(dtype)
    y = kernels.avg_pool2d_forward(x, k, s, p, ceil_mode, include_pad, divisor)
    y_ref, weights = ref_avg_pool(x, k, s, p, ceil_mode, include_pad, divisor)
    t = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, y_ref, rtol=t, atol=t)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = kernels.avg_pool2d_backward(dy, shape, k, s, p, ceil_mode, include_pad, divisor)
    dx_ref = np.einsum("ncab,abyx->ncyx", dy.astype(np.float64), weights)
    np.testing.assert_allclose(dx, dx_ref, rtol=t, atol=t)


@pytest.mark.parametrize("padding", [(2, 0), (0, -1)])
def test_pool_bad_padding_raises(kernels, padding):
    with pytest.raises(ValueError, match="padding"):
        kernels.max_pool2d_forward(np.zeros((1, 1, 6, 6), np.float32), (3, 3), (1, 1), padding)


BN_SHAPES = [(4, 3), (2, 5, 7), (3, 4, 5, 6), (1, 2, 33, 17), (7, 1, 1, 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES, ids=["x".join(map(str, s)) for s in BN_SHAPES])
def test_batch_norm_train_forward_backward(kernels, rng, shape, affine, dtype):
    c = shape[1]
    axes = (0,) + tuple(range(2, len(shape)))
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)
    w = rng.standard_normal(c).astype(dtype) if affine else None
    b = rng.standard_normal(c).astype(dtype) if affine else None
    rm0, rv0 = rng.standard_normal(c).astype(dtype), rng.random(c).astype(dtype) + 0.5
    rm, rv = rm0.copy(), rv0.copy()
    eps, momentum = 1e-5, 0.1
    y, save_mean, save_invstd = kernels.batch_norm_forward_train(x, w, b, rm, rv, momentum, eps)

    x64 = x.astype(np.float64)
    m = x64.size // c
    mean, var = x64.mean(axis=axes), x64.var(axis=axes)
    bshape = [1, c] + [1] * (len(shape) - 2)
    xhat = (x64 - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + eps)
    w64 = np.ones(c) if w is None else w.astype(np.float64)
    b64 = np.zeros(c) if b is None else b.astype(np.float64)
    y_ref = xhat * w64.reshape(bshape) + b64.reshape(bshape)
    t = 2e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(y, y_ref, rtol=t, atol=t)
    np.testing.assert_allclose(save_mean, mean, rtol=t, atol=t)
    np.testing.assert_allclose(save_invstd, 1 / np.sqrt(var + eps), rtol=t, atol=t)
    np.testing.assert_allclose(rm, (1 - momentum) * rm0 + momentum * mean, rtol=t, atol=t)
    if m > 1:
        np.testing.assert_allclose(rv, (1 - momentum) * rv0 + momentum * var * m / (m - 1),
                                   rtol=t, atol=t)

    dy = rng.standard_normal(shape).astype(dtype)
    dx, dw, db = kernels.batch_norm_backward_train(x, dy, w, save_mean, save_invstd)
    dy64 = dy.astype(np.float64)
    db_ref = dy64.sum(axis=axes)
    dw_ref = (dy64 * xhat).sum(axis=axes)
    dx_ref = (w64 / np.sqrt(var + eps) / m).reshape(bshape) * (
        m * dy64 - db_ref.reshape(bshape) - xhat * dw_ref.reshape(bshape))
    tb = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(dx, dx_ref, rtol=tb, atol=tb)
    np.testing.assert_allclose(dw, dw_ref, rtol=tb, atol=tb)
    np.testing.assert_allclose(db, db_ref, rtol=tb, atol=tb)


def test_batch_norm_backward_only_some_grads(kernels, rng):
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    _, sm, si = kernels.batch_norm_forward_train(x, None, None, None, None, 0.1, 1e-5)
    dx, dw, db = kernels.batch_norm_backward_train(x, np.ones_like(x), None, sm, si,
                                                   needs=(False, True, False))
    assert dx is None and db is None and dw.shape == (2,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_batch_norm_eval(kernels, rng, dtype):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    w, b = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    rm, rv = rng.standard_normal(4).astype(dtype), rng.random(4).astype(dtype) + 0.1
    y = kernels.batch_norm_forward_eval(x, w, b, rm, rv, 1e-3)
    ref = ((x - rm[:, None]) / np.sqrt(rv[:, None].astype(np.float64) + 1e-3) * w[:, None]
           + b[:, None])
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_batch_norm_large_mean_is_stable(kernels, rng):
    # Welford: a large common offset must not destroy the variance (naive sum of squares would).
    x = (1e4 + rng.standard_normal((64, 2, 16))).astype(np.float32)
    _, _, invstd = kernels.batch_norm_forward_train(x, None, None, None, None, 0.1, 1e-5)
    var = x.astype(np.float64).var(axis=(0, 2))
    np.testing.assert_allclose(invstd, 1 / np.sqrt(var + 1e-5), rtol=2e-3)
