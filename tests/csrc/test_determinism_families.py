"""Bitwise reproducibility of every kernel family (issue #14).

For a fixed thread count every call gives the same bits; under
``pydl.use_deterministic_algorithms(True)`` the bits do not depend on the thread count either
(1, 2, 3 and 4 threads, on every SIMD path this machine has). tests/csrc/test_determinism.py
covers the convolution weight gradient's paths in depth; this module covers one or two
representative calls of each family, large enough to be split over threads.
"""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import _C

RNG = np.random.default_rng(7)


def _arr(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _grads(fn, *arrays):
    """Output and input gradients of sum(fn(*tensors) * g), all as bytes."""
    ts = [pydl.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    g = np.cos(np.arange(y.numel())).reshape(y.shape).astype(y.dtype)
    (y * pydl.tensor(g)).sum().backward()
    return b"".join([y.detach().numpy().tobytes()] + [t.grad.numpy().tobytes() for t in ts])


X_CONV, W_CONV = _arr(16, 8, 20, 20), _arr(16, 8, 3, 3)
X_POOL = _arr(8, 16, 33, 33)
X_BN, W_BN, B_BN = _arr(32, 16, 14, 14), _arr(16), _arr(16)
X_GN = _arr(8, 16, 40, 40)
A_MM, B_MM = _arr(300, 700), _arr(700, 250)
A_MM64, B_MM64 = _arr(200, 900, dtype=np.float64), _arr(900, 120, dtype=np.float64)
X_RED = _arr(1000, 1500)
X_EW = _arr(600_000)
Z_CE, T_CE = _arr(4096, 100), RNG.integers(0, 100, 4096)
P_OPT = [_arr(300_000), _arr(1000), _arr(77_777)]


def _optim(kind):
    def run():
        params = [p.copy() for p in P_OPT]
        grads = [np.sin(p) for p in P_OPT]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        for step in (1.0, 2.0):
            if kind == "adam":
                _C.adam_step(params, grads, m, v, [], [step] * 3, lr=1e-3, beta1=0.9,
                             beta2=0.999, eps=1e-8, weight_decay=0.01, amsgrad=False,
                             maximize=False, decoupled_weight_decay=True)
            else:
                _C.sgd_step(params, grads, m, [step == 1.0] * 3, lr=0.1, momentum=0.9,
                            dampening=0.0, weight_decay=1e-4, nesterov=True, maximize=False)
        norms = _C.tensor_norms(params, 2.0)
        return b"".join(p.tobytes() for p in params) + np.array(norms).tobytes()
    return run


CASES = {
    "gemm_f32": lambda: _C.matmul(A_MM, B_MM).tobytes(),
    "gemm_f64": lambda: _C.matmul(A_MM64, B_MM64).tobytes(),
    "conv_fwd_bwd": lambda: _grads(lambda x, w: F.conv2d(x, w, padding=1), X_CONV, W_CONV),
    "conv_strided": lambda: _grads(lambda x, w: F.conv2d(x, w, stride=2, dilation=2), X_CONV,
                                   W_CONV),
    "max_pool": lambda: _grads(lambda x: F.max_pool2d(x, 3, 2, 1), X_POOL),
    "avg_pool": lambda: _grads(lambda x: F.avg_pool2d(x, 3, 2, 1), X_POOL),
    "adaptive_pool": lambda: _grads(lambda x: F.adaptive_avg_pool2d(x, 5), X_POOL),
    "batchnorm_train": lambda: _grads(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), X_BN, W_BN, B_BN),
    "group_norm": lambda: _grads(lambda x, w, b: F.group_norm(x, 4, w, b), X_GN, W_BN, B_BN),
    "sum_mean_var": lambda: b"".join(
        f(pydl.tensor(X_RED), dim=d).numpy().tobytes()
        for f in (pydl.sum, pydl.mean, pydl.var) for d in (None, 0, 1)),
    "norm_logsumexp": lambda: b"".join([
        pydl.logsumexp(pydl.tensor(X_RED), dim=1).numpy().tobytes(),
        pydl.linalg.vector_norm(pydl.tensor(X_RED)).numpy().tobytes()]),
    "softmax": lambda: _grads(lambda x: F.log_softmax(x, dim=1), X_RED),
    "elementwise": lambda: _grads(lambda x: F.gelu(x) * pydl.exp(x * 0.1) + x.sigmoid(), X_EW),
    "cross_entropy": lambda: _grads(lambda z: F.cross_entropy(z, pydl.tensor(T_CE)).reshape(1),
                                    Z_CE),
    "adam": _optim("adam"),
    "sgd": _optim("sgd"),
}


@pytest.fixture(params=_C.available_simd_paths())
def simd_path(request):
    _C.set_simd_path(request.param)
    yield request.param
    _C.set_simd_path("auto")


@pytest.fixture
def restore():
    threads = pydl.get_num_threads()
    yield
    pydl.set_num_threads(threads)
    pydl.use_deterministic_algorithms(False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_bits_every_call_at_fixed_threads(case, restore):
    pydl.set_num_threads(2)
    assert len({CASES[case]() for _ in range(4)}) == 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_deterministic_mode_same_bits_for_any_thread_count(case, simd_path, restore):
    pydl.use_deterministic_algorithms(True)
    results = set()
    for threads in (1, 2, 3, 4):
        pydl.set_num_threads(threads)
        results.add(CASES[case]())
    assert len(results) == 1
