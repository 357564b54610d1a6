"""The tap-list conv kernels (depthwise and grouped convolution with few input channels per
group; float32 with AVX2, csrc/conv.cpp "tap lists"), im2col + GEMM over several images per
column matrix (small output planes), dilated layers on the direct kernels, and the paths
around them, against a float64
NumPy reference written here: forward, grad input, grad weight, grad bias on every SIMD path,
strides, paddings, dilations, depth multipliers, batch 0 and 1, primes, non-contiguous inputs;
gradcheck through F.conv2d; run-to-run and thread-count determinism of the weight gradient."""
import os
import sys

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import _C
from pydl.autograd import gradcheck

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # conv_reference (importlib mode)
from conv_reference import ref_conv2d_grads_general  # noqa: E402


def ref_conv2d_all(x, w, b, dy, stride, padding, dilation, groups):
    """y, dx, dw, db in float64: the forward from its definition, the gradients from
    conv_reference (each tap scatters dy back through its strided slice / correlates it)."""
    x, w, dy = (np.asarray(a, np.float64) for a in (x, w, dy))
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    Kg = K // groups
    (sh, sw), (ph, pw), (dh, dw_) = stride, padding, dilation
    OH, OW = dy.shape[2:]
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph:ph + H, pw:pw + W] = x
    y = np.zeros((N, K, OH, OW))
    for g in range(groups):
        ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        for r in range(R):
            for s in range(S):
                patch = xp[:, cs, r * dh:r * dh + sh * (OH - 1) + 1:sh,
                           s * dw_:s * dw_ + sw * (OW - 1) + 1:sw]
                y[:, ks] += np.einsum("ncij,kc->nkij", patch, w[ks, :, r, s])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    dx, dw = ref_conv2d_grads_general(x, w, dy, stride, padding, dilation, groups)
    return y, dx, dw, dy.sum(axis=(0, 2, 3))


SIMD_PATHS = ["avx512", "avx2+fma", "portable"]


def use_simd(simd):
    if simd not in _C.available_simd_paths():
        pytest.skip(f"this CPU (or build) has no {simd} path")
    _C.set_simd_path(simd)


# x shape (N, C, H, W), (K, Cg, R, S), stride, padding, dilation, groups
CASES = [
    ((2, 8, 28, 28), (8, 1, 3, 3), (1, 1), (1, 1), (1, 1), 8),      # depthwise 3x3 (MobileNet)
    ((3, 5, 13, 17), (5, 1, 3, 3), (2, 2), (1, 1), (1, 1), 5),      # depthwise stride 2, primes
    ((2, 4, 11, 7), (8, 1, 5, 5), (1, 1), (2, 2), (1, 1), 4),       # multiplier 2, 5x5
    ((1, 3, 9, 41), (9, 1, 3, 2), (1, 3), (0, 1), (2, 3), 3),       # multiplier 3, dilation, sw 3
    ((2, 6, 7, 33), (6, 1, 7, 7), (1, 1), (3, 3), (1, 1), 6),       # 7x7: 49 taps, OW 33
    ((1, 2, 1, 1), (2, 1, 1, 1), (1, 1), (0, 0), (1, 1), 2),        # 1x1 plane, 1 tap
    ((2, 3, 5, 6), (3, 1, 3, 3), (3, 2), (4, 0), (1, 2), 3),        # padding past the kernel
    ((2, 4, 8, 8), (4, 1, 2, 2), (4, 4), (0, 0), (1, 1), 4),        # stride 4: 16 phases
    ((2, 4, 9, 9), (4, 1, 1, 1), (2, 2), (0, 0), (1, 1), 4),        # 1x1 stride 2: phases w/o taps
    ((1, 8, 12, 10), (12, 2, 3, 3), (1, 1), (1, 1), (1, 1), 4),     # grouped, Cg 2, Kg 3
    ((2, 16, 10, 19), (16, 4, 3, 3), (2, 1), (1, 1), (1, 1), 4),    # grouped, Cg 4, strided rows
    ((2, 12, 6, 6), (6, 6, 3, 3), (1, 1), (1, 1), (1, 1), 2),       # Cg 6: the other paths
    ((2, 4, 10, 10), (4, 1, 3, 3), (5, 5), (1, 1), (1, 1), 4),      # stride 5: the generic loops
    ((1, 2, 3, 3), (2, 1, 3, 3), (1, 1), (40, 2), (20, 1), 2),      # large padding and dilation
    # im2col + GEMM over several images per column matrix (output planes below one tile):
    ((9, 256, 4, 4), (8, 256, 3, 3), (1, 1), (1, 1), (1, 1), 1),    # VGG conv4-like: 5 + 4
    ((5, 64, 5, 5), (6, 32, 3, 3), (2, 2), (1, 1), (1, 1), 2),      # groups, stride 2, 3x3 out
    ((3, 16, 6, 7), (4, 16, 2, 3), (1, 2), (0, 2), (2, 1), 1),      # dilation, odd plane
    # The AVX2 direct stride-1 kernels on dilated layers (forward and input grad):
    ((2, 8, 13, 21), (6, 8, 3, 3), (1, 1), (2, 2), (2, 2), 1),      # 3x3 d2 p2 (same size)
    ((1, 4, 9, 30), (5, 4, 2, 3), (1, 1), (0, 3), (3, 2), 1),       # asymmetric dilation
    ((2, 3, 7, 17), (4, 3, 3, 3), (1, 1), (5, 1), (2, 3), 1),       # padding past (R-1) * d
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("simd", SIMD_PATHS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_grouped_conv_against_reference(case, simd, dtype):
    xs, ws, stride, padding, dilation, groups = CASES[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    args = (stride, padding, dilation, groups)
    use_simd(simd)
    try:
        xt, wt, bt = (pydl.tensor(a, requires_grad=True) for a in (x, w, b))
        y = F.conv2d(xt, wt, bt, *args)
        dy = rng.standard_normal(y.shape).astype(dtype)
        y.backward(pydl.tensor(dy))
    finally:
        _C.set_simd_path("auto")
    y_ref, dx_ref, dw_ref, db_ref = ref_conv2d_all(x, w, b, dy, *args)
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    assert y.dtype == dtype and xt.grad.dtype == dtype and wt.grad.dtype == dtype
    np.testing.assert_allclose(y.detach().numpy(), y_ref, **tol)
    np.testing.assert_allclose(xt.grad.numpy(), dx_ref, **tol)
    # dw sums N * OH * OW products: scale the float32 tolerance with the count.
    wtol = tol if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5 * y.shape[0] * y.numel() ** 0.5)
    np.testing.assert_allclose(wt.grad.numpy(), dw_ref, **wtol)
    np.testing.assert_allclose(bt.grad.numpy(), db_ref, **wtol)


@pytest.mark.parametrize("simd", SIMD_PATHS)
@pytest.mark.parametrize("n", [0, 1, 7])
def test_depthwise_batch_sizes_and_noncontiguous(n, simd):
    rng = np.random.default_rng(n)
    base = rng.standard_normal((n, 6, 11, 30)).astype(np.float32)
    x = base[:, :, :, ::2]  # columns with stride 2: not contiguous
    w_base = rng.standard_normal((12, 1, 3, 6)).astype(np.float32)
    w = w_base[:, :, :, ::2]  # (12, 1, 3, 3), not contiguous
    args = ((1, 2), (1, 1), (1, 1), 6)
    use_simd(simd)
    try:
        xt, wt = pydl.tensor(x, requires_grad=True), pydl.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, None, *args)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(pydl.tensor(dy))
    finally:
        _C.set_simd_path("auto")
    y_ref, dx_ref, dw_ref, _ = ref_conv2d_all(x, w, None, dy, *args)
    assert y.shape == y_ref.shape
    np.testing.assert_allclose(y.detach().numpy(), y_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(xt.grad.numpy(), dx_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(wt.grad.numpy(), dw_ref, rtol=1e-4, atol=1e-3)


def test_depthwise_inf_stays_where_the_reference_puts_it():
    # An inf in the input reaches only the outputs and weight taps that read it: the weight
    # kernel's masked tail lanes must not turn 0 * inf into NaN in the other taps.
    x = np.ones((1, 2, 4, 10), np.float32)
    x[0, 0, 1, 9] = np.inf  # last column: read only by tap s = 2 of the last output column
    w = np.ones((2, 1, 3, 3), np.float32)
    xt, wt = pydl.tensor(x, requires_grad=True), pydl.tensor(w, requires_grad=True)
    y = F.conv2d(xt, wt, None, 1, 0, 1, 2)
    dy = np.ones(y.shape, np.float32)
    y.backward(pydl.tensor(dy))
    y_ref, dx_ref, dw_ref, _ = ref_conv2d_all(x, w, None, dy, (1, 1), (0, 0), (1, 1), 2)
    assert np.isinf(dw_ref).sum() == 2 and not np.isnan(dw_ref).any()
    np.testing.assert_allclose(y.detach().numpy(), y_ref, rtol=1e-6)
    np.testing.assert_allclose(wt.grad.numpy(), dw_ref, rtol=1e-6)
    np.testing.assert_allclose(xt.grad.numpy(), dx_ref, rtol=1e-6)


@pytest.mark.parametrize("case", [0, 1, 3, 9, 10])
def test_grouped_conv_gradcheck(case):
    xs, ws, stride, padding, dilation, groups = CASES[case]
    rng = np.random.default_rng(case)
    xs = (1,) + xs[1:3] + (min(xs[3], 9),)
    x = pydl.tensor(rng.standard_normal(xs), requires_grad=True)
    w = pydl.tensor(rng.standard_normal(ws), requires_grad=True)
    b = pydl.tensor(rng.standard_normal(ws[0]), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
                     (x, w, b))


@pytest.mark.parametrize("case", [0, 1, 2, 10])
def test_grouped_weight_gradient_bitwise_and_thread_independent(case):
    xs, ws, stride, padding, dilation, groups = CASES[case]
    rng = np.random.default_rng(case)
    xs = (9,) + xs[1:]
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    args = (stride, padding, dilation, groups)
    dy = rng.standard_normal(_C.conv2d_forward(x, w, None, *args).shape).astype(np.float32)
    before = pydl.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3, 2):
            pydl.set_num_threads(threads)
            for _ in range(2):
                results.append(_C.conv2d_backward(x, dy, w, *args, True))
    finally:
        pydl.set_num_threads(before)
    for got in results[1:]:
        for a, b in zip(results[0], got):
            np.testing.assert_array_equal(a, b)


def test_column_buffer_bytes_of_the_tap_path_is_bounded():
    # Depthwise scratch: padded planes per thread, independent of the batch.
    a = _C.conv2d_column_buffer_bytes((8, 64, 28, 28), (64, 1, 3, 3), (1, 1), (1, 1), (1, 1),
                                      64, 4)
    b = _C.conv2d_column_buffer_bytes((64, 64, 28, 28), (64, 1, 3, 3), (1, 1), (1, 1), (1, 1),
                                      64, 4)
    assert a == b
    assert 0 <= a < 4 * 64 * 28 * 28 * 4
