"""inf and NaN semantics against PyTorch (issue #13): where PyTorch gives NaN, inf or a finite
value for non-finite or huge inputs, pydl gives the same, on every SIMD path."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import _C

torch = pytest.importorskip("torch")


@pytest.fixture(params=_C.available_simd_paths())
def simd_path(request):
    _C.set_simd_path(request.param)
    yield request.param
    _C.set_simd_path("auto")


def _same(a, b, atol=1e-6):
    """Same values, NaN where the other has NaN, infinities of the same sign."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b)), (a, b)
    assert np.array_equal(np.isposinf(a), np.isposinf(b)), (a, b)
    assert np.array_equal(np.isneginf(a), np.isneginf(b)), (a, b)
    finite = np.isfinite(a)
    np.testing.assert_allclose(a[finite], b[finite], rtol=1e-5, atol=atol)


INF = np.inf
# Rows: with +inf, with two +inf, all -inf, with -inf, ordinary, with NaN.
LOGITS = np.array([[1.0, INF, 2.0, 0.5, -1.0],
                   [INF, INF, 0.0, 1.0, 2.0],
                   [-INF, -INF, -INF, -INF, -INF],
                   [-INF, 0.0, 1.0, 2.0, 3.0],
                   [1.0, 2.0, 3.0, 4.0, 5.0],
                   [1.0, np.nan, 2.0, 0.0, 0.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("target", [0, 1, 2, 3])
def test_cross_entropy_inf_logits(simd_path, dtype, reduction, target):
    z = LOGITS.astype(dtype)
    t = np.full(len(z), target)
    x = pydl.tensor(z, requires_grad=True)
    loss = F.cross_entropy(x, pydl.tensor(t), reduction=reduction)
    xt = torch.tensor(z, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(xt, torch.tensor(t), reduction=reduction)
    _same(loss.detach().numpy(), loss_t.detach().numpy())
    loss.sum().backward()
    loss_t.sum().backward()
    _same(x.grad.numpy(), xt.grad.numpy())


def test_batch_norm_running_stats_after_inf(simd_path):
    rng = np.random.default_rng(0)
    for shape in [(4, 3, 5, 5), (6, 3, 2, 3), (8, 3)]:
        x = rng.standard_normal(shape).astype(np.float32)
        x[(1, 1) + (1,) * (len(shape) - 2)] = INF
        mk = (lambda m: m.BatchNorm2d(3)) if len(shape) == 4 else (lambda m: m.BatchNorm1d(3))
        bn, bn_t = mk(pydl.nn), mk(torch.nn)
        bn(pydl.tensor(x))
        bn_t(torch.tensor(x))
        _same(bn.running_mean.numpy(), bn_t.running_mean.numpy())
        _same(bn.running_var.numpy(), bn_t.running_var.numpy())
        assert np.isinf(bn.running_mean.numpy()[1])


@pytest.mark.parametrize("shape", [(8, 3, 5, 5), (4, 3, 64, 64), (8, 3, 2, 2), (16, 3)])
def test_batch_norm_huge_finite_channel(simd_path, shape):
    """A channel of finite values up to 3e38: the mean stays finite (as PyTorch's), the variance
    overflows float32 to inf (as PyTorch's), and nothing turns into NaN."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    x[:, 1] = rng.uniform(-3e38, 3e38, size=x[:, 1].shape).astype(np.float32)
    mk = (lambda m: m.BatchNorm2d(3)) if len(shape) == 4 else (lambda m: m.BatchNorm1d(3))
    bn, bn_t = mk(pydl.nn), mk(torch.nn)
    y = bn(pydl.tensor(x)).detach().numpy()
    bn_t(torch.tensor(x))
    assert not np.isnan(y).any()
    assert np.isfinite(bn.running_mean.numpy()).all()
    # The batch mean in float64, as the reference (PyTorch's BatchNorm1d overflows to -inf here).
    mean = x.astype(np.float64).mean(axis=(0,) + tuple(range(2, x.ndim)))
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean, rtol=1e-5, atol=1e-6)
    assert np.isposinf(bn.running_var.numpy()[1])
    if len(shape) == 4:
        _same(bn.running_mean.numpy(), bn_t.running_mean.numpy())
        _same(bn.running_var.numpy(), bn_t.running_var.numpy())
    # Normalised against the float64 statistics (the variance is finite in float64).
    axes = (0,) + tuple(range(2, x.ndim))
    xd = x.astype(np.float64)
    ref = (xd - xd.mean(axis=axes, keepdims=True)) / np.sqrt(xd.var(axis=axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["forward", "backward"])
def test_winograd_conv_inf_where_torch(simd_path, case):
    """3x3 stride-1 convolutions with 16+ channels take the Winograd path on AVX2; an inf input
    gives +-inf outputs there (as a direct convolution does), not NaN."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    if case == "forward":
        x[0, 1, 5, 5], x[1, 3, 0, 7] = INF, -INF
    else:
        g[0, 2, 4, 4] = INF
    xp, wp = pydl.tensor(x, requires_grad=True), pydl.tensor(w, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = F.conv2d(xp, wp, padding=1)
    yt = torch.nn.functional.conv2d(xt, wt, padding=1)
    # float32 sums of 144 products: absolute tolerance on the scale of the terms
    _same(y.detach().numpy(), yt.detach().numpy(), atol=1e-4)
    if case == "backward":
        y.backward(pydl.tensor(g))
        yt.backward(torch.tensor(g))
        _same(xp.grad.numpy(), xt.grad.numpy(), atol=1e-4)
        _same(wp.grad.numpy(), wt.grad.numpy(), atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reps", [1, 2000])  # small: NumPy path; large: csrc/reduce kernel
@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_inf_rows_all_nan(simd_path, dtype, reps, dim):
    z = np.tile(LOGITS.astype(dtype), (reps, 1))
    if dim == 0:
        z = np.ascontiguousarray(z.T)
    for fp, ft in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)):
        _same(fp(pydl.tensor(z), dim=dim).numpy(), ft(torch.tensor(z), dim).numpy())
