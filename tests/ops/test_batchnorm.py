"""batch_norm and BatchNorm1d/2d: float64 NumPy references, running statistics, gradcheck."""
import numpy as np
import pytest

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
from pydl.autograd import gradcheck


def t(a, requires_grad=False):
    return pydl.tensor(a, requires_grad=requires_grad)


def ref_batch_norm(x, mean, var, gamma, beta, eps):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel (axis 1)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y


def batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes)


SHAPES = [(4, 3), (1, 5, 7), (3, 2, 17), (2, 3, 4, 5), (5, 1, 3, 3), (2, 7, 16, 1), (3, 37)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_training_forward_and_running_stats(shape, dtype):
    rng = np.random.default_rng(len(shape) * 10 + shape[1])
    x = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    C = shape[1]
    gamma, beta = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    rm0, rv0 = rng.standard_normal(C).astype(dtype), rng.random(C).astype(dtype) + 0.5
    rm, rv = t(rm0.copy()), t(rv0.copy())
    y = F.batch_norm(t(x), rm, rv, t(gamma), t(beta), training=True, momentum=0.3, eps=1e-3)
    x64 = x.astype(np.float64)
    mean, var = batch_stats(x64)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y.numpy(), ref_batch_norm(x64, mean, var, gamma, beta, 1e-3), **tol)
    M = x.size // C
    np.testing.assert_allclose(rm.numpy(), 0.7 * rm0 + 0.3 * mean, **tol)
    np.testing.assert_allclose(rv.numpy(), 0.7 * rv0 + 0.3 * var * M / (M - 1), **tol)


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_eval_forward(shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    C = shape[1]
    rm, rv = rng.standard_normal(C), rng.random(C) + 0.1
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    y = F.batch_norm(t(x), t(rm), t(rv), t(gamma), t(beta), training=False)
    np.testing.assert_allclose(y.numpy(), ref_batch_norm(x, rm, rv, gamma, beta, 1e-5), rtol=1e-10)
    y2 = F.batch_norm(t(x), t(rm), t(rv))  # no affine
    np.testing.assert_allclose(y2.numpy(), ref_batch_norm(x, rm, rv, None, None, 1e-5), rtol=1e-10)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 4, 5), (2, 2, 17, 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_gradcheck(shape, affine):
    rng = np.random.default_rng(2)
    x = t(rng.standard_normal(shape) * 3 + 1, True)
    C = shape[1]
    if affine:
        g, b = t(rng.standard_normal(C), True), t(rng.standard_normal(C), True)
        fn = lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True)
        assert gradcheck(fn, (x, g, b))
    else:
        assert gradcheck(lambda x: F.batch_norm(x, None, None, training=True), (x,))


def test_batch_norm_eval_gradcheck():
    rng = np.random.default_rng(3)
    x = t(rng.standard_normal((3, 4, 2, 3)), True)
    g, b = t(rng.standard_normal(4), True), t(rng.standard_normal(4), True)
    rm, rv = t(rng.standard_normal(4)), t(rng.random(4) + 0.5)
    assert gradcheck(lambda x, g, b: F.batch_norm(x, rm, rv, g, b, training=False), (x, g, b))


def test_batch_norm_backward_only_weight_grads():
    rng = np.random.default_rng(4)
    x = t(rng.standard_normal((5, 3, 4)))
    g = t(rng.standard_normal(3), True)
    b = t(rng.standard_normal(3), True)
    assert gradcheck(lambda g, b: F.batch_norm(x, None, None, g, b, training=True), (g, b))


def test_batch_norm_large_mean_is_accurate_in_float32():
    # E[x^2] - E[x]^2 in float32 would lose everything here; shifted sums in double do not.
    rng = np.random.default_rng(5)
    x = (1e4 + rng.standard_normal((16, 4, 32))).astype(np.float32)
    y = F.batch_norm(t(x), None, None, training=True)
    x64 = x.astype(np.float64)
    mean, var = batch_stats(x64)
    np.testing.assert_allclose(y.numpy(), ref_batch_norm(x64, mean, var, None, None, 1e-5),
                               atol=3e-3)
    np.testing.assert_allclose(y.numpy().std(axis=(0, 2)), 1, rtol=1e-3)


def test_batch_norm_noncontiguous_input():
    rng = np.random.default_rng(6)
    base = rng.standard_normal((5, 4, 3, 6))
    x = base.transpose(3, 1, 0, 2)  # (6, 4, 5, 3)
    assert not x.flags.c_contiguous
    xt = t(x, True)
    y = F.batch_norm(xt, None, None, training=True)
    mean, var = batch_stats(x)
    np.testing.assert_allclose(y.detach().numpy(), ref_batch_norm(x, mean, var, None, None, 1e-5), rtol=1e-10)
    assert gradcheck(lambda x: F.batch_norm(x, None, None, training=True), (t(x[:2, :, :2], True),))


def test_batch_norm_inf_input_running_statistics():
    """As PyTorch (issue #13): a +-inf in a channel makes its batch mean +-inf and its variance
    NaN (inf - inf), the running statistics follow, and that channel's outputs are NaN; the
    other channels are untouched."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3, 5))
    x[1, 0, 2], x[2, 1, 1] = np.inf, -np.inf
    rm, rv = t(np.zeros(3)), t(np.ones(3))
    with np.errstate(invalid="ignore"):
        y = F.batch_norm(t(x), rm, rv, training=True).numpy()
    mean, var = batch_stats(x[:, 2:])
    np.testing.assert_array_equal(rm.numpy()[:2], [np.inf, -np.inf])
    assert np.isnan(rv.numpy()[:2]).all() and np.isnan(y[:, :2]).all()
    np.testing.assert_allclose(rm.numpy()[2], 0.1 * mean[0], rtol=1e-12)
    np.testing.assert_allclose(rv.numpy()[2], 0.9 + 0.1 * var[0] * 20 / 19, rtol=1e-12)
    assert np.isfinite(y[:, 2]).all()


def test_batch_norm_errors():
    x = pydl.randn(4, 3, 5)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(pydl.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="evaluation mode"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.batch_norm(x, None, None, pydl.ones(4), training=True)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        F.batch_norm(x, pydl.zeros(2), pydl.ones(3))
    with pytest.raises(ValueError, match="at least 2 dims"):
        F.batch_norm(pydl.randn(5), None, None, training=True)
    with pytest.raises(TypeError, match="differs from the input dtype"):
        F.batch_norm(x, None, None, pydl.ones(3, dtype=pydl.float64), training=True)


# ---- modules ---------------------------------------------------------------------------------
def test_batchnorm2d_train_eval_cycle():
    rng = np.random.default_rng(7)
    bn = nn.BatchNorm2d(3)
    assert [p.shape for p in bn.parameters()] == [(3,), (3,)]
    np.testing.assert_array_equal(bn.running_var.numpy(), 1)
    xs = [(rng.standard_normal((4, 3, 5, 5)) * 2 + 1).astype(np.float32) for _ in range(3)]
    rm, rv = np.zeros(3), np.ones(3)
    for x in xs:
        y = bn(t(x))
        mean, var = batch_stats(x.astype(np.float64))
        np.testing.assert_allclose(y.detach().numpy(), ref_batch_norm(x, mean, var, None, None, 1e-5),
                                   atol=1e-4)
        rm = 0.9 * rm + 0.1 * mean
        rv = 0.9 * rv + 0.1 * var * 100 / 99
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-5)
    assert int(bn.num_batches_tracked.item()) == 3
    bn.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    y = bn(t(x))
    np.testing.assert_allclose(y.detach().numpy(), ref_batch_norm(x, rm, rv, None, None, 1e-5), atol=1e-5)
    assert int(bn.num_batches_tracked.item()) == 3  # eval does not count batches


def test_batchnorm1d_shapes_momentum_none_and_no_tracking():
    rng = np.random.default_rng(8)
    bn = nn.BatchNorm1d(5, momentum=None, dtype=pydl.float64)
    xs = [rng.standard_normal((6, 5)) for _ in range(3)]
    for x in xs:
        bn(t(x))
    # momentum=None: the cumulative average of the batch statistics.
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([x.mean(0) for x in xs], 0),
                               rtol=1e-12)
    bn3 = nn.BatchNorm1d(5, affine=False, track_running_stats=False)
    assert bn3.running_mean is None and list(bn3.parameters()) == []
    x = rng.standard_normal((4, 5, 7)).astype(np.float32)
    bn3.eval()  # no running stats: batch statistics even in eval mode
    mean, var = batch_stats(x.astype(np.float64))
    np.testing.assert_allclose(bn3(t(x)).numpy(), ref_batch_norm(x, mean, var, None, None, 1e-5),
                               atol=1e-4)


def test_batchnorm_module_gradients_flow_to_parameters():
    rng = np.random.default_rng(9)
    bn = nn.BatchNorm2d(2, dtype=pydl.float64)
    bn.weight._data[:] = rng.standard_normal(2)
    x = t(rng.standard_normal((3, 2, 2, 2)), True)
    assert gradcheck(lambda x: bn(x), (x,))
    bn.zero_grad()
    bn(x).sum().backward()
    # d sum(y) / d beta = M per channel; d sum(y) / d gamma = sum(xhat) = 0.
    np.testing.assert_allclose(bn.bias.grad.numpy(), 12)
    np.testing.assert_allclose(bn.weight.grad.numpy(), 0, atol=1e-10)


def test_batchnorm_module_errors():
    with pytest.raises(ValueError, match=r"expected input with 4 channels.*\(2, 3, 5, 5\)"):
        nn.BatchNorm2d(4)(pydl.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(3)(pydl.randn(2, 3, 5))
    with pytest.raises(ValueError, match="2-D"):
        nn.BatchNorm1d(3)(pydl.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match="num_features"):
        nn.BatchNorm1d(0)


def test_batch_norm_zero_batch():
    y = F.batch_norm(pydl.zeros(0, 3, 4), None, None, training=True)
    assert y.shape == (0, 3, 4)


# ---- the SIMD paths: AVX2 loops (float32) and the portable ones, on shapes that reach every loop
# (row sums over more than one flush block of 2048 values, rows not a multiple of the vector
# width, (N, C) input with channels side by side, small L between 1 and 16, and an output of
# 8 MiB or more, written with streaming stores, whose odd rows start off 32-byte alignment;
# (N, C) input summed in pieces of whole row blocks: (4099, 515) has 10 pieces of 448 rows, a
# row count that is no multiple of 4 or 64, 515 channels (a tail after the vectors) and an
# 8.4 MB output written with streaming stores from unaligned row starts; (1500, 1100) has more
# channels than one 1024-channel tile of float accumulators)
SIMD_SHAPES = [(3, 5, 37, 41), (2, 3, 2500), (4, 2, 16, 3), (64, 19), (33, 24), (5, 7, 3),
               (2, 3, 349501), (4099, 515), (1500, 1100), (7, 1), (2, 13)]


@pytest.fixture(params=["auto", "portable"])
def simd(request):
    pydl._C.set_simd_path(request.param)
    yield request.param
    pydl._C.set_simd_path("auto")


def ref_batch_norm_backward(x, gy, gamma, eps, training):
    """dx, dgamma, dbeta in float64 from the closed forms (module docstring of pydl.ops.batchnorm),
    with the batch statistics (training) or the given ones."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = batch_stats(x)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - mean.reshape(shape)) * invstd.reshape(shape)
    dbeta = gy.sum(axis=axes)
    dgamma = (gy * xhat).sum(axis=axes)
    a = (gamma * invstd).reshape(shape)
    if not training:
        return a * gy, dgamma, dbeta
    M = x.size // x.shape[1]
    dx = a * (gy - dbeta.reshape(shape) / M - xhat * dgamma.reshape(shape) / M)
    return dx, dgamma, dbeta


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SIMD_SHAPES)
def test_batch_norm_simd_paths_training(shape, dtype, simd):
    rng = np.random.default_rng(sum(shape))
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    gamma, beta = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    xt, gt, bt = t(x, True), t(gamma, True), t(beta, True)
    y = F.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-3)
    x64 = x.astype(np.float64)
    mean, var = batch_stats(x64)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-4)
    np.testing.assert_allclose(y._data, ref_batch_norm(x64, mean, var, gamma, beta, 1e-3), **tol)
    y.backward(t(gy))
    dx, dgamma, dbeta = ref_batch_norm_backward(x64, gy.astype(np.float64),
                                                gamma.astype(np.float64), 1e-3, True)
    np.testing.assert_allclose(xt.grad._data, dx, **tol)
    # dgamma and dbeta are sums over N * L values: compare relative to their scale.
    scale = np.sqrt(x.size / C)
    np.testing.assert_allclose(gt.grad._data / scale, dgamma / scale, **tol)
    np.testing.assert_allclose(bt.grad._data / scale, dbeta / scale, **tol)


@pytest.mark.parametrize("shape", SIMD_SHAPES)
def test_batch_norm_simd_paths_eval(shape, simd):
    rng = np.random.default_rng(sum(shape) + 1)
    C = shape[1]
    x = rng.standard_normal(shape).astype(np.float32)
    gy = rng.standard_normal(shape).astype(np.float32)
    rm, rv = rng.standard_normal(C).astype(np.float32), (rng.random(C) + 0.2).astype(np.float32)
    gamma = rng.standard_normal(C).astype(np.float32)
    xt = t(x, True)
    y = F.batch_norm(xt, t(rm), t(rv), t(gamma), None, training=False)
    rm64, rv64 = rm.astype(np.float64), rv.astype(np.float64)
    np.testing.assert_allclose(y._data, ref_batch_norm(x.astype(np.float64), rm64, rv64, gamma,
                                                      None, 1e-5), rtol=1e-5, atol=1e-5)
    y.backward(t(gy))
    shape1 = (1, -1) + (1,) * (x.ndim - 2)
    expected = gy * (gamma / np.sqrt(rv64 + 1e-5)).reshape(shape1)
    np.testing.assert_allclose(xt.grad._data, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SIMD_SHAPES)
def test_batch_norm_avx2_matches_portable(shape):
    rng = np.random.default_rng(sum(shape) + 2)
    C = shape[1]
    x = (rng.standard_normal(shape) + 100).astype(np.float32)  # a large mean: the shift matters
    gy = rng.standard_normal(shape).astype(np.float32)
    gamma = rng.standard_normal(C).astype(np.float32)
    out = []
    for path in ("auto", "portable"):
        pydl._C.set_simd_path(path)
        try:
            y, mean, var, invstd = pydl._C.batch_norm_forward_train(x, gamma, None, 1e-5)
            dx, dg, db = pydl._C.batch_norm_backward(gy, x, mean, invstd, gamma, True, True,
                                                      True, True)
            out.append((y, mean, var, dx, dg, db))
        finally:
            pydl._C.set_simd_path("auto")
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_batch_norm_1d_many_pieces_inf_and_huge_channels():
    """(N, C) input summed in several pieces (3000 rows, pieces of 1280): a channel with one inf
    in the second piece gets an inf mean and a NaN variance (inf - inf, as PyTorch), a channel
    of finite values up to 3e38 keeps a finite mean (the float sums overflow and are redone in
    double) and an infinite float32 variance, and the other channels match float64."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3000, 200)).astype(np.float32)
    x[1500, 7] = np.inf
    x[:, 9] = rng.uniform(-3e38, 3e38, size=3000).astype(np.float32)
    for path in ("auto", "portable"):
        pydl._C.set_simd_path(path)
        try:
            rm, rv = t(np.zeros(200, np.float32)), t(np.ones(200, np.float32))
            with np.errstate(invalid="ignore"):
                y = F.batch_norm(t(x), rm, rv, training=True).numpy()
        finally:
            pydl._C.set_simd_path("auto")
        assert np.isposinf(rm.numpy()[7]) and np.isnan(rv.numpy()[7]) and np.isnan(y[:, 7]).all()
        x64 = x.astype(np.float64)
        mean9 = x64[:, 9].mean()
        assert np.isfinite(rm.numpy()[9]) and np.isposinf(rv.numpy()[9])
        np.testing.assert_allclose(rm.numpy()[9], 0.1 * mean9, rtol=1e-5)
        assert not np.isnan(y[:, 9]).any()
        np.testing.assert_allclose(y[:, 9], (x64[:, 9] - mean9) / x64[:, 9].std(), rtol=1e-4,
                                   atol=1e-5)
        rest = [c for c in range(200) if c not in (7, 9)]
        mean, var = batch_stats(x64[:, rest])
        np.testing.assert_allclose(rm.numpy()[rest], 0.1 * mean, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(rv.numpy()[rest], 0.9 + 0.1 * var * 3000 / 2999, rtol=1e-5)
        np.testing.assert_allclose(y[:, rest], ref_batch_norm(x64[:, rest], mean, var, None, None,
                                                              1e-5), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(5000, 72), (700, 1030)])
def test_batch_norm_1d_same_bits_for_any_thread_count(shape):
    """The (N, C) sums are cut into pieces chosen from C alone and added in piece order, so the
    outputs and gradients are bitwise the same for 1..4 threads (without
    use_deterministic_algorithms), on every SIMD path."""
    rng = np.random.default_rng(12)
    x = (rng.standard_normal(shape) * 2 + 3).astype(np.float32)
    gy = rng.standard_normal(shape).astype(np.float32)
    gamma = rng.standard_normal(shape[1]).astype(np.float32)
    threads = pydl.get_num_threads()
    try:
        for path in pydl._C.available_simd_paths():
            pydl._C.set_simd_path(path)
            results = set()
            for n in (1, 2, 3, 4):
                pydl.set_num_threads(n)
                y, mean, var, invstd = pydl._C.batch_norm_forward_train(x, gamma, None, 1e-5)
                grads = pydl._C.batch_norm_backward(gy, x, mean, invstd, gamma, True, True, True,
                                                    True)
                results.add(b"".join(a.tobytes() for a in (y, mean, var, invstd) + tuple(grads)))
            assert len(results) == 1, path
    finally:
        pydl.set_num_threads(threads)
        pydl._C.set_simd_path("auto")


@pytest.mark.parametrize("dtype", [pydl.float32, pydl.float64])
def test_batchnorm1d_zero_batch_train_and_grads(dtype):
    """(0, C) in training, as PyTorch: an empty output, running statistics unchanged, zero
    weight and bias gradients and an empty input gradient."""
    bn = nn.BatchNorm1d(5, dtype=dtype)
    x = pydl.zeros(0, 5, dtype=dtype, requires_grad=True)
    y = bn(x)
    assert y.shape == (0, 5)
    np.testing.assert_array_equal(bn.running_mean.numpy(), 0)
    np.testing.assert_array_equal(bn.running_var.numpy(), 1)
    y.sum().backward()
    assert x.grad.shape == (0, 5)
    np.testing.assert_array_equal(bn.weight.grad.numpy(), 0)
    np.testing.assert_array_equal(bn.bias.grad.numpy(), 0)
