"""The fused multi-tensor kernels of pydl._C (csrc/optim.cpp) called directly: every kernel
against the float64 NumPy references over many steps, on lists whose sizes make the thread split
cross tensor boundaries, on both SIMD paths; and every argument check."""
import importlib.util
import math
import pathlib

import numpy as np
import pytest

import pydl
from pydl import _C

# The float64 NumPy references live beside this file (pytest runs with --import-mode=importlib,
# which puts no test folder on sys.path).
_spec = importlib.util.spec_from_file_location(
    "optim_reference", pathlib.Path(__file__).with_name("optim_reference.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

# 1, primes, an empty tensor, a 0-d one, and enough in total (> 2 * 32768) that two threads
# split the elements in the middle of a tensor.
SIZES = [(1,), (7,), (0,), (), (3, 11), (40013,), (31,), (5, 6007)]

SIMD_PATHS = ["portable"] + (["avx2+fma"] if _C.cpu_supports_avx2_fma() else [])


@pytest.fixture(params=SIMD_PATHS)
def simd_path(request):
    _C.set_simd_path(request.param)
    yield request.param
    _C.set_simd_path("auto")


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    old = pydl.get_num_threads()
    pydl.set_num_threads(request.param)
    yield request.param
    pydl.set_num_threads(old)


def tolerances(dtype):
    return dict(rtol=1e-9, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)


def make(rng, dtype, scale=1.0):
    return [np.asarray(scale * rng.standard_normal(s), dtype=dtype) for s in SIZES]


def run_steps(n_steps, dtype, seed, kernel_step, ref_step):
    """Runs kernel_step(params, grads, t) and ref_step(i, p64, g64) for n_steps random gradient
    draws; returns the kernel's params and the reference's."""
    rng = np.random.default_rng(seed)
    params = make(rng, dtype)
    expected = [p.astype(np.float64) for p in params]
    for t in range(1, n_steps + 1):
        grads = make(rng, dtype)
        kernel_step(params, grads, t)
        expected = [ref_step(i, e, g.astype(np.float64)) for i, (e, g) in
                    enumerate(zip(expected, grads))]
    return params, expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum,dampening,nesterov,weight_decay,maximize", [
    (0.0, 0.0, False, 0.0, False), (0.9, 0.0, False, 0.0, False), (0.9, 0.1, False, 1e-2, True),
    (0.8, 0.0, True, 1e-2, False)])
def test_sgd_step_matches_reference(simd_path, threads, dtype, momentum, dampening, nesterov,
                                    weight_decay, maximize):
    hyper = dict(lr=0.05, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                 nesterov=nesterov, maximize=maximize)
    buffers = [np.zeros(s, dtype) for s in SIZES]
    states = [dict() for _ in SIZES]

    def kernel(params, grads, t):
        _C.sgd_step(params, grads, buffers, [t == 1] * len(SIZES), **hyper)

    params, expected = run_steps(21, dtype, 1, kernel,
                                 lambda i, p, g: ref.sgd(p, g, states[i], **hyper))
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, **tolerances(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lr_decay,weight_decay,init,maximize", [
    (0.0, 0.0, 0.0, False), (0.05, 0.1, 0.3, True)])
def test_adagrad_step_matches_reference(simd_path, threads, dtype, lr_decay, weight_decay, init,
                                        maximize):
    hyper = dict(lr=0.1, lr_decay=lr_decay, weight_decay=weight_decay, eps=1e-10,
                 maximize=maximize)
    sums = [np.full(s, init, dtype) for s in SIZES]
    states = [dict() for _ in SIZES]

    def kernel(params, grads, t):
        _C.adagrad_step(params, grads, sums, [float(t)] * len(SIZES), **hyper)

    params, expected = run_steps(
        20, dtype, 2, kernel,
        lambda i, p, g: ref.adagrad(p, g, states[i], initial_accumulator_value=init, **hyper))
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, **tolerances(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("centered,momentum,weight_decay,alpha,maximize", [
    (False, 0.0, 0.0, 0.99, False), (True, 0.0, 0.0, 0.9, False), (False, 0.9, 0.01, 0.99, True),
    (True, 0.5, 0.01, 0.3, False)])
def test_rmsprop_step_matches_reference(simd_path, threads, dtype, centered, momentum,
                                        weight_decay, alpha, maximize):
    hyper = dict(lr=0.01, alpha=alpha, eps=1e-8, weight_decay=weight_decay, momentum=momentum,
                 centered=centered, maximize=maximize)
    sq = [np.zeros(s, dtype) for s in SIZES]
    ga = [np.zeros(s, dtype) for s in SIZES] if centered else []
    buf = [np.zeros(s, dtype) for s in SIZES] if momentum > 0 else []
    states = [dict() for _ in SIZES]

    def kernel(params, grads, t):
        _C.rmsprop_step(params, grads, sq, ga, buf, **hyper)

    params, expected = run_steps(20, dtype, 3, kernel,
                                 lambda i, p, g: ref.rmsprop(p, g, states[i], **hyper))
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, **tolerances(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad,weight_decay,decoupled,maximize,betas", [
    (False, 0.0, False, False, (0.9, 0.999)), (True, 0.0, False, False, (0.9, 0.999)),
    (False, 0.1, False, True, (0.8, 0.99)), (True, 0.1, True, False, (0.5, 0.9)),
    (False, 0.0, False, False, (0.3, 0.9))])  # beta1 = 0.3: lerp's large-weight branch
def test_adam_step_matches_reference(simd_path, threads, dtype, amsgrad, weight_decay, decoupled,
                                     maximize, betas):
    hyper = dict(lr=0.01, eps=1e-8, weight_decay=weight_decay, maximize=maximize)
    m = [np.zeros(s, dtype) for s in SIZES]
    v = [np.zeros(s, dtype) for s in SIZES]
    vmax = [np.zeros(s, dtype) for s in SIZES] if amsgrad else []
    states = [dict() for _ in SIZES]

    def kernel(params, grads, t):
        _C.adam_step(params, grads, m, v, vmax, [float(t)] * len(SIZES), beta1=betas[0],
                     beta2=betas[1], amsgrad=amsgrad, decoupled_weight_decay=decoupled, **hyper)

    params, expected = run_steps(
        22, dtype, 4, kernel,
        lambda i, p, g: ref.adam(p, g, states[i], betas=betas, amsgrad=amsgrad,
                                 decoupled=decoupled, **hyper))
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, **tolerances(dtype))


def test_adam_bias_correction_uses_each_tensors_own_step(simd_path):
    rng = np.random.default_rng(5)
    params = [rng.standard_normal(50), rng.standard_normal(9)]
    grads = [rng.standard_normal(50), rng.standard_normal(9)]
    m = [np.zeros(50), np.zeros(9)]
    v = [np.zeros(50), np.zeros(9)]
    # Tensor 1 is at its 7th step while tensor 0 is at its 1st: fake a history for tensor 1.
    states = [dict(), dict(step=6, m=np.full(9, 0.1), v=np.full(9, 0.02))]
    m[1][:] = 0.1
    v[1][:] = 0.02
    expected = [ref.adam(p.copy(), g, s, lr=0.1) for p, g, s in zip(params, grads, states)]
    _C.adam_step(params, grads, m, v, [], [1.0, 7.0], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.0, amsgrad=False, maximize=False, decoupled_weight_decay=False)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, rtol=1e-12)


def test_simd_paths_agree():
    if len(SIMD_PATHS) < 2:
        pytest.skip("this CPU has only the portable path")
    rng = np.random.default_rng(6)
    results = {}
    for path in SIMD_PATHS:
        _C.set_simd_path(path)
        try:
            r = np.random.default_rng(6)
            params = make(r, np.float32)
            m = [np.zeros(s, np.float32) for s in SIZES]
            v = [np.zeros(s, np.float32) for s in SIZES]
            for t in range(1, 6):
                grads = make(r, np.float32)
                _C.adam_step(params, grads, m, v, [], [float(t)] * len(SIZES), lr=0.01,
                             beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, amsgrad=False,
                             maximize=False, decoupled_weight_decay=True)
            results[path] = params
        finally:
            _C.set_simd_path("auto")
    del rng
    for a, b in zip(*results.values()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---- gradient utilities ---------------------------------------------------------------------

def numpy_norm(x, p):
    """The vector norm of x (float64), straight from the definition."""
    a = np.abs(x.astype(np.float64).ravel())
    if p == math.inf:
        return a.max() if a.size else 0.0
    if p == -math.inf:
        return a.min() if a.size else math.inf
    if p == 0:
        return float(np.count_nonzero(a))
    return float(np.sum(a ** p) ** (1.0 / p))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [2.0, 1.0, math.inf, -math.inf, 0.0, 3.0, 0.5])
def test_tensor_norms(simd_path, threads, dtype, p):
    rng = np.random.default_rng(7)
    xs = make(rng, dtype, scale=3.0)
    xs[1][2] = 0.0  # a zero for the 0-"norm"
    got = _C.tensor_norms(xs, p)
    assert len(got) == len(xs)
    for x, n in zip(xs, got):
        np.testing.assert_allclose(n, numpy_norm(x, p), rtol=1e-12)


@pytest.mark.parametrize("p", [2.0, 1.0, math.inf, -math.inf, 3.0])
def test_tensor_norms_propagate_nan(simd_path, p):
    x = np.ones(100, np.float32)
    x[57] = np.nan
    assert math.isnan(_C.tensor_norms([np.ones(3, np.float32), x], p)[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scale_clamp_lerp(simd_path, threads, dtype):
    rng = np.random.default_rng(8)
    xs = make(rng, dtype, scale=2.0)
    xs[1][3] = np.nan
    expected = [x.astype(np.float64) * 0.37 for x in xs]
    _C.scale_(xs, 0.37)
    for x, e in zip(xs, expected):
        np.testing.assert_allclose(x, e, rtol=1e-6 if dtype == np.float32 else 1e-15)
    expected = [np.where(np.isnan(x), np.nan, np.minimum(np.maximum(x, -0.5), 0.75)) for x in xs]
    _C.clamp_(xs, -0.5, 0.75)
    for x, e in zip(xs, expected):
        np.testing.assert_array_equal(x, e.astype(dtype))
    for weight in (0.1, 0.9):  # both of lerp's branches
        targets = make(rng, dtype)
        sources = make(rng, dtype)
        expected = [a.astype(np.float64) + weight * (b.astype(np.float64) - a)
                    for a, b in zip(targets, sources)]
        _C.lerp_(targets, sources, weight)
        for x, e in zip(targets, expected):
            np.testing.assert_allclose(x, e, **tolerances(dtype))


def test_empty_lists_are_fine():
    _C.adam_step([], [], [], [], [], [], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.0, amsgrad=False, maximize=False, decoupled_weight_decay=False)
    assert _C.tensor_norms([], 2.0) == []
    _C.scale_([], 2.0)


# ---- argument checks: a clear error before anything is written --------------------------------

def adam_args(n=3, dtype=np.float32):
    rng = np.random.default_rng(9)
    shapes = [(4, 5), (3,), (2, 2)][:n]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    return dict(params=params, grads=[np.ones(s, dtype) for s in shapes],
                exp_avgs=[np.zeros(s, dtype) for s in shapes],
                exp_avg_sqs=[np.zeros(s, dtype) for s in shapes], max_exp_avg_sqs=[],
                steps=[1.0] * n)


def call_adam(**kw):
    _C.adam_step(kw.pop("params"), kw.pop("grads"), kw.pop("exp_avgs"), kw.pop("exp_avg_sqs"),
                 kw.pop("max_exp_avg_sqs"), kw.pop("steps"), lr=0.1, beta1=0.9, beta2=0.999,
                 eps=1e-8, weight_decay=0.0, amsgrad=kw.pop("amsgrad", False), maximize=False,
                 decoupled_weight_decay=False)


@pytest.mark.parametrize("mutate,error,match", [
    (lambda a: a["grads"].__setitem__(1, np.ones(4, np.float32)), ValueError,
     r"grads\[1\] has shape \(4,\) but params\[1\] has shape \(3,\)"),
    (lambda a: a["exp_avgs"].pop(), ValueError, r"exp_avgs has 2 arrays but params has 3"),
    (lambda a: a["exp_avg_sqs"].__setitem__(2, np.zeros((2, 2), np.float64)), TypeError,
     r"exp_avg_sqs\[2\] has dtype float64 but params\[2\] has dtype float32"),
    (lambda a: a["params"].__setitem__(1, np.zeros(3, np.float64)), TypeError,
     r"params\[1\] has dtype float64 but params\[0\] has dtype float32"),
    (lambda a: a["params"].__setitem__(0, np.zeros((4, 5), np.int32)), TypeError,
     r"params\[0\] must be float32 or float64, got int32"),
    (lambda a: a["grads"].__setitem__(0, [[1.0] * 5] * 4), TypeError,
     r"grads\[0\] must be a NumPy array, got list"),
    (lambda a: a["params"].__setitem__(0, np.zeros((5, 4), np.float32).T), ValueError,
     r"params\[0\] \(shape \(4, 5\)\) must be C-contiguous"),
    (lambda a: a["exp_avgs"][2].setflags(write=False), ValueError,
     r"exp_avgs\[2\] \(shape \(2, 2\)\) is read-only"),
    (lambda a: a.update(steps=[1.0, 0.0, 1.0]), ValueError, r"steps\[1\] is 0"),
    (lambda a: a.update(steps=[1.0]), ValueError, r"steps has 1 entries but params has 3"),
    (lambda a: a.update(amsgrad=True), ValueError,
     r"max_exp_avg_sqs has 0 arrays but params has 3"),
])
def test_adam_step_rejects_bad_arguments(mutate, error, match):
    args = adam_args()
    mutate(args)
    before = [np.array(p, copy=True) for p in args["params"]]
    with pytest.raises(error, match=match):
        call_adam(**args)
    for b, p in zip(before, args["params"]):  # checked before anything was written
        np.testing.assert_array_equal(p, b)


def test_read_only_grads_are_accepted():
    args = adam_args()
    for g in args["grads"]:
        g.setflags(write=False)
    call_adam(**args)


@pytest.mark.parametrize("call,match", [
    (lambda: _C.sgd_step([np.zeros(3)], [np.zeros(3)], [], [True], lr=0.1, momentum=0.9,
                         dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
     r"momentum_buffers has 0 arrays but params has 1"),
    (lambda: _C.sgd_step([np.zeros(3)], [np.zeros(3)], [np.zeros(3)], [], lr=0.1, momentum=0.9,
                         dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
     r"init_buffer has 0 entries but params has 1"),
    (lambda: _C.rmsprop_step([np.zeros(3)], [np.zeros(3)], [np.zeros(3)], [], [], lr=0.1,
                             alpha=0.9, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=True,
                             maximize=False),
     r"grad_avgs has 0 arrays but params has 1"),
    (lambda: _C.adagrad_step([np.zeros(3)], [np.zeros(3)], [np.zeros(2)], [1.0], lr=0.1,
                             lr_decay=0.0, weight_decay=0.0, eps=1e-10, maximize=False),
     r"state_sums\[0\] has shape \(2,\) but params\[0\] has shape \(3,\)"),
    (lambda: _C.lerp_([np.zeros(3)], [np.zeros(3, np.float32)], 0.5),
     r"sources\[0\] has dtype float32 but targets\[0\] has dtype float64"),
    (lambda: _C.tensor_norms([np.zeros(3)], -1.0), r"norm_type must be >= 0"),
    (lambda: _C.tensor_norms([np.zeros(3)], math.nan), r"norm_type is NaN"),
    (lambda: _C.scale_([np.zeros(4)[::2]], 2.0), r"tensors\[0\] \(shape \(2,\)\) must be "
                                                  r"C-contiguous"),
])
def test_other_kernels_reject_bad_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
