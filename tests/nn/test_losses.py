"""Losses (functional and module forms): forward against float64 references written here with
per-element loops, gradients through gradcheck, every reduction, the class-index options of
cross-entropy (weight, ignore_index, label_smoothing, pixel-wise) on both of its paths (the C++
kernel, portable and AVX2, and the array-module path), stability on large logits, errors."""
import math
import warnings

import numpy as np
import pytest

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
from pydl.autograd import gradcheck as _gradcheck
from pydl.ops import loss as loss_ops
from pydl.testing import assert_close, noncontiguous

REDUCTIONS = ["mean", "sum", "none"]


def gradcheck(fn, inputs):
    return _gradcheck(fn, inputs, atol=1e-8, rtol=1e-6)


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def reduce_ref(per_element, reduction, denom=None):
    per_element = np.asarray(per_element, dtype=np.float64)
    if reduction == "none":
        return per_element
    total = math.fsum(per_element.ravel())
    if reduction == "sum":
        return total
    denom = per_element.size if denom is None else denom
    return total / denom if denom else float("nan")


# -- references ---------------------------------------------------------------------------------
def log_softmax_row(row):
    m = max(row)
    lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def rows_and_targets(x, target):
    """(N, C, d...) logits -> list of (row of C logits, target index) in row-major order of the
    target, so 'none' results reshape to the target's shape."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return [(list(x), target)], ()
    moved = np.moveaxis(x, 1, -1)
    out = []
    for idx in np.ndindex(moved.shape[:-1]):
        out.append((list(moved[idx]), None if target is None else np.asarray(target)[idx]))
    return out, moved.shape[:-1]


def cross_entropy_ref(x, target, weight=None, ignore_index=-100, reduction="mean", eps=0.0):
    rows, shape = rows_and_targets(x, target)
    c = len(rows[0][0]) if rows else (x.shape[1] if x.ndim > 1 else x.shape[0])
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    losses, denom = [], 0.0
    for row, y in rows:
        y = int(y)
        if y == ignore_index:
            losses.append(0.0)
            continue
        logp = log_softmax_row(row)
        nll = -w[y] * logp[y]
        smooth = -math.fsum(w[k] * logp[k] for k in range(c)) / c
        losses.append((1 - eps) * nll + eps * smooth)
        denom += w[y]
    per = np.array(losses).reshape(shape)
    return reduce_ref(per, reduction, denom)


def cross_entropy_probs_ref(x, probs, weight=None, reduction="mean", eps=0.0):
    rows, shape = rows_and_targets(x, None)
    prow, _ = rows_and_targets(probs, None)
    c = len(rows[0][0]) if rows else x.shape[1]
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    losses = []
    for (row, _), (p, _) in zip(rows, prow):
        logp = log_softmax_row(row)
        losses.append(-math.fsum(w[k] * ((1 - eps) * p[k] + eps / c) * logp[k]
                                 for k in range(c)))
    per = np.array(losses).reshape(shape)
    return reduce_ref(per, reduction, len(losses))


def nll_ref(x, target, weight=None, ignore_index=-100, reduction="mean"):
    rows, shape = rows_and_targets(x, target)
    c = x.shape[1] if x.ndim > 1 else x.shape[0]
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    losses, denom = [], 0.0
    for row, y in rows:
        y = int(y)
        if y == ignore_index:
            losses.append(0.0)
            continue
        losses.append(-w[y] * row[y])
        denom += w[y]
    return reduce_ref(np.array(losses).reshape(shape), reduction, denom)


def pointwise_ref(f, *arrays):
    arrays = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in arrays])
    out = np.empty(arrays[0].shape)
    for idx in np.ndindex(out.shape):
        out[idx] = f(*(a[idx] for a in arrays))
    return out


def smooth_l1_el(d, beta):
    return 0.5 * d * d / beta if abs(d) < beta else abs(d) - 0.5 * beta


def bce_el(x, t):
    return -(t * max(math.log(x) if x > 0 else -math.inf, -100.0)
             + (1 - t) * max(math.log(1 - x) if x < 1 else -math.inf, -100.0))


def bce_logits_el(x, t, pw=1.0):
    # log sigmoid(x) = -log(1 + e^-x), written with logaddexp so large |x| stays exact.
    log_sig = -np.logaddexp(0.0, -x)
    log_one_minus_sig = -np.logaddexp(0.0, x)
    return -(pw * t * log_sig + (1 - t) * log_one_minus_sig)


def kl_el(x, t, log_target):
    if log_target:
        return math.exp(t) * (t - x)
    return (t * math.log(t) if t > 0 else 0.0) - t * x


# -- cross-entropy with class indices ------------------------------------------------------------
@pytest.fixture(params=["kernel-auto", "kernel-portable", "arrays"])
def ce_path(request, monkeypatch):
    """Run a test on each cross-entropy implementation."""
    if request.param == "arrays":
        monkeypatch.setattr(loss_ops, "_USE_KERNEL", False)
    elif request.param == "kernel-portable":
        pydl._C.set_simd_path("portable")
        yield request.param
        pydl._C.set_simd_path("auto")
        return
    yield request.param


CE_SHAPES = [((7, 5), (7,)), ((5,), ()), ((2, 3, 4, 5), (2, 4, 5)), ((1, 1), (1,)),
             ((11, 2), (11,)), ((0, 4), (0,)), ((3, 4, 2), (3, 2))]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.25])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape,tshape", CE_SHAPES, ids=str)
def test_cross_entropy_indices(ce_path, shape, tshape, weighted, eps, reduction, rng):
    c = shape[1] if len(shape) > 1 else shape[0]
    x = rng.standard_normal(shape) * 2
    target = rng.integers(0, c, tshape)
    if target.size > 2:
        target.reshape(-1)[1] = -100  # one ignored position
    weight = rng.uniform(0.2, 2.0, c) if weighted else None
    kw = dict(weight=None if weight is None else pydl.tensor(weight), reduction=reduction,
              label_smoothing=eps)
    out = F.cross_entropy(t64(x, False), pydl.tensor(target), **kw)
    expected = cross_entropy_ref(x, target, weight, -100, reduction, eps)
    assert out.shape == np.shape(expected)
    assert_close(out, expected, rtol=1e-12, atol=1e-12)
    if 0 < x.size <= 60:
        assert gradcheck(lambda a: F.cross_entropy(a, pydl.tensor(target), **kw), [t64(x)])


def test_cross_entropy_custom_ignore_index_and_all_ignored(ce_path, rng):
    x = rng.standard_normal((6, 4))
    target = np.array([0, 3, 3, 1, 2, 3])
    out = F.cross_entropy(t64(x, False), pydl.tensor(target), ignore_index=3)
    assert_close(out, cross_entropy_ref(x, target, ignore_index=3), rtol=1e-12)
    assert gradcheck(lambda a: F.cross_entropy(a, pydl.tensor(target), ignore_index=3,
                                               label_smoothing=0.1), [t64(x)])
    # Every target ignored: the mean is 0 / 0 = nan (as in PyTorch), the sum 0, gradients 0.
    x_t = t64(x)
    out = F.cross_entropy(x_t, pydl.tensor(np.full(6, -100)))
    assert math.isnan(out.item())
    summed = F.cross_entropy(x_t, pydl.tensor(np.full(6, -100)), reduction="sum")
    assert summed.item() == 0.0
    summed.backward()
    assert_close(x_t.grad, np.zeros((6, 4)))


def test_cross_entropy_empty_batch(ce_path):
    x = t64(np.zeros((0, 3)))
    assert math.isnan(F.cross_entropy(x, pydl.tensor(np.zeros(0, np.int64))).item())
    out = F.cross_entropy(x, pydl.tensor(np.zeros(0, np.int64)), reduction="sum")
    assert out.item() == 0.0
    out.backward()
    assert x.grad.shape == (0, 3)


def test_cross_entropy_large_logits_are_exact(ce_path):
    x = np.array([[1e4, 1e4 - 2.0, -1e4, 0.0], [-3e4, -3e4 + 1.0, -3e4 + 0.5, -3e4 - 7.0]])
    target = np.array([1, 3])
    for dtype, rtol in ((pydl.float64, 1e-12), (pydl.float32, 1e-5)):
        xt = pydl.tensor(x, dtype=dtype, requires_grad=True)
        out = F.cross_entropy(xt, pydl.tensor(target), reduction="none", label_smoothing=0.1)
        ref = cross_entropy_ref(x, target, reduction="none", eps=0.1)
        assert np.isfinite(out._data).all()
        # Relative to each loss, i.e. ~1e-7 of 1e4 in float32.
        assert_close(out, ref, rtol=rtol, atol=0)
        out.sum().backward()
        p = np.exp(np.array([log_softmax_row(r) for r in x]))
        expected_grad = p - 0.9 * np.eye(4)[target] - 0.1 / 4
        assert_close(xt.grad, expected_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [pydl.float32, pydl.float64])
def test_cross_entropy_inf_logit_gives_nan(ce_path, dtype):
    """A row holding a +inf logit has loss NaN in PyTorch (softmax inf / inf) whatever its
    target, on every path: the array path's max shift gives inf - inf, the kernel's row
    statistics mark the row (issue #13; shifting by 0 instead gave inf, or on AVX2 in float32
    a finite ~88 from the saturating vector exp). Other rows are unaffected."""
    x = np.array([[1.0, np.inf, 2.0], [1.0, 2.0, 3.0]])
    out = F.cross_entropy(pydl.tensor(x, dtype=dtype), pydl.tensor(np.array([0, 1])),
                          reduction="none")
    assert np.isnan(out._data[0]) and np.isfinite(out._data[1])


def test_cross_entropy_float32_matches_float64_reference(ce_path, rng):
    x = rng.standard_normal((37, 19)) * 3
    target = rng.integers(0, 19, 37)
    weight = rng.uniform(0.5, 1.5, 19)
    xt = pydl.tensor(x, dtype=pydl.float32, requires_grad=True)
    out = F.cross_entropy(xt, pydl.tensor(target), weight=pydl.tensor(weight, dtype=pydl.float32),
                          label_smoothing=0.2)
    assert out.dtype == pydl.float32
    assert_close(out, cross_entropy_ref(x, target, weight, eps=0.2), rtol=1e-5, atol=1e-6)
    out.backward()
    x64 = t64(x)
    F.cross_entropy(x64, pydl.tensor(target), weight=pydl.tensor(weight),
                    label_smoothing=0.2).backward()
    assert xt.grad.dtype == pydl.float32
    assert_close(xt.grad, x64.grad._data, rtol=1e-4, atol=1e-7)


def test_cross_entropy_noncontiguous_logits_and_int32_targets(ce_path, rng):
    x = rng.standard_normal((5, 6))
    target = rng.integers(0, 6, 5).astype(np.int32)
    xin = pydl.from_numpy(noncontiguous(x))
    assert not xin.is_contiguous()
    out = F.cross_entropy(xin, pydl.tensor(target))
    assert_close(out, cross_entropy_ref(x, target), rtol=1e-12)
    xt = t64(x)
    F.cross_entropy(xt.T.T, pydl.tensor(target)).backward()
    assert xt.grad.shape == (5, 6)


def test_cross_entropy_segmentation_is_the_mean_over_pixels(ce_path, rng):
    """(N, C, H, W) logits with (N, H, W) targets: the per-pixel losses of the course's
    pixel-wise classification, averaged over all pixels."""
    x = rng.standard_normal((2, 3, 4, 5))
    target = rng.integers(0, 3, (2, 4, 5))
    per_pixel = np.zeros((2, 4, 5))
    for n in range(2):
        for h in range(4):
            for w in range(5):
                per_pixel[n, h, w] = -log_softmax_row(list(x[n, :, h, w]))[target[n, h, w]]
    assert_close(F.cross_entropy(t64(x, False), pydl.tensor(target), reduction="none"),
                 per_pixel, rtol=1e-12)
    assert_close(F.cross_entropy(t64(x, False), pydl.tensor(target)), per_pixel.mean(),
                 rtol=1e-12)


def test_cross_entropy_is_the_categorical_negative_log_likelihood(rng):
    """cross_entropy(z, y) = -log softmax(z)_y = nll_loss(log_softmax(z), y)."""
    x = rng.standard_normal((8, 6))
    target = rng.integers(0, 6, 8)
    ce = F.cross_entropy(t64(x, False), pydl.tensor(target), reduction="none")
    nll = F.nll_loss(F.log_softmax(t64(x, False), dim=1), pydl.tensor(target), reduction="none")
    assert_close(ce, nll, rtol=1e-12)
    p = np.exp(x) / np.exp(x).sum(1, keepdims=True)
    assert_close(ce, -np.log(p[np.arange(8), target]), rtol=1e-10)


# -- cross-entropy with probability targets -------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(6, 4), (4,), (2, 3, 2, 2), (0, 3)], ids=str)
def test_cross_entropy_probabilities(shape, weighted, eps, reduction, rng):
    c = shape[1] if len(shape) > 1 else shape[0]
    x = rng.standard_normal(shape)
    probs = rng.random(shape)
    probs /= probs.sum(axis=1 if len(shape) > 1 else 0, keepdims=True)
    weight = rng.uniform(0.2, 2.0, c) if weighted else None
    kw = dict(weight=None if weight is None else pydl.tensor(weight), reduction=reduction,
              label_smoothing=eps)
    out = F.cross_entropy(t64(x, False), t64(probs, False), **kw)
    expected = cross_entropy_probs_ref(x, probs, weight, reduction, eps)
    assert out.shape == np.shape(expected)
    assert_close(out, expected, rtol=1e-12, atol=1e-12)
    if 0 < x.size:
        assert gradcheck(lambda a, b: F.cross_entropy(a, b, **kw), [t64(x), t64(probs)])


# -- nll_loss -------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape,tshape", [((7, 5), (7,)), ((4,), ()), ((2, 3, 4), (2, 4)),
                                          ((0, 3), (0,))], ids=str)
def test_nll_loss(shape, tshape, weighted, reduction, rng):
    c = shape[1] if len(shape) > 1 else shape[0]
    x = rng.standard_normal(shape)
    target = rng.integers(0, c, tshape)
    if target.size > 2:
        target.reshape(-1)[0] = -100
    weight = rng.uniform(0.2, 2.0, c) if weighted else None
    kw = dict(weight=None if weight is None else pydl.tensor(weight), reduction=reduction)
    out = F.nll_loss(t64(x, False), pydl.tensor(target), **kw)
    assert_close(out, nll_ref(x, target, weight, -100, reduction), rtol=1e-12, atol=1e-12)
    if x.size:
        assert gradcheck(lambda a: F.nll_loss(a, pydl.tensor(target), **kw), [t64(x)])


# -- regression losses ----------------------------------------------------------------------------
REGRESSION = {
    "mse": (F.mse_loss, lambda a, b: (a - b) ** 2),
    "l1": (F.l1_loss, lambda a, b: abs(a - b)),
    "smooth_l1": (lambda a, b, **k: F.smooth_l1_loss(a, b, beta=0.6, **k),
                  lambda a, b: smooth_l1_el(a - b, 0.6)),
    "smooth_l1_beta0": (lambda a, b, **k: F.smooth_l1_loss(a, b, beta=0.0, **k),
                        lambda a, b: abs(a - b)),
    "huber": (lambda a, b, **k: F.huber_loss(a, b, delta=0.6, **k),
              lambda a, b: 0.6 * smooth_l1_el(a - b, 0.6)),
}


def _apart(a, b, gap=0.05):
    """Move b so that a - b avoids 0 and +-0.6 (the kinks of l1/smooth_l1/huber)."""
    d = a - b
    for k in (0.0, 0.6, -0.6):
        b = np.where(np.abs(d - k) < gap, b + 3 * gap, b)
        d = a - b
    return b


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(REGRESSION))
@pytest.mark.parametrize("shape", [(3, 4), (1,), (5,), (2, 3, 2), (0, 2)], ids=str)
def test_regression_losses(name, shape, reduction, rng):
    fn, el = REGRESSION[name]
    a = rng.standard_normal(shape)
    b = _apart(a, rng.standard_normal(shape))
    out = fn(t64(a, False), t64(b, False), reduction=reduction)
    assert_close(out, reduce_ref(pointwise_ref(el, a, b), reduction), rtol=1e-12, atol=1e-14)
    if a.size:
        assert gradcheck(lambda x, y: fn(x, y, reduction=reduction), [t64(a), t64(b)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse", "l1", "huber"])
def test_weighted_regression_losses(name, reduction, rng):
    """torch 2.x's per-element ``weight``: 'mean' divides by sum(weight) for mse/l1 and by the
    element count for huber."""
    fn, el = REGRESSION[name]
    a = rng.standard_normal((4, 3))
    b = _apart(a, rng.standard_normal((4, 3)))
    w = rng.uniform(0.1, 2.0, (4, 3))
    out = fn(t64(a, False), t64(b, False), reduction=reduction, weight=t64(w, False))
    per = pointwise_ref(el, a, b) * w
    denom = w.size if name == "huber" else w.sum()
    assert_close(out, reduce_ref(per, reduction, denom), rtol=1e-12)
    assert gradcheck(lambda x, y, z: fn(x, y, reduction=reduction, weight=z),
                     [t64(a), t64(b), t64(w)])


def test_regression_broadcast_target_warns_like_pytorch(rng):
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((4,))
    with pytest.warns(UserWarning, match="different to the input size"):
        out = F.mse_loss(t64(a, False), t64(b, False))
    assert_close(out, ((a - b) ** 2).mean())
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="does not broadcast"):
        F.l1_loss(t64(a, False), t64(np.ones(3), False))


def test_mse_is_the_gaussian_negative_log_likelihood(rng):
    """-log N(y; mu, sigma^2) = (y - mu)^2 / (2 sigma^2) + log(sigma sqrt(2 pi)): with sigma
    fixed, the NLL's mean is MSE / (2 sigma^2) plus a constant (lecture notes 3.12)."""
    mu, y, sigma = rng.standard_normal(50), rng.standard_normal(50), 0.7
    nll = np.mean([(yi - mi) ** 2 / (2 * sigma ** 2) + math.log(sigma * math.sqrt(2 * math.pi))
                   for yi, mi in zip(y, mu)])
    mse = F.mse_loss(t64(mu, False), t64(y, False)).item()
    assert_close(mse / (2 * sigma ** 2) + math.log(sigma * math.sqrt(2 * math.pi)), nll,
                 rtol=1e-12)


# -- binary cross-entropy -------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(4, 3), (1,), (7,), (0, 3)], ids=str)
def test_binary_cross_entropy(shape, weighted, reduction, rng):
    p = rng.uniform(0.05, 0.95, shape)
    t = rng.random(shape)
    w = rng.uniform(0.2, 2.0, shape[-1:]) if weighted else None
    kw = dict(weight=None if w is None else t64(w), reduction=reduction)
    out = F.binary_cross_entropy(t64(p, False), t64(t, False), **kw)
    per = pointwise_ref(bce_el, p, t) * (1 if w is None else w)
    assert_close(out, reduce_ref(per, reduction), rtol=1e-12, atol=1e-14)
    if p.size:
        assert gradcheck(lambda a, b, c: F.binary_cross_entropy(a, b, weight=c,
                                                                reduction=reduction),
                         [t64(p), t64(t), None if w is None else t64(w)])


def test_binary_cross_entropy_clamps_log_at_minus_100():
    p = t64([0.0, 1.0, 0.0, 1.0])
    t = t64([1.0, 0.0, 0.0, 1.0], False)
    out = F.binary_cross_entropy(p, t, reduction="none")
    assert_close(out, [100.0, 100.0, 0.0, 0.0])
    out.sum().backward()
    assert np.isfinite(p.grad._data).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weighted", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(4, 3), (5,), (2, 2, 3), (0, 3)], ids=str)
def test_binary_cross_entropy_with_logits(shape, weighted, pos_weighted, reduction, rng):
    x = rng.standard_normal(shape) * 3
    t = rng.random(shape)
    w = rng.uniform(0.2, 2.0, shape) if weighted else None
    pw = rng.uniform(0.5, 3.0, shape[-1:]) if pos_weighted else None
    per = pointwise_ref(lambda a, b, c: bce_logits_el(a, b, c), x, t,
                        np.ones(shape[-1:]) if pw is None else pw)
    per = per * (1 if w is None else w)

    def fn(a, b, c, d):
        return F.binary_cross_entropy_with_logits(a, b, weight=c, reduction=reduction,
                                                  pos_weight=d)

    out = fn(t64(x, False), t64(t, False), None if w is None else t64(w, False),
             None if pw is None else t64(pw, False))
    assert_close(out, reduce_ref(per, reduction), rtol=1e-12, atol=1e-14)
    if x.size:
        assert gradcheck(fn, [t64(x), t64(t), None if w is None else t64(w),
                              None if pw is None else t64(pw)])


def test_binary_cross_entropy_with_logits_is_stable():
    x = t64([-1000.0, 1000.0, -40.0, 40.0])
    t = t64([1.0, 0.0, 0.0, 1.0], False)
    out = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert_close(out, [1000.0, 1000.0, math.log1p(math.exp(-40)), math.log1p(math.exp(-40))],
                 rtol=1e-12, atol=0)
    out.sum().backward()
    assert_close(x.grad, [-1.0, 1.0, 1 / (1 + math.exp(40)), -1 / (1 + math.exp(40))],
                 rtol=1e-12)
    # The same as sigmoid followed by binary_cross_entropy where that is finite.
    z = np.linspace(-5, 5, 11)
    tt = np.linspace(0, 1, 11)
    assert_close(F.binary_cross_entropy_with_logits(t64(z, False), t64(tt, False)),
                 F.binary_cross_entropy(F.sigmoid(t64(z, False)), t64(tt, False)).item(),
                 rtol=1e-12)


# -- KL divergence --------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["sum", "none", "batchmean", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape", [(3, 4), (5,), (0, 4)], ids=str)
def test_kl_div(shape, log_target, reduction, rng):
    x = np.log(rng.dirichlet(np.ones(shape[-1]), shape[:-1])) if shape[-1] else np.zeros(shape)
    p = rng.dirichlet(np.ones(shape[-1]), shape[:-1]) if shape[-1] else np.zeros(shape)
    if p.size and not log_target:
        p.reshape(-1)[0] = 0.0  # 0 log 0 = 0
    t = np.log(p) if log_target else p
    per = pointwise_ref(lambda a, b: kl_el(a, b, log_target), x, t)
    if reduction == "batchmean":
        expected = math.fsum(per.ravel()) / shape[0] if shape[0] else float("nan")
    else:
        expected = reduce_ref(per, reduction)

    def fn(a, b):
        return F.kl_div(a, b, reduction=reduction, log_target=log_target)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reduction='mean' warns, as in PyTorch
        out = fn(t64(x, False), t64(t, False))
        assert_close(out, expected, rtol=1e-12, atol=1e-14)
        if x.size and log_target:
            assert gradcheck(fn, [t64(x), t64(t)])
        elif x.size:
            # d/dt (t log t) = log t + 1 is -inf at t = 0: check the input's gradient there, and
            # both gradients with a positive target.
            assert gradcheck(fn, [t64(x), t64(t, False)])
            assert gradcheck(fn, [t64(x), t64(np.where(p > 0, p, 0.3))])


def test_kl_div_is_the_kl_divergence_per_sample(rng):
    p = rng.dirichlet(np.ones(5), 4)
    q = rng.dirichlet(np.ones(5), 4)
    kl = np.mean([math.fsum(pi * math.log(pi / qi) for pi, qi in zip(pr, qr))
                  for pr, qr in zip(p, q)])
    out = F.kl_div(t64(np.log(q), False), t64(p, False), reduction="batchmean")
    assert_close(out, kl, rtol=1e-12)


def test_kl_div_mean_warns_like_pytorch():
    with pytest.warns(UserWarning, match="batchmean"):
        F.kl_div(t64(np.zeros((2, 2)), False), t64(np.full((2, 2), 0.5), False))


# -- reductions and legacy arguments --------------------------------------------------------------
def test_legacy_size_average_and_reduce_warn_and_map(rng):
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    cases = [(dict(size_average=False), "sum"), (dict(reduce=False), "none"),
             (dict(size_average=True, reduce=True), "mean")]
    for legacy, reduction in cases:
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
            out = F.mse_loss(t64(a, False), t64(b, False), **legacy)
        assert_close(out, F.mse_loss(t64(a, False), t64(b, False), reduction=reduction))
    with pytest.warns(UserWarning):
        module = nn.L1Loss(size_average=False)
    assert module.reduction == "sum"


@pytest.mark.parametrize("fn", [F.mse_loss, F.l1_loss, F.smooth_l1_loss,
                                F.binary_cross_entropy_with_logits])
def test_bad_reduction_raises(fn):
    with pytest.raises(ValueError, match="is not a valid value for reduction"):
        fn(t64([0.5], False), t64([0.5], False), reduction="avg")


# -- errors ---------------------------------------------------------------------------------------
def test_cross_entropy_errors(ce_path):
    x = t64(np.zeros((3, 4)), False)
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, pydl.tensor([0, 4, 1]))
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, pydl.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match="expected target of shape"):
        F.cross_entropy(x, pydl.tensor([0, 1]))
    with pytest.raises(ValueError, match="probability target must have the input's shape"):
        F.cross_entropy(x, t64(np.zeros((3, 3)), False))
    with pytest.raises(TypeError, match="class indices"):
        F.cross_entropy(x, pydl.tensor([True, False, True]))
    with pytest.raises(ValueError, match="weight tensor should be defined"):
        F.cross_entropy(x, pydl.tensor([0, 1, 2]), weight=pydl.ones(3, dtype=pydl.float64))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, pydl.tensor([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="at least one dimension"):
        F.cross_entropy(t64(1.0, False), pydl.tensor(0))
    with pytest.raises(TypeError, match="floating point"):
        F.cross_entropy(pydl.tensor([[1, 2]]), pydl.tensor([0]))
    with pytest.raises(RuntimeError, match="derivative for 'weight'"):
        F.cross_entropy(x, pydl.tensor([0, 1, 2]), weight=t64(np.ones(4)))


def test_nll_and_binary_errors():
    x = t64(np.zeros((2, 3)), False)
    with pytest.raises(RuntimeError, match="integer"):
        F.nll_loss(x, t64([0.0, 1.0], False))
    with pytest.raises(IndexError, match="out of bounds"):
        F.nll_loss(x, pydl.tensor([0, 3]))
    with pytest.raises(ValueError, match="expected target of shape"):
        F.nll_loss(x, pydl.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(t64([1.5, 0.5], False), t64([1.0, 0.0], False))
    with pytest.raises(ValueError, match="target size"):
        F.binary_cross_entropy(t64([0.5, 0.5], False), t64([1.0], False))
    with pytest.raises(ValueError, match="must be the same as input size"):
        F.binary_cross_entropy_with_logits(t64([0.5, 0.5], False), t64([1.0], False))
    with pytest.raises(ValueError, match="does not broadcast"):
        F.binary_cross_entropy_with_logits(x, t64(np.zeros((2, 3)), False),
                                           pos_weight=t64(np.ones(2), False))
    with pytest.raises(ValueError, match="same size"):
        F.mse_loss(x, x, weight=t64(np.ones(3), False))
    with pytest.raises(ValueError, match="beta"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="delta"):
        F.huber_loss(x, x, delta=0.0)
    with pytest.raises(TypeError, match="floating point"):
        F.mse_loss(pydl.tensor([1, 2]), pydl.tensor([1, 2]))


def test_cross_entropy_kernel_rejects_bad_arguments():
    from pydl import _C

    z = np.zeros((3, 4), np.float32)
    t = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="2-D"):
        _C.cross_entropy_forward(np.zeros(4, np.float32), t, None, -100, 0.0)
    with pytest.raises(ValueError, match="target shape"):
        _C.cross_entropy_forward(z, np.zeros(2, np.int64), None, -100, 0.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        _C.cross_entropy_forward(z.astype(np.int32), t, None, -100, 0.0)
    with pytest.raises(TypeError, match="integer class indices"):
        _C.cross_entropy_forward(z, t.astype(np.float32), None, -100, 0.0)
    with pytest.raises(ValueError, match="weight must have shape"):
        _C.cross_entropy_forward(z, t, np.ones(3, np.float32), -100, 0.0)
    with pytest.raises(TypeError, match="weight dtype"):
        _C.cross_entropy_forward(z, t, np.ones(4), -100, 0.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        _C.cross_entropy_forward(z, t, None, -100, 2.0)
    with pytest.raises(IndexError, match="out of bounds"):
        _C.cross_entropy_forward(z, np.array([0, 9, 0]), None, -100, 0.0)
    loss, stats, _, _ = _C.cross_entropy_forward(z, t, None, -100, 0.0)
    with pytest.raises(ValueError, match="stats shape"):
        _C.cross_entropy_backward(z, stats[:2], t, None, -100, 0.0, np.ones(1, np.float32))
    with pytest.raises(ValueError, match="coef"):
        _C.cross_entropy_backward(z, stats, t, None, -100, 0.0, np.ones(2, np.float32))


# -- modules --------------------------------------------------------------------------------------
def test_loss_modules_match_functional(rng):
    x = rng.standard_normal((5, 4))
    y = _apart(x, rng.standard_normal((5, 4)))
    p = rng.uniform(0.1, 0.9, (5, 4))
    idx = rng.integers(0, 4, 5)
    w = rng.uniform(0.5, 1.5, 4)
    X, Y, P = t64(x, False), t64(y, False), t64(p, False)
    pairs = [
        (nn.MSELoss(reduction="sum")(X, Y), F.mse_loss(X, Y, reduction="sum")),
        (nn.L1Loss()(X, Y), F.l1_loss(X, Y)),
        (nn.SmoothL1Loss(beta=0.5)(X, Y), F.smooth_l1_loss(X, Y, beta=0.5)),
        (nn.HuberLoss(delta=0.5)(X, Y), F.huber_loss(X, Y, delta=0.5)),
        (nn.BCELoss(weight=w)(P, P), F.binary_cross_entropy(P, P, weight=t64(w, False))),
        (nn.BCEWithLogitsLoss(pos_weight=w)(X, P),
         F.binary_cross_entropy_with_logits(X, P, pos_weight=t64(w, False))),
        (nn.KLDivLoss(reduction="batchmean", log_target=True)(X, Y),
         F.kl_div(X, Y, reduction="batchmean", log_target=True)),
        (nn.NLLLoss(weight=pydl.tensor(w))(X, pydl.tensor(idx)),
         F.nll_loss(X, pydl.tensor(idx), weight=pydl.tensor(w))),
        (nn.CrossEntropyLoss(weight=pydl.tensor(w), label_smoothing=0.1, ignore_index=2)(
            X, pydl.tensor(idx)),
         F.cross_entropy(X, pydl.tensor(idx), weight=pydl.tensor(w), label_smoothing=0.1,
                         ignore_index=2)),
    ]
    for module_out, functional_out in pairs:
        assert_close(module_out, functional_out, rtol=1e-14)


def test_weighted_loss_modules_keep_weight_as_buffer():
    w = pydl.tensor([1.0, 2.0, 0.5])
    ce = nn.CrossEntropyLoss(weight=w)
    assert list(ce.state_dict()) == ["weight"]
    assert ce.weight is w
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    bce = nn.BCEWithLogitsLoss(pos_weight=w)
    assert list(bce.state_dict()) == ["pos_weight"]
    ce64 = nn.CrossEntropyLoss(weight=w).double()
    assert ce64.weight.dtype == pydl.float64
    assert repr(ce) == "CrossEntropyLoss()"


def test_cross_entropy_loss_trains_a_linear_classifier(rng):
    """End to end: a few hundred gradient steps on separable data drive the loss down."""
    x = rng.standard_normal((64, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = nn.Linear(2, 2)
    loss_fn = nn.CrossEntropyLoss()
    X, Y = pydl.tensor(x, dtype=pydl.float32), pydl.tensor(y)
    first = None
    for _ in range(200):
        loss = loss_fn(model(X), Y)
        first = first if first is not None else loss.item()
        model.zero_grad()
        loss.backward()
        with pydl.no_grad():
            for prm in model.parameters():
                prm -= 0.5 * prm.grad
    assert loss.item() < 0.3 * first


def test_pointwise_losses_accept_noncontiguous_inputs(rng):
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    p, t = rng.uniform(0.1, 0.9, (5, 7)), rng.random((5, 7))
    A, B = pydl.from_numpy(noncontiguous(a)), pydl.from_numpy(noncontiguous(b))
    P, T = pydl.from_numpy(noncontiguous(p)), pydl.from_numpy(noncontiguous(t))
    assert not A.is_contiguous()
    assert_close(F.mse_loss(A, B), np.mean((a - b) ** 2), rtol=1e-12)
    assert_close(F.smooth_l1_loss(A, B, reduction="sum"),
                 pointwise_ref(lambda u, v: smooth_l1_el(u - v, 1.0), a, b).sum(), rtol=1e-12)
    assert_close(F.binary_cross_entropy(P, T), pointwise_ref(bce_el, p, t).mean(), rtol=1e-12)
    assert_close(F.binary_cross_entropy_with_logits(A, T),
                 pointwise_ref(bce_logits_el, a, t).mean(), rtol=1e-12)
    assert_close(F.kl_div(A, T, reduction="sum"),
                 pointwise_ref(lambda u, v: kl_el(u, v, False), a, t).sum(), rtol=1e-12)
