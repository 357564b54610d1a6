"""Every emulated CUDA kernel against pydl's CPU kernels (pydl._C) on random shapes, including
sizes that straddle the CUDA tiles (64/128 wide, 8 deep) and the 4096-element optimizer chunks.
The float64 NumPy references in the other test_emu_* modules pin the semantics; this module
checks the two backends agree with each other."""
import numpy as np
import pytest

from pydl import _C
from pydl._cuda_kernels import CudaKernels

RANDOM_CONV = 6


def _conv_case(rng):
    groups = int(rng.choice([1, 1, 2, 3]))
    cin = groups * int(rng.integers(1, 5))
    cout = groups * int(rng.integers(1, 24))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
    h = dilation[0] * (kh - 1) + 1 + int(rng.integers(0, 9))
    w = dilation[1] * (kw - 1) + 1 + int(rng.integers(0, 9))
    n = int(rng.integers(1, 4))
    return (n, cin, h, w), (cout, cin // groups, kh, kw), stride, padding, dilation, groups


@pytest.mark.parametrize("seed", range(RANDOM_CONV))
def test_conv2d_matches_cpu(kernels, seed):
    rng = np.random.default_rng(1000 + seed)
    xs, ws, stride, padding, dilation, groups = _conv_case(rng)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    y_cpu = _C.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    y_emu = kernels.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(y_emu, y_cpu, rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y_cpu.shape).astype(np.float32)
    dx_cpu = _C.conv2d_backward_input(dy, w, xs[2:], stride, padding, dilation, groups)
    dw_cpu, _ = _C.conv2d_backward_weight(x, dy, ws[2:], stride, padding, dilation, groups, False)
    dx_emu = kernels.conv2d_backward_data(dy, w, xs, stride, padding, dilation, groups)
    dw_emu = kernels.conv2d_backward_weight(x, dy, ws, stride, padding, dilation, groups)
    np.testing.assert_allclose(dx_emu, dx_cpu, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw_emu, np.asarray(dw_cpu).reshape(ws), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", range(4))
def test_pooling_matches_cpu(kernels, seed):
    rng = np.random.default_rng(2000 + seed)
    k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
    ceil_mode = bool(rng.integers(0, 2))
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(rng.integers(k[0], 12)),
             int(rng.integers(k[1], 12)))
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float32)
    out_hw = tuple(CudaKernels.pool_output_size(shape[2 + i], k[i], s[i], p[i], 1, ceil_mode)
                   for i in range(2))
    y_cpu, idx_cpu = _C.max_pool2d_forward(x, k, s, p, (1, 1), out_hw)
    y_emu, idx_emu = kernels.max_pool2d_forward(x, k, s, p, (1, 1), ceil_mode)
    np.testing.assert_array_equal(y_emu, y_cpu)
    np.testing.assert_array_equal(idx_emu, idx_cpu)
    dy = rng.standard_normal(y_cpu.shape).astype(np.float32)
    np.testing.assert_allclose(kernels.max_pool2d_backward(dy, idx_emu, shape, k, s, p, (1, 1),
                                                           ceil_mode),
                               _C.max_pool2d_backward(dy, idx_cpu, shape[2:]), rtol=1e-6,
                               atol=1e-6)
    for include_pad in (True, False):
        a_cpu = _C.avg_pool2d_forward(x, k, s, p, out_hw, include_pad, 0)
        a_emu = kernels.avg_pool2d_forward(x, k, s, p, ceil_mode, include_pad)
        np.testing.assert_allclose(a_emu, a_cpu, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(
            kernels.avg_pool2d_backward(dy, shape, k, s, p, ceil_mode, include_pad),
            _C.avg_pool2d_backward(dy, shape[2:], k, s, p, include_pad, 0), rtol=1e-5,
            atol=1e-5)


@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 9), (3, 2, 5, 7)])
def test_batch_norm_matches_cpu(kernels, shape):
    rng = np.random.default_rng(sum(shape))
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
    w, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    y_cpu, mean_cpu, _, invstd_cpu = _C.batch_norm_forward_train(x, w, b, 1e-5)
    y_emu, mean_emu, invstd_emu = kernels.batch_norm_forward_train(x, w, b, None, None, 0.1, 1e-5)
    np.testing.assert_allclose(y_emu, y_cpu, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mean_emu, mean_cpu, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(invstd_emu, invstd_cpu, rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(shape).astype(np.float32)
    cpu = _C.batch_norm_backward(dy, x, mean_cpu, invstd_cpu, w, True, True, True, True)
    emu = kernels.batch_norm_backward_train(x, dy, w, mean_emu, invstd_emu)
    for e, c_ in zip(emu, cpu):
        np.testing.assert_allclose(e, c_, rtol=1e-4, atol=1e-4)
