"""Fuzz: the fused optimizer steps (pydl._C.*_step) against float64 NumPy references of one step
(PyTorch's formulas), over lists of parameters of random sizes (0 to ~20K, so both the
threaded and the single-block paths run) and hyper-parameters; hostile lists (lengths, shapes,
dtypes, layouts, aliasing) raise before anything is written."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # fuzz_common (importlib mode)
from fuzz_common import CLEAN_ERRORS, fuzz  # noqa: E402

from pydl import _C

sizes = st.lists(st.integers(0, 20_000) | st.integers(0, 40), min_size=1, max_size=4)


def _tol(dtype):
    return dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


@fuzz
@given(sizes, st.sampled_from([np.float32, np.float64]), st.floats(0.0, 0.99),
       st.sampled_from([0.0, 0.1]), st.booleans(), st.booleans(), st.floats(0.0, 0.5),
       st.integers(0, 2 ** 16))
def test_sgd_step_matches_reference(ns, dtype, momentum, wd, nesterov, maximize, dampening,
                                    seed):
    rng = np.random.default_rng(seed)
    if nesterov and (momentum == 0 or dampening != 0):
        dampening = 0.0
        momentum = momentum or 0.5
    p = [rng.standard_normal(n).astype(dtype) for n in ns]
    g = [rng.standard_normal(n).astype(dtype) for n in ns]
    buf = [rng.standard_normal(n).astype(dtype) for n in ns]
    init = [bool(i % 2) for i in range(len(ns))]
    ref_p = []
    for pi, gi, bi, first in zip(p, g, buf, init):
        pi, gi, bi = pi.astype(np.float64), gi.astype(np.float64), bi.astype(np.float64)
        d = -gi if maximize else gi
        d = d + wd * pi
        if momentum:
            bi = d.copy() if first else momentum * bi + (1 - dampening) * d
            d = d + momentum * bi if nesterov else bi
        ref_p.append(pi - 0.1 * d)
    _C.sgd_step(p, g, buf, init, lr=0.1, momentum=momentum, dampening=dampening,
                weight_decay=wd, nesterov=nesterov, maximize=maximize)
    for got, want in zip(p, ref_p):
        np.testing.assert_allclose(got, want, **_tol(dtype))


@fuzz
@given(sizes, st.sampled_from([np.float32, np.float64]), st.booleans(), st.booleans(),
       st.booleans(), st.sampled_from([0.0, 0.01]), st.integers(1, 5), st.integers(0, 2 ** 16))
def test_adam_step_matches_reference(ns, dtype, amsgrad, maximize, decoupled, wd, step, seed):
    rng = np.random.default_rng(seed)
    lr, b1, b2, eps = 1e-2, 0.9, 0.999, 1e-8
    p = [rng.standard_normal(n).astype(dtype) for n in ns]
    g = [rng.standard_normal(n).astype(dtype) for n in ns]
    m = [rng.standard_normal(n).astype(dtype) * 0.1 for n in ns]
    v = [rng.random(n).astype(dtype) * 0.1 for n in ns]
    vmax = [vi + rng.random(n).astype(dtype) * 0.01 for vi, n in zip(v, ns)]
    want = []
    for pi, gi, mi, vi, wi in zip(p, g, m, v, vmax):
        pi, gi, mi, vi, wi = (a.astype(np.float64) for a in (pi, gi, mi, vi, wi))
        gi = -gi if maximize else gi
        if wd and decoupled:
            pi = pi * (1 - lr * wd)
        elif wd:
            gi = gi + wd * pi
        mi = b1 * mi + (1 - b1) * gi
        vi = b2 * vi + (1 - b2) * gi * gi
        denom_v = np.maximum(wi, vi) if amsgrad else vi
        bc1, bc2 = 1 - b1 ** step, 1 - b2 ** step
        want.append(pi - lr / bc1 * mi / (np.sqrt(denom_v) / np.sqrt(bc2) + eps))
    _C.adam_step(p, g, m, v, vmax if amsgrad else [], [float(step)] * len(ns), lr=lr, beta1=b1,
                 beta2=b2, eps=eps, weight_decay=wd, amsgrad=amsgrad, maximize=maximize,
                 decoupled_weight_decay=decoupled)
    for got, w in zip(p, want):
        np.testing.assert_allclose(got, w, **_tol(dtype))


@fuzz
@given(sizes, st.integers(0, 7), st.integers(0, 2 ** 16))
def test_optimizer_hostile_lists_raise_before_writing(ns, which, seed):
    rng = np.random.default_rng(seed)
    p = [rng.standard_normal(n).astype(np.float32) for n in ns]
    g = [np.ones(n, np.float32) for n in ns]
    m = [np.zeros(n, np.float32) for n in ns]
    v = [np.zeros(n, np.float32) for n in ns]
    before = [a.copy() for a in p]
    big = np.zeros(2 * max(ns) + 2, np.float32)
    if which == 0:
        g = g[:-1]  # length mismatch
    elif which == 1:
        g[0] = np.ones(ns[0] + 1, np.float32)  # shape mismatch
    elif which == 2:
        m[-1] = m[-1].astype(np.float64)  # dtype mismatch
    elif which == 3:
        p[0] = big[: 2 * ns[0]: 2] if ns[0] else p[0]  # non-contiguous
        before[0] = p[0].copy()
    elif which == 4:
        p[0].flags.writeable = False  # read-only
    elif which == 5:
        p.append(p[0])  # the same array twice
        for lst in (g, m, v):
            lst.append(np.zeros(ns[0], np.float32))
        before.append(p[0].copy())
    elif which == 6:
        v[0] = p[0]  # state aliases a parameter
    else:
        p[0] = np.zeros(ns[0], np.int32)  # not a float array
        before[0] = p[0].copy()
    args = dict(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False,
                maximize=False, decoupled_weight_decay=False)
    try:
        _C.adam_step(p, g, m, v, [], [1.0] * len(p), **args)
    except CLEAN_ERRORS:
        for a, b in zip(p, before):
            np.testing.assert_array_equal(a, b)
        return
    # Accepted only where nothing was actually wrong (empty arrays overlap nothing).
    assert which in (3, 5, 6) and ns[0] == 0


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_clip_utilities_refuse_aliasing(n):
    a = np.ones(max(n, 1), np.float32)
    with pytest.raises(ValueError, match="share memory"):
        _C.scale_([a, a], 0.5)
    with pytest.raises(ValueError, match="share memory"):
        _C.clamp_([a, a[: max(n, 1) // 2 + 1]], -1.0, 1.0)
