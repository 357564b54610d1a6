"""Fuzz: batch norm (training and eval, 2-d to 5-d inputs, affine or not, any layout) and
group norm against float64 NumPy references, forward and gradients; wrong shapes raise."""
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

bn_case = st.fixed_dictionaries(dict(
    N=st.integers(1, 5), C=st.integers(1, 6), spatial=st.lists(st.integers(1, 6), max_size=3),
    training=st.booleans(), affine=st.booleans(), eps=st.sampled_from([1e-5, 1e-3, 0.1]),
    dtype=st.sampled_from([np.float32, np.float64]), layout=st.integers(0, 3),
    seed=st.integers(0, 2 ** 16)))


@fuzz
@given(bn_case)
def test_batch_norm_matches_reference(c):
    rng = np.random.default_rng(c["seed"])
    shape = (c["N"], c["C"], *c["spatial"])
    if c["training"] and int(np.prod(shape)) // c["C"] == 1:
        return  # PyTorch refuses one value per channel in training; checked elsewhere
    x = (rng.standard_normal(shape) * 3 + 1).astype(c["dtype"])
    w = rng.standard_normal(c["C"]).astype(c["dtype"]) if c["affine"] else None
    b = rng.standard_normal(c["C"]).astype(c["dtype"]) if c["affine"] else None
    rm = rng.standard_normal(c["C"]).astype(c["dtype"])
    rv = (rng.random(c["C"]) + 0.5).astype(c["dtype"])
    xt = pydl.tensor(strided(x, c["layout"]), requires_grad=True)
    wt = None if w is None else pydl.tensor(w, requires_grad=True)
    bt = None if b is None else pydl.tensor(b, requires_grad=True)
    y = F.batch_norm(xt, pydl.tensor(rm.copy()), pydl.tensor(rv.copy()), wt, bt,
                     training=c["training"], momentum=0.1, eps=c["eps"])
    axes = (0,) + tuple(range(2, len(shape)))
    bshape = (1, -1) + (1,) * len(c["spatial"])
    x64 = x.astype(np.float64)
    if c["training"]:
        mean, var = x64.mean(axes), x64.var(axes)
    else:
        mean, var = rm.astype(np.float64), rv.astype(np.float64)
    inv = 1 / np.sqrt(var + c["eps"])
    xhat = (x64 - mean.reshape(bshape)) * inv.reshape(bshape)
    g = 1.0 if w is None else w.astype(np.float64).reshape(bshape)
    ref = xhat * g + (0.0 if b is None else b.astype(np.float64).reshape(bshape))
    t = dict(rtol=1e-3, atol=1e-3) if c["dtype"] == np.float32 else tol(np.float64)
    np.testing.assert_allclose(y.detach().numpy(), ref, **t)
    dy = rng.standard_normal(shape)
    (y * pydl.tensor(dy.astype(c["dtype"]))).sum().backward()
    m = x64.size / c["C"]
    gdy = dy * g
    if c["training"]:
        dx = inv.reshape(bshape) * (gdy - gdy.mean(axes).reshape(bshape)
                                    - xhat * (gdy * xhat).mean(axes).reshape(bshape))
    else:
        dx = gdy * inv.reshape(bshape)
    del m
    np.testing.assert_allclose(xt.grad.numpy(), dx, **t)
    if w is not None:
        np.testing.assert_allclose(wt.grad.numpy(), (dy * xhat).sum(axes), **t)
        np.testing.assert_allclose(bt.grad.numpy(), dy.sum(axes), **t)


@fuzz
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 20),
       st.booleans(), st.integers(0, 2 ** 16))
def test_group_norm_matches_reference(N, G, Cg, L, affine, seed):
    rng = np.random.default_rng(seed)
    C = G * Cg
    x = rng.standard_normal((N, C, L)) * 2 + 0.5
    w = rng.standard_normal(C) if affine else None
    b = rng.standard_normal(C) if affine else None
    y = F.group_norm(pydl.tensor(x), G, None if w is None else pydl.tensor(w),
                     None if b is None else pydl.tensor(b), eps=1e-5)
    xg = x.reshape(N, G, -1)
    ref = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + 1e-5))
    ref = ref.reshape(x.shape)
    if affine:
        ref = ref * w[None, :, None] + b[None, :, None]
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-9, atol=1e-9)


hostile = st.sampled_from([0, -1, -(2 ** 63), 2 ** 62, 2 ** 63 - 1]) | st.integers(0, 5)


@fuzz
@given(st.lists(hostile, min_size=4, max_size=4), st.integers(0, 4), st.floats(allow_nan=True))
def test_norm_bindings_hostile_arguments_raise_cleanly(v, which, eps):
    x = np.ones((2, 3, 4), np.float32)
    c3 = np.ones(3, np.float32)
    bad = [np.ones(2, np.float32), np.ones(3, np.float64), np.ones((3, 1), np.float32),
           np.ones(3, np.int32), c3][which]
    calls = [
        lambda: _C.batch_norm_forward_train(x, bad, c3, eps),
        lambda: _C.batch_norm_forward_eval(x, c3, bad, None, None, eps),
        lambda: _C.batch_norm_backward(x, x, bad, c3, None, True, True, True, True),
        lambda: _C.group_norm_forward(x, None, None, v[0], v[1], v[2], v[3], eps),
        lambda: _C.group_norm_backward(x, x, np.ones(2, np.float32), np.ones(2, np.float32),
                                       None, v[0], v[1], v[2], v[3], True, True, True),
    ]
    for call in calls:
        try:
            call()
        except CLEAN_ERRORS:
            pass
