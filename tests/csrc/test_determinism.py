"""Bitwise determinism of kernels that add up partial results of several threads.

For a fixed thread count every call gives the same bits (partials are added in a fixed order);
under ``pydl.use_deterministic_algorithms(True)`` the bits do not depend on the thread count either.
"""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import _C

# (input shape, weight shape, conv2d keywords): each picks a different weight-gradient path on
# AVX2 float32 (direct lanes, Winograd, im2col + GEMM, pointwise GEMM, groups) and the generic
# path in float64 or on the portable SIMD path.
CONV_CASES = [
    ((64, 6, 12, 12), (16, 6, 5, 5), {}),
    ((8, 16, 20, 20), (32, 16, 3, 3), dict(padding=1)),
    ((16, 3, 32, 32), (8, 3, 3, 3), dict(padding=1, stride=2)),
    ((32, 64, 16, 16), (64, 64, 3, 3), dict(padding=1)),
    ((9, 8, 10, 10), (8, 8, 1, 1), {}),
    ((5, 8, 9, 9), (8, 4, 3, 3), dict(groups=2)),
    # The tap-list path (depthwise with multiplier 2, stride 2; grouped with 2 channels per
    # group) and im2col over several images per column matrix (a 4x4 output plane).
    ((7, 6, 15, 15), (12, 1, 3, 3), dict(groups=6, stride=2, padding=1)),
    ((6, 8, 9, 9), (8, 2, 3, 3), dict(groups=4, padding=1)),
    ((11, 32, 4, 4), (16, 32, 3, 3), dict(padding=1)),
]


@pytest.fixture(params=_C.available_simd_paths())
def simd_path(request):
    _C.set_simd_path(request.param)
    yield request.param
    _C.set_simd_path("auto")


@pytest.fixture
def restore_threads():
    threads = pydl.get_num_threads()
    yield
    pydl.set_num_threads(threads)
    pydl.use_deterministic_algorithms(False)


def _conv_weight_grad(x, w, kw):
    xt, wt = pydl.tensor(x), pydl.tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, **kw)
    # A non-constant upstream gradient, so every image and tap contributes differently.
    g = np.cos(np.arange(y.numel())).reshape(y.shape).astype(x.dtype)
    (y * pydl.tensor(g)).sum().backward()
    return wt.grad.numpy()


def test_deterministic_flag_round_trip(restore_threads):
    assert pydl.are_deterministic_algorithms_enabled() is False
    pydl.use_deterministic_algorithms(True)
    assert pydl.are_deterministic_algorithms_enabled() is True
    pydl.use_deterministic_algorithms(False, warn_only=True)
    assert pydl.are_deterministic_algorithms_enabled() is False
    with pytest.raises(TypeError):
        pydl.use_deterministic_algorithms(1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[1])))
def test_conv_weight_grad_same_bits_every_call(simd_path, restore_threads, case, dtype):
    xs, ws, kw = case
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    pydl.set_num_threads(2)
    results = {_conv_weight_grad(x, w, kw).tobytes() for _ in range(10)}
    assert len(results) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[1])))
def test_conv_weight_grad_deterministic_mode_any_thread_count(simd_path, restore_threads, case,
                                                              dtype):
    xs, ws, kw = case
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    pydl.use_deterministic_algorithms(True)
    results = set()
    for threads in (1, 2, 3, 4):
        pydl.set_num_threads(threads)
        results.add(_conv_weight_grad(x, w, kw).tobytes())
    assert len(results) == 1
