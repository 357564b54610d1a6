"""Optimizer state buffers carved from one allocation per step (Optimizer._zeros_states): each
buffer is its own C-contiguous, 64-byte aligned, non-overlapping view; Adam (with amsgrad) and
SGD with momentum still follow the float64 NumPy references over mixed shapes (primes, 1,
zero-size), with parameters that gain a gradient late, and state_dict round trips store each
buffer alone."""
import importlib.util
import pathlib

import numpy as np
import pytest

import pydl
from pydl import nn, optim

_spec = importlib.util.spec_from_file_location(
    "optim_reference", pathlib.Path(__file__).with_name("optim_reference.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

SHAPES = [(7, 13), (1,), (0, 3), (31,), (5, 1, 3), (257,)]


def _params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _check_layout(buffers, params):
    spans = []
    for b, p in zip(buffers, params):
        arr = b._data
        assert arr.shape == tuple(p.shape) and arr.dtype == p._data.dtype
        assert arr.flags.c_contiguous and arr.flags.writeable
        if arr.size:
            assert arr.ctypes.data % 64 == 0
            spans.append((arr.ctypes.data, arr.ctypes.data + arr.nbytes))
    spans.sort()
    for (_, hi), (lo, _) in zip(spans, spans[1:]):
        assert hi <= lo, "two state buffers overlap"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_state_arena_matches_reference(dtype, amsgrad):
    init = _params(dtype)
    params = [nn.Parameter(pydl.tensor(a.copy())) for a in init]
    opt = optim.Adam(params, lr=1e-2, amsgrad=amsgrad, weight_decay=0.1)
    ref_p = [a.astype(np.float64) for a in init]
    ref_s = [{} for _ in init]
    rng = np.random.default_rng(1)
    for step in range(6):
        # Parameters 2 and 4 get no gradient on the first two steps: their state is created
        # later, in a second allocation.
        active = [i for i in range(len(params)) if step >= 2 or i not in (2, 4)]
        for i, p in enumerate(params):
            p.grad = None
        for i in active:
            g = rng.standard_normal(SHAPES[i]).astype(dtype)
            params[i].grad = pydl.tensor(g)
            ref_p[i] = ref.adam(ref_p[i], g.astype(np.float64), ref_s[i], lr=1e-2,
                                amsgrad=amsgrad, weight_decay=0.1)
        opt.step()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for p, r in zip(params, ref_p):
        np.testing.assert_allclose(p._data, r, rtol=tol, atol=tol)
    for key in ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else []):
        _check_layout([opt.state[p][key] for p in params], params)
    for p, s in zip(params, ref_s):
        np.testing.assert_allclose(opt.state[p]["exp_avg"]._data, s["m"], rtol=tol, atol=tol)
        np.testing.assert_allclose(opt.state[p]["exp_avg_sq"]._data, s["v"], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_state_arena_matches_reference(dtype, nesterov):
    init = _params(dtype, seed=2)
    params = [nn.Parameter(pydl.tensor(a.copy())) for a in init]
    opt = optim.SGD(params, lr=0.05, momentum=0.9, nesterov=nesterov)
    ref_p = [a.astype(np.float64) for a in init]
    ref_s = [{} for _ in init]
    rng = np.random.default_rng(3)
    for step in range(5):
        active = [i for i in range(len(params)) if step >= 1 or i % 2 == 0]
        for p in params:
            p.grad = None
        for i in active:
            g = rng.standard_normal(SHAPES[i]).astype(dtype)
            params[i].grad = pydl.tensor(g)
            ref_p[i] = ref.sgd(ref_p[i], g.astype(np.float64), ref_s[i], lr=0.05, momentum=0.9,
                               nesterov=nesterov)
        opt.step()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for p, r, s in zip(params, ref_p, ref_s):
        np.testing.assert_allclose(p._data, r, rtol=tol, atol=tol)
        np.testing.assert_allclose(opt.state[p]["momentum_buffer"]._data, s["buf"], rtol=tol,
                                   atol=tol)
    _check_layout([opt.state[p]["momentum_buffer"] for p in params], params)


def test_zeros_states_mixed_dtypes_fall_back_to_separate_buffers():
    params = [nn.Parameter(pydl.tensor(np.ones(3, np.float32))),
              nn.Parameter(pydl.tensor(np.ones((2, 2), np.float64)))]
    opt = optim.SGD(params, lr=0.1)
    bufs = opt._zeros_states(params, value=0.5)
    assert [b._data.dtype for b in bufs] == [np.float32, np.float64]
    assert all((b._data == 0.5).all() for b in bufs)
    assert opt._zeros_states([]) == []


def test_state_dict_round_trip_keeps_each_buffer_alone(tmp_path):
    params = [nn.Parameter(pydl.tensor(a)) for a in _params(np.float32)]
    opt = optim.Adam(params, lr=1e-3)
    for p in params:
        p.grad = pydl.ones_like(p)
    opt.step()
    path = tmp_path / "opt.pt"
    pydl.save(opt.state_dict(), path)
    loaded = pydl.load(path)
    for i, p in enumerate(params):
        saved = loaded["state"][i]["exp_avg"]
        assert tuple(saved.shape) == tuple(p.shape)
        np.testing.assert_array_equal(np.asarray(saved._data), opt.state[p]["exp_avg"]._data)
    opt2 = optim.Adam(params, lr=1e-3)
    opt2.load_state_dict(loaded)
    for p in params:
        np.testing.assert_array_equal(opt2.state[p]["exp_avg_sq"]._data,
                                      opt.state[p]["exp_avg_sq"]._data)
    # Writing one buffer leaves its neighbours in the allocation untouched.
    before = [opt.state[p]["exp_avg"]._data.copy() for p in params]
    opt.state[params[0]]["exp_avg"]._data[...] = 7.0
    for p, b in zip(params[1:], before[1:]):
        np.testing.assert_array_equal(opt.state[p]["exp_avg"]._data, b)
