"""The CUDA GEMM (cuda/gemm.cuh) run on the emulation harness, against float64 NumPy.

Shapes straddle the 128x128x8 tile: 1, primes, tile multiples +-1; every transpose
combination; 128-bit loads on (aligned, ld % 4 == 0) and off (odd offsets, odd ld); batches
with a broadcast operand; alpha/beta with beta == 0 ignoring NaN in C.
"""
import numpy as np
import pytest



def ref_gemm(a, b, trans_a, trans_b):
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    a64 = np.swapaxes(a64, -1, -2) if trans_a else a64
    b64 = np.swapaxes(b64, -1, -2) if trans_b else b64
    return np.einsum("...ik,...kj->...ij", a64, b64)


def assert_gemm_close(out, ref, a, b, trans_a, trans_b, dtype):
    bound = ref_gemm(np.abs(a), np.abs(b), trans_a, trans_b)
    eps = np.finfo(dtype).eps
    k = a.shape[-2] if trans_a else a.shape[-1]
    tol = 4 * eps * (k + 2) * bound + 1e-30
    err = np.abs(out.astype(np.float64) - ref)
    assert np.all(err <= tol), f"max error {err.max()} at {np.unravel_index(err.argmax(), err.shape)}"


SHAPES = [(1, 1, 1), (7, 5, 3), (128, 128, 8), (129, 127, 9), (131, 257, 17), (33, 1, 64),
          (1, 300, 13), (250, 3, 1)]


@pytest.mark.parametrize("trans_a", [False, True], ids=["a", "aT"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["b", "bT"])
@pytest.mark.parametrize("m,n,k", SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in SHAPES])
def test_sgemm_shapes(kernels, rng, m, n, k, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    out = kernels.matmul(a, b, trans_a, trans_b)
    assert out.shape == (m, n) and out.dtype == np.float32
    assert_gemm_close(out, ref_gemm(a, b, trans_a, trans_b), a, b, trans_a, trans_b, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("offset", [0, 1, 2], ids=["aligned", "off1", "off2"])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
def test_gemm_leading_dims_and_alignment(emu_module, rng, guarded, dtype, offset, trans_a,
                                         trans_b):
    # Row-padded operands (ld > row length) at aligned and misaligned addresses, through the
    # raw binding; sentinels around every buffer catch reads and writes out of bounds.
    m, n, k = 130, 67, 21
    pad = 3
    a_rows, a_cols = (k, m) if trans_a else (m, k)
    b_rows, b_cols = (n, k) if trans_b else (k, n)
    a_full = rng.standard_normal((a_rows, a_cols + pad)).astype(dtype)
    b_full = rng.standard_normal((b_rows, b_cols + pad)).astype(dtype)
    ga, gb = guarded(a_full, offset=16 + offset), guarded(b_full, offset=16 + offset)
    c0 = rng.standard_normal((m, n + pad)).astype(dtype)
    gc = guarded(c0, offset=16 + offset, fill=-7.0)
    fn = emu_module.sgemm if dtype == np.float32 else emu_module.dgemm
    alpha, beta = 0.5, -1.5
    fn(trans_a, trans_b, m, n, k, alpha, ga.array.ctypes.data, a_cols + pad, 0,
       gb.array.ctypes.data, b_cols + pad, 0, beta, gc.array.ctypes.data, n + pad, 0, 1, 0)
    a, b = a_full[:, :a_cols], b_full[:, :b_cols]
    ref = alpha * ref_gemm(a, b, trans_a, trans_b) + beta * c0[:, :n].astype(np.float64)
    assert_gemm_close(gc.array[:, :n], ref, a, b, trans_a, trans_b, dtype)
    np.testing.assert_array_equal(gc.array[:, n:], c0[:, n:])  # padding columns untouched
    for g in (ga, gb, gc):
        g.check()


def test_gemm_beta_zero_ignores_nan(emu_module, rng):
    m, n, k = 9, 10, 11
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = np.full((m, n), np.nan, dtype=np.float32)
    emu_module.sgemm(False, False, m, n, k, 1.0, a.ctypes.data, k, 0, b.ctypes.data, n, 0, 0.0,
                     c.ctypes.data, n, 0, 1, 0)
    assert_gemm_close(c, ref_gemm(a, b, False, False), a, b, False, False, np.float32)


def test_gemm_k_zero_scales_c(emu_module):
    c = np.arange(12, dtype=np.float32).reshape(3, 4)
    expect = 2.0 * c
    a = np.zeros((3, 1), np.float32)
    emu_module.sgemm(False, False, 3, 4, 0, 1.0, a.ctypes.data, 1, 0, a.ctypes.data, 4, 0, 2.0,
                     c.ctypes.data, 4, 0, 1, 0)
    np.testing.assert_array_equal(c, expect)


@pytest.mark.parametrize("a_shape,b_shape", [((3, 5, 7), (3, 7, 4)), ((2, 1, 9, 6), (4, 6, 5)),
                                             ((17, 3), (2, 3, 3, 2)), ((0, 4, 5), (5, 2))])
def test_batched_broadcast(kernels, rng, a_shape, b_shape):
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    out = kernels.matmul(a, b)
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert out.shape == ref.shape
    if out.size:
        bound = np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64))
        tol = 4 * np.finfo(np.float32).eps * (a.shape[-1] + 2) * bound
        assert np.all(np.abs(out - ref) <= tol)


def test_non_contiguous_inputs(kernels, rng):
    a = rng.standard_normal((40, 30)).astype(np.float32)[::2, ::3]  # 20 x 10, strided
    b = rng.standard_normal((10, 24)).astype(np.float32).T.copy().T  # F-ordered 10 x 24
    out = kernels.matmul(a, b)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", [dict(m=-1), dict(lda=2), dict(ldb=1), dict(ldc=3)])
def test_bad_arguments_raise_value_error(emu_module, bad):
    args = dict(trans_a=False, trans_b=False, m=4, n=5, k=6, alpha=1.0, a=0, lda=6, stride_a=0,
                b=0, ldb=5, stride_b=0, beta=0.0, c=0, ldc=5, stride_c=0, batch=1, stream=0)
    args.update(bad)
    with pytest.raises(ValueError, match="sgemm_cuda"):
        emu_module.sgemm(**args)


def test_dtype_mismatch_is_type_error(kernels):
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float64))
