"""pydl._C_cuda on a real GPU against pydl._C (CPU) and float64 NumPy: GEMM, conv passes,
pooling, batch norm, fused optimizers, and Tensor/Module device handling. Skipped without a GPU
so it runs unchanged the day one is present."""
import numpy as np
import pytest

import pydl
from pydl import _C, cuda

pytestmark = pytest.mark.skipif(not cuda.is_available(),
                                reason=f"no usable GPU: {cuda.unavailable_reason()}")


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (129, 127, 9), (513, 257, 300), (1024, 1024, 1024)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_gemm(gpu_kernels, cp, rng, m, n, k, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    out = gpu_kernels.matmul(cp.asarray(a), cp.asarray(b), trans_a, trans_b).get()
    a64 = a.T.astype(np.float64) if trans_a else a.astype(np.float64)
    b64 = b.T.astype(np.float64) if trans_b else b.astype(np.float64)
    np.testing.assert_allclose(out, a64 @ b64, rtol=1e-4, atol=1e-4 * np.sqrt(k))


@pytest.mark.parametrize("geo", [((2, 3, 17, 19), (8, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
                                 ((4, 8, 14, 14), (16, 4, 3, 3), (2, 2), (1, 1), (2, 2), 2),
                                 ((2, 6, 9, 9), (6, 1, 3, 3), (1, 1), (1, 1), (1, 1), 6)])
def test_conv2d(gpu_kernels, cp, rng, geo):
    xs, ws, stride, padding, dilation, groups = geo
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    y = _C.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    yg = gpu_kernels.conv2d_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b), stride, padding,
                                    dilation, groups)
    np.testing.assert_allclose(yg.get(), y, rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = _C.conv2d_backward_input(dy, w, xs[2:], stride, padding, dilation, groups)
    dw, _ = _C.conv2d_backward_weight(x, dy, ws[2:], stride, padding, dilation, groups, False)
    dxg = gpu_kernels.conv2d_backward_data(cp.asarray(dy), cp.asarray(w), xs, stride, padding,
                                           dilation, groups)
    dwg = gpu_kernels.conv2d_backward_weight(cp.asarray(x), cp.asarray(dy), ws, stride, padding,
                                             dilation, groups)
    np.testing.assert_allclose(dxg.get(), dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dwg.get(), np.asarray(dw).reshape(ws), rtol=1e-3, atol=1e-3)


def test_pool_and_batch_norm(gpu_kernels, cp, rng):
    x = rng.permutation(2 * 3 * 11 * 13).reshape(2, 3, 11, 13).astype(np.float32)
    y, idx = _C.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1), (1, 1), (6, 7))
    yg, idxg = gpu_kernels.max_pool2d_forward(cp.asarray(x), (3, 3), (2, 2), (1, 1))
    np.testing.assert_array_equal(yg.get(), y)
    np.testing.assert_array_equal(idxg.get(), idx)
    xb = rng.standard_normal((8, 4, 5, 5)).astype(np.float32)
    yb, mean, _, invstd = _C.batch_norm_forward_train(xb, None, None, 1e-5)
    ybg, meang, invstdg = gpu_kernels.batch_norm_forward_train(cp.asarray(xb), None, None, None,
                                                               None, 0.1, 1e-5)
    np.testing.assert_allclose(ybg.get(), yb, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(invstdg.get(), invstd, rtol=1e-4)


def test_adam_step(gpu_kernels, cp, rng):
    sizes = [1, 4099, 8197]
    host = [[rng.standard_normal(n).astype(np.float32) for n in sizes] for _ in range(4)]
    dev = [[cp.asarray(a) for a in lst] for lst in host]
    table = gpu_kernels.tensor_table(list(zip(*dev)))
    gpu_kernels.adam_step(table, 1e-2, 0.9, 0.999, 1e-8, 0.0, 1)
    for i in range(len(sizes)):
        p, g = host[0][i].astype(np.float64), host[1][i].astype(np.float64)
        m, v = 0.9 * host[2][i] + 0.1 * g, 0.999 * host[3][i] + 0.001 * g * g
        expect = p - 1e-2 / 0.1 * m / (np.sqrt(v) / np.sqrt(0.001) + 1e-8)
        np.testing.assert_allclose(dev[0][i].get(), expect, rtol=1e-4, atol=1e-5)


def test_tensor_and_module_to_cuda(rng):
    a = pydl.tensor(rng.standard_normal((5, 7)).astype(np.float32))
    b = pydl.tensor(rng.standard_normal((7, 3)).astype(np.float32))
    c = (a.cuda() @ b.cuda()).cpu()
    np.testing.assert_allclose(c.numpy(), a.numpy() @ b.numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="same device"):
        a.cuda() @ b
    z = pydl.zeros(3, device="cuda")
    assert z.device == "cuda" and z.is_cuda
