"""Fuzz: the native elementwise engine (broadcasting, strided and negative-stride operands,
Python scalars) and the reduction kernels (any axes, keepdim) against float64 NumPy; shapes up
to ~20K elements so that the native paths (from 1K/4K/64K elements) run, not only NumPy's."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # fuzz_common (importlib mode)
from fuzz_common import fuzz, strided  # noqa: E402

import pydl

shape = st.lists(st.integers(1, 24), min_size=0, max_size=4).filter(
    lambda s: int(np.prod(s)) <= 20_000)


def broadcast_partner(s, mask):
    return [1 if m else d for d, m in zip(s, mask)]


BINARY = {"add": (lambda a, b: a + b, np.add), "sub": (lambda a, b: a - b, np.subtract),
          "mul": (lambda a, b: a * b, np.multiply), "div": (lambda a, b: a / b, np.divide),
          "maximum": (pydl.maximum, np.maximum), "minimum": (pydl.minimum, np.minimum)}
UNARY = {"exp": (pydl.exp, np.exp), "tanh": (pydl.tanh, np.tanh),
         "sigmoid": (pydl.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
         "relu": (pydl.relu, lambda x: np.maximum(x, 0)), "abs": (pydl.abs, np.abs),
         "sqrt_abs": (lambda t: pydl.sqrt(pydl.abs(t)), lambda x: np.sqrt(np.abs(x)))}


@fuzz
@given(shape, st.lists(st.booleans(), min_size=4, max_size=4), st.sampled_from(sorted(BINARY)),
       st.integers(0, 3), st.integers(0, 3), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2 ** 16))
def test_binary_broadcast_matches_numpy(s, mask, op, la, lb, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(s).astype(dtype)
    b = (rng.standard_normal(broadcast_partner(s, mask)) + 3).astype(dtype)
    fn, ref = BINARY[op]
    out = fn(pydl.tensor(strided(a, la)), pydl.tensor(strided(b, lb)))
    expect = ref(a.astype(np.float64), b.astype(np.float64))
    assert out.shape == expect.shape and out.dtype == dtype
    t = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(out.numpy(), expect, **t)
    # a Python scalar on either side
    np.testing.assert_allclose(fn(pydl.tensor(a), 1.5).numpy(), ref(a.astype(np.float64), 1.5),
                               **t)


@fuzz
@given(shape, st.sampled_from(sorted(UNARY)), st.integers(0, 3),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2 ** 16))
def test_unary_matches_numpy(s, op, layout, dtype, seed):
    a = (np.random.default_rng(seed).standard_normal(s) * 4).astype(dtype)
    fn, ref = UNARY[op]
    out = fn(pydl.tensor(strided(a, layout)))
    t = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(out.numpy(), ref(a.astype(np.float64)), **t)


REDUCE = {"sum": np.sum, "mean": np.mean, "amax": np.max, "amin": np.min}


@fuzz
@given(shape.filter(lambda s: len(s) >= 1), st.data(), st.sampled_from(sorted(REDUCE)),
       st.booleans(), st.integers(0, 3), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2 ** 16))
def test_reductions_match_numpy(s, data, op, keepdim, layout, dtype, seed):
    a = np.random.default_rng(seed).standard_normal(s).astype(dtype)
    axes = data.draw(st.lists(st.integers(-len(s), len(s) - 1), min_size=1, max_size=len(s),
                              unique_by=lambda i: i % len(s)))
    t = pydl.tensor(strided(a, layout))
    out = getattr(pydl, op)(t, dim=tuple(axes), keepdim=keepdim)
    expect = REDUCE[op](a.astype(np.float64), axis=tuple(axes), keepdims=keepdim)
    tl = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.numpy(), expect, **tl)


@fuzz
@given(shape.filter(lambda s: len(s) >= 1), st.booleans(), st.integers(0, 3),
       st.integers(0, 2 ** 16))
def test_softmax_and_argmax_match_numpy(s, log, layout, seed):
    a = np.random.default_rng(seed).standard_normal(s) * 5
    t = pydl.tensor(strided(a, layout))
    out = (pydl.log_softmax if log else pydl.softmax)(t, dim=-1)
    z = a - a.max(-1, keepdims=True)
    sm = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    np.testing.assert_allclose(out.numpy(), np.log(sm) if log else sm, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(pydl.argmax(t, dim=-1).numpy(), a.argmax(-1))


def test_reduction_hostile_axes_raise():
    t = pydl.randn(3, 4)
    for axes in [(2,), (-3,), (0, 0), (2 ** 63,)]:
        with pytest.raises((IndexError, ValueError, RuntimeError, TypeError, OverflowError)):
            pydl.sum(t, dim=axes)
