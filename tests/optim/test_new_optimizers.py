"""Adadelta, Adamax, NAdam, RAdam: trajectories against float64 NumPy references written here
from the papers' / torch.optim docs' algorithms (one parameter at a time), every option, AVX2
and portable kernels, float32, zero-size and odd sizes, skipped gradients, state_dict
round trips and argument errors."""
import math

import numpy as np
import pytest

import pydl
from pydl import nn, optim


def adadelta_ref(p, g, st, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    st.setdefault("sq", np.zeros_like(p))
    st.setdefault("acc", np.zeros_like(p))
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    st["sq"] = rho * st["sq"] + (1 - rho) * g * g
    delta = np.sqrt(st["acc"] + eps) / np.sqrt(st["sq"] + eps) * g
    st["acc"] = rho * st["acc"] + (1 - rho) * delta * delta
    return p - lr * delta


def adamax_ref(p, g, st, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
               maximize=False):
    b1, b2 = betas
    st["t"] = st.get("t", 0) + 1
    st.setdefault("m", np.zeros_like(p))
    st.setdefault("u", np.zeros_like(p))
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    st["m"] = b1 * st["m"] + (1 - b1) * g
    st["u"] = np.maximum(b2 * st["u"], np.abs(g) + eps)
    return p - lr / (1 - b1 ** st["t"]) * st["m"] / st["u"]


def nadam_ref(p, g, st, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              momentum_decay=4e-3, decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    t = st["t"] = st.get("t", 0) + 1
    st.setdefault("m", np.zeros_like(p))
    st.setdefault("v", np.zeros_like(p))
    g = -g if maximize else g
    if weight_decay:
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    st["P"] = st.get("P", 1.0) * mu
    st["m"] = b1 * st["m"] + (1 - b1) * g
    st["v"] = b2 * st["v"] + (1 - b2) * g * g
    d = np.sqrt(st["v"] / (1 - b2 ** t)) + eps
    return p - lr * (1 - mu) / (1 - st["P"]) * g / d - lr * mu_next / (1 - st["P"] * mu_next) \
        * st["m"] / d


def radam_ref(p, g, st, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              decoupled_weight_decay=False, maximize=False):
    b1, b2 = betas
    t = st["t"] = st.get("t", 0) + 1
    st.setdefault("m", np.zeros_like(p))
    st.setdefault("v", np.zeros_like(p))
    g = -g if maximize else g
    if weight_decay:
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    st["m"] = b1 * st["m"] + (1 - b1) * g
    st["v"] = b2 * st["v"] + (1 - b2) * g * g
    m_hat = st["m"] / (1 - b1 ** t)
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if rho_t > 5:
        r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return p - lr * m_hat * math.sqrt(1 - b2 ** t) / (np.sqrt(st["v"]) + eps) * r
    return p - lr * m_hat


REFS = {"Adadelta": adadelta_ref, "Adamax": adamax_ref, "NAdam": nadam_ref, "RAdam": radam_ref}

CASES = [
    ("Adadelta", {}),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True)),
    ("Adamax", {}),
    ("Adamax", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05, maximize=True)),
    ("NAdam", {}),
    ("NAdam", dict(lr=0.01, betas=(0.85, 0.99), weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", {}),
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.2, decoupled_weight_decay=True, maximize=True)),
]
# 1, primes, empty, 0-d, and > 2 * 32768 elements in all (two threads split inside a tensor).
SHAPES = [(3, 5), (7,), (1,), (0, 4), (), (2, 3, 11), (40013,)]
SIMD_PATHS = ["portable"] + (["avx2+fma"] if pydl._C.cpu_supports_avx2_fma() else [])


@pytest.fixture(params=SIMD_PATHS)
def simd_path(request):
    pydl._C.set_simd_path(request.param)
    yield request.param
    pydl._C.set_simd_path("auto")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_matches_numpy_reference(name, kwargs, dtype, simd_path):
    rng = np.random.default_rng(7)
    init = [rng.standard_normal(s) for s in SHAPES]
    params = [nn.Parameter(pydl.tensor(a.astype(dtype))) for a in init]
    opt = getattr(optim, name)(params, **kwargs)
    ref = [a.copy() for a in init]
    states = [{} for _ in init]
    for step in range(20):
        grads = [rng.standard_normal(s) for s in SHAPES]
        skip = step % 6 == 2
        for k, (p, g) in enumerate(zip(params, grads)):
            p.grad = None if (skip and k == 1) else pydl.tensor(g.astype(dtype))
            if not (skip and k == 1):
                ref[k] = REFS[name](ref[k], g.astype(dtype).astype(np.float64), states[k],
                                    **kwargs)
        opt.step()
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    for p, r in zip(params, ref):
        assert p.dtype == dtype
        np.testing.assert_allclose(p._data, r, **tol)


@pytest.mark.parametrize("name", list(REFS))
def test_state_dict_round_trip_continues_the_same(name):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 3))
    p1, p2 = nn.Parameter(pydl.tensor(a.copy())), nn.Parameter(pydl.tensor(a.copy()))
    o1 = getattr(optim, name)([p1], lr=0.01)
    grads = [rng.standard_normal((4, 3)) for _ in range(6)]
    for g in grads[:3]:
        p1.grad = pydl.tensor(g)
        o1.step()
    p2._data[...] = p1._data
    o2 = getattr(optim, name)([p2], lr=0.01)
    o2.load_state_dict(o1.state_dict())
    for g in grads[3:]:
        p1.grad, p2.grad = pydl.tensor(g), pydl.tensor(g)
        o1.step()
        o2.step()
    np.testing.assert_array_equal(p1._data, p2._data)
    keys = {"Adadelta": {"step", "square_avg", "acc_delta"},
            "Adamax": {"step", "exp_avg", "exp_inf"},
            "NAdam": {"step", "mu_product", "exp_avg", "exp_avg_sq"},
            "RAdam": {"step", "exp_avg", "exp_avg_sq"}}[name]
    assert set(o1.state_dict()["state"][0]) == keys


def test_defaults_are_torchs():
    p = [nn.Parameter(pydl.zeros(2))]
    d = optim.Adadelta(p).defaults
    assert (d["lr"], d["rho"], d["eps"], d["weight_decay"]) == (1.0, 0.9, 1e-6, 0)
    d = optim.Adamax(p).defaults
    assert (d["lr"], d["betas"], d["eps"], d["weight_decay"]) == (2e-3, (0.9, 0.999), 1e-8, 0)
    d = optim.NAdam(p).defaults
    assert (d["lr"], d["betas"], d["eps"], d["momentum_decay"], d["decoupled_weight_decay"]) == \
        (2e-3, (0.9, 0.999), 1e-8, 4e-3, False)
    d = optim.RAdam(p).defaults
    assert (d["lr"], d["betas"], d["eps"], d["decoupled_weight_decay"]) == \
        (1e-3, (0.9, 0.999), 1e-8, False)


def test_argument_errors():
    p = [nn.Parameter(pydl.zeros(2))]
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.Adamax(p, lr=-1)
    with pytest.raises(ValueError, match="Invalid rho value: 1.5"):
        optim.Adadelta(p, rho=1.5)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        optim.NAdam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Invalid momentum_decay value: -0.1"):
        optim.NAdam(p, momentum_decay=-0.1)
    with pytest.raises(ValueError, match="Invalid epsilon value: -1"):
        optim.RAdam(p, eps=-1)
    with pytest.raises(ValueError, match="Invalid weight_decay value: -0.5"):
        optim.Adadelta(p, weight_decay=-0.5)


def test_kernel_argument_errors():
    a = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match="exp_infs has 0 arrays but params has 1"):
        pydl._C.adamax_step([a], [a], [a.copy()], [], [1.0], lr=0.1, beta1=0.9, beta2=0.9,
                            eps=1e-8, weight_decay=0.0, maximize=False)
    with pytest.raises(ValueError, match="steps\\[0\\] is 0"):
        pydl._C.radam_step([a], [a.copy()], [a.copy()], [a.copy()], [0.0], lr=0.1, beta1=0.9,
                           beta2=0.9, eps=1e-8, weight_decay=0.0, maximize=False,
                           decoupled_weight_decay=False)
    with pytest.raises(TypeError, match="float32 or float64"):
        i = np.zeros(3, dtype=np.int64)
        pydl._C.adadelta_step([i], [i], [i], [i], lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0,
                              maximize=False)
