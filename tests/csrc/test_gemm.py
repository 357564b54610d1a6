"""pydl._C.gemm / pydl._C.matmul (csrc/gemm.cpp) against a float64 einsum reference.

Every case runs on every SIMD path (AVX-512 and AVX2+FMA where the CPU has them, skipped where
it does not, and the portable C++ one), on random shapes that include 0, 1, primes, sizes around
the micro-tiles (AVX2 6 x 16 / 6 x 8, AVX-512 14 x 32 / 14 x 16) and cache blocks (KC = 256,
MC = 144/72 and 168/84), and the skinny shapes convolutions produce.
"""
from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from pydl import _C

# Norm-wise relative error bounds from the issue: max|C - ref| / max|ref|.
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]
PATHS = ["avx512", "avx2+fma", "portable"]


@pytest.fixture(params=PATHS)
def simd(request):
    if request.param not in _C.available_simd_paths():
        pytest.skip(f"{request.param} kernels need a CPU (and build) that has them")
    _C.set_simd_path(request.param)
    yield request.param
    _C.set_simd_path("auto")


@pytest.fixture
def threads():
    """Restores the thread count a test changes."""
    before = _C.num_threads()
    yield
    _C.set_num_threads(before)


def reference(a, b, c=None, alpha=1.0, beta=0.0, trans_a=False, trans_b=False):
    """alpha * op(a) @ op(b) + beta * c in float64, by einsum (no BLAS, not the code under test)."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    a_sub = "...ki" if trans_a else "...ik"
    b_sub = "...jk" if trans_b else "...kj"
    out = alpha * np.einsum(f"{a_sub},{b_sub}->...ij", a64, b64)
    if c is not None and beta != 0.0:
        out = out + beta * np.asarray(c, dtype=np.float64)
    return out


def assert_close(actual, expected, dtype, what=""):
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    if expected.size == 0:
        return
    scale = np.abs(expected).max()
    err = np.abs(actual.astype(np.float64) - expected).max()
    if scale == 0.0:
        assert err == 0.0
    else:
        assert err / scale < RTOL[dtype], f"{what} relative error {err / scale:.3g}"


def random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def operands(rng, m, n, k, dtype, trans_a, trans_b):
    a = random(rng, (k, m) if trans_a else (m, k), dtype)
    b = random(rng, (n, k) if trans_b else (k, n), dtype)
    return a, b


# (m, n, k): empty, ones, primes, edges of the 6 x 16 / 6 x 8 tile and of KC = 256, skinny and
# fat, and the convolution shapes from the issue (4096 x 27 @ 27 x 64, 64 x 2304 @ 2304 x 256).
SHAPES = [
    (0, 5, 3),
    (5, 0, 3),
    (5, 3, 0),
    (0, 0, 0),
    (1, 1, 1),
    (1, 7, 1),
    (7, 1, 5),
    (1, 1, 300),
    (6, 16, 256),
    (7, 17, 257),
    (13, 17, 19),
    (31, 37, 41),
    (97, 61, 523),
    (1031, 29, 67),
    (3, 1031, 5),
    (149, 2, 1031),
    (4096, 64, 27),
    (64, 256, 2304),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("m,n,k", SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in SHAPES])
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
def test_gemm_matches_reference(simd, dtype, m, n, k, trans_a, trans_b):
    rng = np.random.default_rng(m * 7919 + n * 104729 + k + 2 * trans_a + trans_b)
    a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
    out = _C.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    assert out.flags.c_contiguous
    assert_close(out, reference(a, b, trans_a=trans_a, trans_b=trans_b), dtype)


# (m, n, k) around the micro-tile edges: m near multiples of 6 and 14 (MR), n near multiples of
# 8, 16 and 32 (NR; float32 AVX-512 has two 16-lane vectors per row, so n = 17 leaves one lane in
# the second), k near the 8- and 16-step groups of the transposing packs and KC = 256, and m
# past one MC block (168 / 84 rows on AVX-512, 144 / 72 on AVX2).
EDGE_SHAPES = [
    (13, 15, 7),
    (14, 16, 8),
    (15, 17, 9),
    (27, 31, 15),
    (28, 32, 16),
    (29, 33, 17),
    (41, 47, 23),
    (42, 48, 31),
    (43, 49, 33),
    (85, 63, 255),
    (169, 65, 257),
    (337, 97, 1),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("m,n,k", EDGE_SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in EDGE_SHAPES])
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
def test_gemm_tile_edges_update_only_c(simd, dtype, m, n, k, trans_a, trans_b):
    """Partial micro-tiles read and write exactly the m x n corner of C (masked on AVX-512).

    C is a window into a larger array whose other elements are sentinels: beta != 0 makes the
    kernel read C, and any load or store past the last row or column would change or pick up a
    sentinel."""
    rng = np.random.default_rng(m * 31 + n * 17 + k + 2 * trans_a + trans_b)
    a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
    big = np.full((m + 2, n + 37), 7.0e3, dtype=dtype)
    c = big[1:m + 1, 3:n + 3]
    c[...] = random(rng, (m, n), dtype)
    expected = reference(a, b, c, 0.75, -0.5, trans_a=trans_a, trans_b=trans_b)
    sentinel = big.copy()
    sentinel[1:m + 1, 3:n + 3] = 0.0
    out = _C.gemm(a, b, c, alpha=0.75, beta=-0.5, trans_a=trans_a, trans_b=trans_b)
    assert np.shares_memory(out, big)
    assert_close(c, expected, dtype)
    outside = big.copy()
    outside[1:m + 1, 3:n + 3] = 0.0
    np.testing.assert_array_equal(outside, sentinel)


# Micro-tile (MR, NR) of each path and dtype: every m in 1..2*MR+1 and n in 1..2*NR+1 is run.
TILES = {("avx512", np.float32): (14, 32), ("avx512", np.float64): (14, 16),
         ("avx2+fma", np.float32): (6, 16), ("avx2+fma", np.float64): (6, 8),
         ("portable", np.float32): (4, 8), ("portable", np.float64): (4, 4)}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
def test_gemm_every_edge_size(simd, dtype, trans_a, trans_b):
    """Every m in 1..2*MR+1, n in 1..2*NR+1 and k in {1, 2, 5, 17} of the path's micro-tile,
    so each edge kernel (rows 1..MR, one or two vectors, masked or not; the unpacked small
    path on AVX2 and the packed one) runs, each into a window of C surrounded by sentinels,
    with beta != 0 so C is read too. Operands are views into larger arrays (row stride > k)."""
    mr, nr = TILES[(simd, dtype)]
    rng = np.random.default_rng(2 * trans_a + trans_b)
    m_max, n_max, k_max = 2 * mr + 1, 2 * nr + 1, 17
    a_full = random(rng, (m_max, k_max + 3), dtype)[:, :k_max]
    b_full = random(rng, (k_max, n_max + 5), dtype)[:, :n_max]
    a_store = np.ascontiguousarray(a_full.T) if trans_a else a_full  # k x m when transposed
    b_store = np.ascontiguousarray(b_full.T) if trans_b else b_full  # n x k when transposed
    c_init = random(rng, (m_max, n_max), dtype)
    for k in (1, 2, 5, 17):
        ref_k = 0.75 * (a_full[:, :k].astype(np.float64) @ b_full[:k].astype(np.float64)) \
            - 0.5 * c_init.astype(np.float64)
        for m in range(1, m_max + 1):
            a = a_store[:k, :m] if trans_a else a_store[:m, :k]
            for n in range(1, n_max + 1):
                b = b_store[:n, :k] if trans_b else b_store[:k, :n]
                big = np.full((m + 2, n + 9), 7.0e3, dtype=dtype)
                c = big[1:m + 1, 3:n + 3]
                c[...] = c_init[:m, :n]
                _C.gemm(a, b, c, alpha=0.75, beta=-0.5, trans_a=trans_a, trans_b=trans_b)
                assert_close(c, ref_k[:m, :n], dtype, f"m={m} n={n} k={k}:")
                big[1:m + 1, 3:n + 3] = 7.0e3
                assert (big == 7.0e3).all(), f"m={m} n={n} k={k}: wrote outside C"


# Shapes on both sides of the AVX2 limits in gemm.cpp: the unpacked small-product path (at most
# 4e6 multiply-adds, op(B) contiguous along n; B copied to a padded buffer when its row stride
# is a multiple of 512 bytes and its K block is over 16 KiB; K-blocked when k > 256, beta
# applied once), A read in place (up to 256 rows, row stride not a multiple of 512 bytes) or
# packed; LeNet's and the conv im2col products; one and two threads (a rectangle of C per
# thread).
DIRECT_SHAPES = [
    (64, 120, 400),  # LeNet fc: unpacked, two K blocks
    (64, 16, 150),  # LeNet conv2 im2col: unpacked, whole B block in L1
    (576, 6, 25),  # LeNet conv1 im2col
    (128, 128, 128),  # B row stride 512 bytes (float32): B rows copied
    (127, 129, 131),
    (40, 256, 300),  # row stride 1 KiB (float32) / 2 KiB (float64): copied, two K blocks
    (7, 13, 600),  # three K blocks, unpacked
    (8, 8, 4096),  # 16 K blocks, two accumulator sets per tile
    (100, 200, 300),  # over 4e6: packed B, A packed (AVX2) or read in place (AVX-512)
    (64, 40, 2048),  # over 4e6, A row stride 8 / 16 KiB
    (64, 256, 2304),  # A row stride 9 / 18 KiB
    (257, 255, 200),  # over 256 rows
    (16, 512, 2304),  # VGG conv4's weight product, 19M: packed, split by columns
    (5, 4100, 700),  # 5 rows (one partial tile of rows), a ragged last column tile
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("m,n,k", DIRECT_SHAPES, ids=[f"{m}x{n}x{k}" for m, n, k in DIRECT_SHAPES])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_gemm_small_path_limits(simd, threads, dtype, m, n, k, n_threads):
    _C.set_num_threads(n_threads)
    rng = np.random.default_rng(m + n + k)
    for trans_a in (False, True):
        a, b = operands(rng, m, n, k, dtype, trans_a, False)
        c = random(rng, (m, n), dtype)
        expected = reference(a, b, c, -1.25, 0.5, trans_a=trans_a)
        _C.gemm(a, b, c, alpha=-1.25, beta=0.5, trans_a=trans_a)
        assert_close(c, expected, dtype, f"trans_a={trans_a}:")
        out = _C.gemm(a, b, trans_a=trans_a)  # beta == 0: C is not read
        assert_close(out, reference(a, b, trans_a=trans_a), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("m", [97, 107])
def test_gemm_row_major_a_read_in_place_or_packed(simd, dtype, m, threads):
    """Row-major op(A) up to 2^20 elements is read unpacked by the AVX-512 kernels, bigger ones
    are packed: m = 97 and 107 with k = 10007 fall on either side (one thread, so the whole
    product is one rectangle), through 40 KC blocks, with a row-strided view of A (lda > k) and
    partial bottom tiles (13 and 9 rows of 14). The other paths run the same products."""
    _C.set_num_threads(1)
    rng = np.random.default_rng(m)
    k, n = 10007, 37
    a = random(rng, (m, k + 5), dtype)[:, 3:k + 3]
    b = random(rng, (k, n), dtype)
    c = random(rng, (m, n), dtype)
    expected = reference(a, b, c, 1.5, 0.5)
    _C.gemm(a, b, c, alpha=1.5, beta=0.5)
    assert_close(c, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, -1.5), (-2.0, 0.0), (1.0, 0.25)])
@pytest.mark.parametrize("k", [1, 19, 600])  # 600: three KC blocks, beta applied once
def test_gemm_alpha_beta_in_place(simd, dtype, alpha, beta, k):
    rng = np.random.default_rng(k)
    m, n = 23, 37
    a, b = operands(rng, m, n, k, dtype, False, True)
    c = random(rng, (m, n), dtype)
    expected = reference(a, b, c, alpha, beta, trans_b=True)
    out = _C.gemm(a, b, c, alpha=alpha, beta=beta, trans_b=True)
    assert out is c
    assert_close(c, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("m,n,k", [(0, 5, 3), (4, 0, 3), (0, 0, 0), (3, 5, 0)])
def test_gemm_empty_shapes_with_c(simd, dtype, m, n, k):
    c = np.full((m, n), 2.0, dtype)
    out = _C.gemm(np.ones((m, k), dtype), np.ones((k, n), dtype), c, beta=0.5)
    assert out is c
    assert_close(c, np.full((m, n), 1.0), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_gemm_beta_zero_ignores_nan_in_c(simd, dtype):
    rng = np.random.default_rng(1)
    a, b = operands(rng, 13, 20, 9, dtype, False, False)
    c = np.full((13, 20), np.nan, dtype=dtype)
    _C.gemm(a, b, c, alpha=2.0, beta=0.0)
    assert_close(c, reference(a, b, alpha=2.0), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("beta", [0.0, 1.0, 3.0])
def test_gemm_alpha_zero_or_k_zero_scales_c(simd, dtype, beta):
    rng = np.random.default_rng(2)
    a = np.full((7, 5), np.nan, dtype=dtype)  # alpha == 0: A and B are not read (BLAS rule)
    b = random(rng, (5, 11), dtype)
    c = random(rng, (7, 11), dtype)
    expected = beta * c.astype(np.float64)
    _C.gemm(a, b, c, alpha=0.0, beta=beta)
    assert_close(c, expected, dtype)

    c = random(rng, (7, 11), dtype)
    expected = beta * c.astype(np.float64)
    _C.gemm(np.ones((7, 0), dtype), np.ones((0, 11), dtype), c, alpha=1.0, beta=beta)
    assert_close(c, expected, dtype)


def strided_views(rng, rows, cols, dtype):
    """Differently laid-out arrays holding a rows x cols matrix (name, array)."""
    base = random(rng, (rows, cols), dtype)
    big = random(rng, (2 * rows + 1, 3 * cols + 2), dtype)
    big[1 : 2 * rows + 1 : 2, 2 : 3 * cols + 2 : 3] = base
    wide = random(rng, (rows, cols + 5), dtype)
    wide[:, 3 : cols + 3] = base
    yield "contiguous", base
    yield "row-slice", wide[:, 3 : cols + 3]  # unit column stride, row stride cols + 5
    yield "fortran", np.asfortranarray(base)  # unit row stride: read as a transpose
    yield "transposed", np.ascontiguousarray(base.T).T
    yield "both-strided", big[1 : 2 * rows + 1 : 2, 2 : 3 * cols + 2 : 3]  # copied
    yield "reversed", base[::-1, ::-1].copy()[::-1, ::-1]  # negative strides: copied


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
def test_gemm_noncontiguous_inputs(simd, dtype, trans_a, trans_b):
    rng = np.random.default_rng(3)
    m, n, k = 29, 41, 37
    a_shape = (k, m) if trans_a else (m, k)
    b_shape = (n, k) if trans_b else (k, n)
    for a_name, a in strided_views(rng, *a_shape, dtype):
        for b_name, b in strided_views(rng, *b_shape, dtype):
            out = _C.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
            expected = reference(a, b, trans_a=trans_a, trans_b=trans_b)
            assert_close(out, expected, dtype, f"a {a_name}, b {b_name}:")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_gemm_negative_and_zero_strides(simd, dtype):
    rng = np.random.default_rng(4)
    a = random(rng, (19, 23), dtype)[::-1, ::-1]  # negative strides: copied
    b = np.broadcast_to(random(rng, (1, 7), dtype), (23, 7))  # row stride 0: read in place
    assert_close(_C.gemm(a, b), reference(a, b), dtype)
    b = np.broadcast_to(random(rng, (23, 1), dtype), (23, 7))  # column stride 0: copied
    assert_close(_C.gemm(a, b), reference(a, b), dtype)


def misaligned(x):
    """A copy of x whose data pointer is 1 byte off its element alignment."""
    raw = np.zeros(x.nbytes + 1, dtype=np.uint8)
    out = raw[1:].view(x.dtype).reshape(x.shape)
    out[...] = x
    assert out.ctypes.data % x.itemsize != 0
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_gemm_misaligned_inputs_are_copied(simd, dtype):
    rng = np.random.default_rng(11)
    a, b = operands(rng, 9, 14, 11, dtype, False, True)
    a, b = misaligned(a), misaligned(b)
    assert_close(_C.gemm(a, b, trans_b=True), reference(a, b, trans_b=True), dtype)
    assert_close(_C.matmul(a[None], b, trans_b=True), reference(a[None], b, trans_b=True), dtype)
    with pytest.raises(ValueError, match="c is not aligned"):
        _C.gemm(a, b, misaligned(np.zeros((9, 14), dtype)), trans_b=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_gemm_c_row_slice_leaves_rest_untouched(simd, dtype):
    rng = np.random.default_rng(5)
    a, b = operands(rng, 17, 10, 8, dtype, False, False)
    big = random(rng, (17, 30), dtype)
    before = big.copy()
    c = big[:, 5:15]
    expected = reference(a, b, c, 1.0, 0.5)
    out = _C.gemm(a, b, c, beta=0.5)
    assert out is c
    assert_close(big[:, 5:15], expected, dtype)
    np.testing.assert_array_equal(big[:, :5], before[:, :5])
    np.testing.assert_array_equal(big[:, 15:], before[:, 15:])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_gemm_c_overlapping_an_input(simd, dtype):
    rng = np.random.default_rng(6)
    a = random(rng, (40, 40), dtype)
    b = random(rng, (40, 40), dtype)
    expected = reference(a, b, a, 1.0, 1.0)
    out = _C.gemm(a, b, a, beta=1.0)  # a += a @ b: a must be read before it is written
    assert out is a
    assert_close(a, expected, dtype)


@pytest.mark.parametrize("n_threads", [1, 2, 3, 5])
def test_gemm_thread_counts(simd, threads, n_threads):
    """Every split of C over threads (grids tm x tn, uneven edges) gives the same product.

    The products are large enough (> 5 x 5M multiply-adds) that the kernel splits them: by rows
    (tall C), by columns (wide C), or both when there are more threads than micro-tiles along
    one side (7 columns, 5 threads)."""
    _C.set_num_threads(n_threads)
    rng = np.random.default_rng(n_threads)
    for m, n, k in [(2501, 7, 1499), (7, 2501, 1499), (301, 293, 307), (200, 500, 1100),
                    (60, 200, 9000)]:
        a, b = operands(rng, m, n, k, np.float32, False, False)
        assert_close(_C.gemm(a, b), reference(a, b), np.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("m,n,k,trans_a,trans_b", [
    (151, 160, 200, True, False),  # 4.8M: packed whole, each half small enough to skip packing
    (301, 100, 200, True, False),  # tall: split by rows, bottom edge tile of 1 row
    (151, 160, 200, False, False),  # A read in place
    (256, 784, 256, False, True),  # split by columns into pieces, A read in place
    (784, 256, 256, True, False),  # split by rows into pieces
    (256, 256, 784, False, False),  # split by columns, A packed (row stride 1 KiB)
    (97, 301, 203, True, True),
])
def test_gemm_same_bits_for_any_thread_count(simd, threads, dtype, m, n, k, trans_a, trans_b):
    """1, 2, 3 and 4 threads give bitwise the same C, and it matches the reference.

    The kernels are chosen from the whole product's shape: a thread's share of 151 x 160 x 200
    is small enough for the unpacked path, whose short edge tiles add in another order than the
    packed kernel's, and choosing per share made float64 differ in the last bit between 1 and 2
    threads. The pieces threads take on demand are whole tiles, so who computes what cannot
    change the bits either."""
    rng = np.random.default_rng(m + n + k)
    a, b = operands(rng, m, n, k, dtype, trans_a, trans_b)
    results = set()
    for n_threads in (1, 2, 3, 4):
        _C.set_num_threads(n_threads)
        out = _C.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
        assert_close(out, reference(a, b, trans_a=trans_a, trans_b=trans_b), dtype)
        results.add(out.tobytes())
    assert len(results) == 1


def test_gemm_huge_k_per_thread_grid(simd, threads):
    """Huge k split over threads: each thread's rectangle runs its many KC blocks.

    k = 2^19 + 1 (2049 KC blocks, each accumulating into C with beta = 1) with C split by rows
    (tall case) or columns (wide case) on every path's tile (6 x 8, 14 x 16 and 4 x 4 float64):
    at least two micro-tiles along the split side. The broadcast (stride-0) operands keep memory
    small and give cheap exact references. float64 only: half a million float32 terms accumulate ~k * eps rounding,
    past the 1e-5 bound that holds for the layer-sized k of the other tests (the threading code
    is dtype-independent)."""
    dtype = np.float64
    _C.set_num_threads(2)
    rng = np.random.default_rng(10)
    k = (1 << 19) + 1
    a = rng.random((30, k)).astype(dtype)  # tall: 30 rows of C, 16 columns
    b_row = rng.random(16).astype(dtype)
    b = np.broadcast_to(b_row, (k, 16))  # row stride 0: op(B)[p, j] = b_row[j]
    expected = np.outer(a.astype(np.float64).sum(axis=1), b_row.astype(np.float64))
    assert_close(_C.gemm(a, b), expected, dtype)

    a_col = rng.random(18).astype(dtype)
    a = np.broadcast_to(a_col[:, None], (18, k))  # column stride 0: read transposed, lda = 0
    b_row = rng.random(64).astype(dtype)
    b = np.broadcast_to(b_row, (k, 64))  # wide: 18 rows of C, 64 columns
    expected = k * np.outer(a_col.astype(np.float64), b_row.astype(np.float64))
    assert_close(_C.gemm(a, b), expected, dtype)


def test_gemm_concurrent_python_threads(simd):
    """Calls from several Python threads at once (the GIL is released) stay independent."""
    rng = np.random.default_rng(7)
    cases = [operands(rng, 120 + i, 90, 70 + 3 * i, np.float64, i % 2 == 1, False) for i in range(4)]
    results = [None] * len(cases)

    def work(i):
        a, b = cases[i]
        for _ in range(5):
            results[i] = _C.gemm(a, b, trans_a=(i % 2 == 1))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for i, (a, b) in enumerate(cases):
        assert_close(results[i], reference(a, b, trans_a=(i % 2 == 1)), np.float64)


# ---- matmul (batched, broadcast) -----------------------------------------------------------

BATCH_CASES = [
    # a shape, b shape (both before the transpose flags)
    ((3, 5, 4), (3, 4, 6)),
    ((2, 1, 5, 4), (3, 4, 7)),  # broadcast: (2, 1) with (3,) -> (2, 3)
    ((5, 4), (2, 3, 4, 6)),  # 2-D a against a batch
    ((4, 1, 3, 2), (1, 5, 2, 1)),
    ((0, 5, 4), (4, 6)),  # zero-size batch
    ((2, 5, 0), (2, 0, 3)),  # k == 0: zeros
    ((2, 0, 4), (1, 4, 3)),  # m == 0
    ((64, 7, 3), (64, 3, 5)),  # many small items: threads over the batch
    ((3, 130, 140), (3, 140, 120)),  # few large items: threads inside each product
    ((2, 3, 1, 11), (11, 13)),
]


def transpose_last(x):
    return np.swapaxes(x, -1, -2)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("a_shape,b_shape", BATCH_CASES,
                         ids=[f"{a}@{b}".replace(" ", "") for a, b in BATCH_CASES])
@pytest.mark.parametrize("trans_a", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["B", "Bt"])
def test_matmul_batched_broadcast(simd, dtype, a_shape, b_shape, trans_a, trans_b):
    rng = np.random.default_rng(len(a_shape) * 10 + len(b_shape))
    a = random(rng, a_shape, dtype)
    b = random(rng, b_shape, dtype)
    # The flags transpose the stored last two dims: store the transposes so op() gives back a, b.
    a_in = np.ascontiguousarray(transpose_last(a)) if trans_a else a
    b_in = np.ascontiguousarray(transpose_last(b)) if trans_b else b
    out = _C.matmul(a_in, b_in, trans_a=trans_a, trans_b=trans_b)
    assert out.flags.c_contiguous
    assert_close(out, reference(a, b), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_matmul_noncontiguous_batches(simd, dtype):
    rng = np.random.default_rng(8)
    a = random(rng, (6, 9, 7), dtype)[::2]  # batch stride 2 matrices
    b = transpose_last(random(rng, (3, 5, 7), dtype))  # transposed view: no copy, flag flipped
    assert_close(_C.matmul(a, b), reference(a, b), dtype)
    a = random(rng, (4, 9, 14), dtype)[:, :, ::2]  # both matrix strides > 1: copied
    b = np.broadcast_to(random(rng, (7, 5), dtype), (4, 7, 5))  # stride-0 batch
    assert_close(_C.matmul(a, b), reference(a, b), dtype)
    a = random(rng, (5, 3, 4), dtype)[::-1]  # negative batch stride
    b = random(rng, (4, 2), dtype)
    assert_close(_C.matmul(a, b), reference(a, b), dtype)


def test_matmul_autograd_forms():
    """Backward of C = A @ B without copies: dA = dC @ B^T, dB = A^T @ dC."""
    rng = np.random.default_rng(9)
    a = random(rng, (4, 6, 5), np.float64)
    b = random(rng, (4, 5, 3), np.float64)
    dc = random(rng, (4, 6, 3), np.float64)
    da = _C.matmul(dc, b, trans_b=True)
    db = _C.matmul(a, dc, trans_a=True)
    assert_close(da, np.einsum("bij,bkj->bik", dc, b), np.float64)
    assert_close(db, np.einsum("bki,bkj->bij", a, dc), np.float64)


# ---- Bad input -----------------------------------------------------------------------------


def test_gemm_rejects_mixed_or_integer_dtypes():
    a32 = np.ones((2, 3), np.float32)
    b64 = np.ones((3, 2), np.float64)
    with pytest.raises(TypeError, match=r"a\.dtype=float32, b\.dtype=float64"):
        _C.gemm(a32, b64)
    with pytest.raises(TypeError, match=r"a\.dtype=int64"):
        _C.gemm(np.ones((2, 3), np.int64), np.ones((3, 2), np.int64))
    with pytest.raises(TypeError, match=r"c\.dtype=float64"):
        _C.gemm(a32, np.ones((3, 2), np.float32), np.ones((2, 2), np.float64))
    with pytest.raises(TypeError, match=r"must be a numpy\.ndarray, got list"):
        _C.gemm([[1.0]], np.ones((1, 1)))
    with pytest.raises(TypeError, match=r"native byte order"):
        _C.gemm(np.ones((2, 2), ">f4"), np.ones((2, 2), ">f4"))
    with pytest.raises(TypeError, match=r"a\.dtype=float32, b\.dtype=float64"):
        _C.matmul(a32, b64)


def test_gemm_rejects_bad_shapes():
    a = np.ones((3, 4))
    with pytest.raises(ValueError, match=re.escape(
            "gemm: op(a) is (3, 4) but op(b) is (5, 2): inner dimensions 4 and 5 differ")):
        _C.gemm(a, np.ones((5, 2)))
    with pytest.raises(ValueError, match=re.escape("op(a) is (4, 3)")):
        _C.gemm(a, np.ones((4, 2)), trans_a=True)
    with pytest.raises(ValueError, match=r"must be 2-D, got shapes \(3, 4\) and \(4,\)"):
        _C.gemm(a, np.ones(4))
    with pytest.raises(ValueError, match=re.escape("c has shape (3, 3) but op(a) @ op(b) is (3, 2)")):
        _C.gemm(a, np.ones((4, 2)), np.zeros((3, 3)))


def test_gemm_rejects_unusable_c():
    a, b = np.ones((3, 4)), np.ones((4, 2))
    c = np.zeros((3, 2))
    c.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _C.gemm(a, b, c)
    with pytest.raises(ValueError, match="unit stride along its last dimension"):
        _C.gemm(a, b, np.zeros((3, 4))[:, ::2])
    with pytest.raises(ValueError, match="unit stride along its last dimension"):
        _C.gemm(a, b, np.zeros((2, 3)).T)


def test_matmul_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shapes \(3,\) and \(3, 2\)"):
        _C.matmul(np.ones(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"inner dimensions 4 and 5 differ"):
        _C.matmul(np.ones((2, 3, 4)), np.ones((2, 5, 2)))
    with pytest.raises(ValueError, match=re.escape(
            "batch dimensions (2, 3) of a and (4,) of b cannot be broadcast")):
        _C.matmul(np.ones((2, 3, 2, 2)), np.ones((4, 2, 2)))
