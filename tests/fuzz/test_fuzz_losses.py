"""Fuzz: cross_entropy / nll_loss with hostile index arrays (out of range, negative, the ignore
index, int64 extremes, every integer dtype) and label smoothing / class weights, against a
float64 NumPy reference; invalid targets raise IndexError/RuntimeError, never a wrong number."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # fuzz_common (importlib mode)
from fuzz_common import fuzz  # noqa: E402

import pydl
import pydl.nn.functional as F
from pydl import _C

HOSTILE = [-(2 ** 63), -101, -100, -1, 2 ** 31, 2 ** 62, 2 ** 63 - 1]


def ce_ref(z, t, weight, ignore, eps, reduction):
    z = z.astype(np.float64)
    M, C = z.shape
    lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    logp = z - lse[:, None]
    w = np.ones(C) if weight is None else weight.astype(np.float64)
    valid = t != ignore
    tc = np.where(valid, t, 0)
    nll = -logp[np.arange(M), tc] * w[tc] * valid
    smooth = -(logp * w[None]).sum(1) / C * valid
    loss = (1 - eps) * nll + eps * smooth
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (w[tc] * valid).sum()


@fuzz
@given(st.integers(1, 40), st.integers(1, 9), st.data(), st.sampled_from([-100, 0, 3]),
       st.sampled_from([0.0, 0.1]), st.booleans(), st.sampled_from(["mean", "sum", "none"]),
       st.sampled_from([np.int64, np.int32, np.int16, np.uint8]),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2 ** 16))
def test_cross_entropy_hostile_targets(M, C, data, ignore, eps, weighted, reduction, tdtype,
                                       dtype, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((M, C)).astype(dtype)
    info = np.iinfo(tdtype)
    pool = [v for v in HOSTILE + list(range(C)) + [ignore] if info.min <= v <= info.max]
    t = np.array(data.draw(st.lists(st.sampled_from(pool), min_size=M, max_size=M)), tdtype)
    w = (rng.random(C) + 0.5).astype(dtype) if weighted else None
    t64 = t.astype(np.int64)
    bad = (t64 != ignore) & ((t64 < 0) | (t64 >= C))
    call = lambda: F.cross_entropy(pydl.tensor(z), pydl.tensor(t),  # noqa: E731
                                   None if w is None else pydl.tensor(w), ignore_index=ignore,
                                   reduction=reduction, label_smoothing=eps)
    if bad.any():
        with pytest.raises((IndexError, RuntimeError)):
            call()
        with pytest.raises((IndexError, RuntimeError)):
            F.nll_loss(F.log_softmax(pydl.tensor(z), dim=1), pydl.tensor(t), ignore_index=ignore)
        return
    out = call().numpy()
    ref = ce_ref(z, t64, w, ignore, eps, reduction)
    t_ = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)
    if reduction == "mean" and not (t64 != ignore).any():
        assert np.isnan(out)
    else:
        np.testing.assert_allclose(out, ref, **t_)


@fuzz
@given(st.integers(1, 30), st.integers(1, 8), st.lists(st.sampled_from(HOSTILE + [0, 1, 2]),
                                                     min_size=1, max_size=30),
       st.integers(-200, 200), st.integers(0, 2 ** 16))
def test_cross_entropy_kernels_hostile_index_arrays(M, C, vals, ignore, seed):
    """The C++ kernels directly: any int64 target either is counted, ignored, or raises."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((M, C)).astype(np.float32)
    t = np.resize(np.array(vals, np.int64), M)
    ok = (t == ignore) | ((t >= 0) & (t < C))
    try:
        loss, stats, lsum, wsum = _C.cross_entropy_forward(z, t, None, ignore, 0.0)
    except IndexError:
        assert not ok.all()
        return
    assert ok.all()
    np.testing.assert_allclose(loss, ce_ref(z, t, None, ignore, 0.0, "none"), rtol=1e-5,
                               atol=1e-5)
    dz = _C.cross_entropy_backward(z, stats, t, None, ignore, 0.0, np.ones(1, np.float32))
    assert dz.shape == z.shape and np.isfinite(dz).all()
    with pytest.raises((ValueError, TypeError)):
        _C.cross_entropy_backward(z, stats[: max(M - 1, 0)], t, None, ignore, 0.0,
                                  np.ones(1, np.float32))


@pytest.mark.parametrize("dtype", [np.uint64])
def test_uint64_targets_refused(dtype):
    with pytest.raises(RuntimeError, match="UInt64"):
        F.cross_entropy(pydl.randn(2, 3), pydl.tensor(np.array([0, 2 ** 64 - 100], dtype)))
