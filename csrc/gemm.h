#pragma once
// General matrix multiply: C = alpha * op(A) @ op(B) + beta * C.
//
// Row-major storage with explicit leading dimensions (elements between consecutive rows), so a
// transposed or row-strided view is passed without copying: op(A) is m x k, op(B) is k x n and
// C is m x n. trans_a means A is stored k x m (row-major) and read transposed; likewise trans_b.
// beta == 0 overwrites C without reading it (NaNs already in C do not propagate), and
// alpha == 0 or k == 0 gives C = beta * C without reading A or B, as BLAS does. Any m, n, k >= 0;
// leading dimensions may be anything >= 0 (0 repeats one row, as a broadcast view does). Threads: splits work through parallel_for; runs inline when called from
// inside a parallel region.
//
// How it is computed (BLIS's five loops, see gemm.cpp): op(B) is packed in KC x NC panels and
// op(A) in MC x KC blocks into contiguous aligned buffers laid out for a register-blocked
// micro-kernel (AVX-512 14x32 float32 / 14x16 float64 in gemm_avx512.cpp when use_avx512(),
// else AVX2+FMA 6x16 / 6x8 in gemm_avx2.cpp when use_avx2(), else portable C++), which
// computes one MR x NR tile of C; on the AVX-512 path small products with row-major op(A) read
// A in place instead of packing it. On the AVX2 path products of at most 4e6 multiply-adds with
// op(B) contiguous along n pack nothing (sgemm_direct_avx2); bigger ones pack both operands.
// C must not overlap A or B.
#include <cstdint>

namespace pydl {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc);

void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc);

// Batched GEMM over a broadcast batch of `batch_ndim` dimensions of sizes batch_shape[0..):
// for every batch index tuple t, C_t = alpha * op(A_t) @ op(B_t) + beta * C_t, where
// A_t = a + sum_d t[d] * a_batch_strides[d] (strides in elements; 0 repeats the same matrix,
// which is how a broadcast batch dimension is passed), likewise B_t and C_t. Each matrix has the
// leading dimension and transpose flag of the 2-D form. Distinct t must give non-overlapping C_t.
// Small matrices are spread over threads by batch item, large ones thread inside each GEMM.
void sgemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                   int64_t ldc, int64_t batch_ndim, const int64_t* batch_shape,
                   const int64_t* a_batch_strides, const int64_t* b_batch_strides,
                   const int64_t* c_batch_strides);

void dgemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                   const double* a, int64_t lda, const double* b, int64_t ldb, double beta,
                   double* c, int64_t ldc, int64_t batch_ndim, const int64_t* batch_shape,
                   const int64_t* a_batch_strides, const int64_t* b_batch_strides,
                   const int64_t* c_batch_strides);

// ---- Internal: the interface between the driver (gemm.cpp) and its SIMD micro-kernels -------
namespace gemm_detail {

// Micro-kernel contract. a_panel holds an MR x kc sliver of op(A) packed column by column
// (a_panel[p * MR + i]), b_panel a kc x NR sliver of op(B) packed row by row (b_panel[p * NR + j],
// 64-byte aligned); both are zero-padded to full MR / NR. The kernel computes the MR x NR product
// and writes its top-left m_valid x n_valid corner to C (row stride ldc) as
// C = alpha * AB + beta * C, never reading C when beta == 0.
template <typename T>
using MicroKernel = void (*)(int64_t kc, const T* a_panel, const T* b_panel, T alpha, T beta, T* c,
                             int64_t ldc, int64_t m_valid, int64_t n_valid);
// A micro-kernel that reads op(A) unpacked: row i of the tile at a + i * lda, contiguous along
// p (a[i * lda + p]), rows below m_valid only; B packed as above.
template <typename T>
using DirectAMicroKernel = void (*)(int64_t kc, const T* a, int64_t lda, const T* b_panel,
                                    T alpha, T beta, T* c, int64_t ldc, int64_t m_valid,
                                    int64_t n_valid);

// Transposing pack of one full sliver of R lines that are each contiguous along p:
// dst[p * R + i] = src[i * ld + p] for i < R, p < kc (A stored m x k, or B stored n x k).
template <typename T>
using PackLinesFn = void (*)(T* dst, const T* src, int64_t ld, int64_t kc);

// AVX2+FMA kernels (gemm_avx2.cpp): call only when use_avx2() is true.
constexpr int kAvx2SgemmMR = 6, kAvx2SgemmNR = 16;
constexpr int kAvx2DgemmMR = 6, kAvx2DgemmNR = 8;
void sgemm_micro_6x16_avx2(int64_t kc, const float* a_panel, const float* b_panel, float alpha,
                           float beta, float* c, int64_t ldc, int64_t m_valid, int64_t n_valid);
void dgemm_micro_6x8_avx2(int64_t kc, const double* a_panel, const double* b_panel, double alpha,
                          double beta, double* c, int64_t ldc, int64_t m_valid, int64_t n_valid);
void sgemm_pack_lines6_avx2(float* dst, const float* src, int64_t ld, int64_t kc);
void sgemm_pack_lines16_avx2(float* dst, const float* src, int64_t ld, int64_t kc);
void dgemm_pack_lines6_avx2(double* dst, const double* src, int64_t ld, int64_t kc);
void dgemm_pack_lines8_avx2(double* dst, const double* src, int64_t ld, int64_t kc);

// Unpacked path for small products (AVX2+FMA): the whole m x n x k product with
// op(A)(i, p) = a[i * a_rs + p * a_cs] (any strides) and op(B)(p, j) = b[p * ldb + j] (rows
// contiguous along n), C = alpha * op(A) op(B) + beta * C; m, n, k > 0. Tiles of 6 rows x 16
// (float32) / 8 (float64) columns, edge tiles by kernels of their own size with masked last
// vectors (never a scalar loop), K-blocked by 256; a B whose row stride is a multiple of 512
// bytes is first copied row by row to a buffer with a stride that is not (L1 set conflicts).
template <typename T>
using DirectFn = void (*)(int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t a_rs,
                          int64_t a_cs, const T* b, int64_t ldb, T beta, T* c, int64_t ldc);
void sgemm_direct_avx2(int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                       int64_t a_rs, int64_t a_cs, const float* b, int64_t ldb, float beta,
                       float* c, int64_t ldc);
void dgemm_direct_avx2(int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                       int64_t a_rs, int64_t a_cs, const double* b, int64_t ldb, double beta,
                       double* c, int64_t ldc);

#ifdef PYDL_HAVE_AVX512_KERNELS
// AVX-512 F/BW/DQ/VL kernels (gemm_avx512.cpp): call only when use_avx512() is true.
constexpr int kAvx512SgemmMR = 14, kAvx512SgemmNR = 32;
constexpr int kAvx512DgemmMR = 14, kAvx512DgemmNR = 16;
void sgemm_micro_14x32_avx512(int64_t kc, const float* a_panel, const float* b_panel, float alpha,
                              float beta, float* c, int64_t ldc, int64_t m_valid,
                              int64_t n_valid);
void dgemm_micro_14x16_avx512(int64_t kc, const double* a_panel, const double* b_panel,
                              double alpha, double beta, double* c, int64_t ldc, int64_t m_valid,
                              int64_t n_valid);
// The same kernels reading op(A) unpacked: row i of the tile at a + i * lda, contiguous along k
// (A stored row-major); only rows below m_valid are read.
void sgemm_micro_14x32_direct_a_avx512(int64_t kc, const float* a, int64_t lda,
                                       const float* b_panel, float alpha, float beta, float* c,
                                       int64_t ldc, int64_t m_valid, int64_t n_valid);
void dgemm_micro_14x16_direct_a_avx512(int64_t kc, const double* a, int64_t lda,
                                       const double* b_panel, double alpha, double beta,
                                       double* c, int64_t ldc, int64_t m_valid, int64_t n_valid);
// Whole-block packs (R = MR for A, NR for B) with the layout and arguments of gemm.cpp's
// portable pack_block, op(X)(i, p) = src[i * rs + p * cs], partial last sliver included; the
// PackLinesFn argument is unused.
void sgemm_pack_a_avx512(float* dst, const float* src, int64_t rs, int64_t cs, int64_t extent,
                         int64_t kc, PackLinesFn<float> unused);
void sgemm_pack_b_avx512(float* dst, const float* src, int64_t rs, int64_t cs, int64_t extent,
                         int64_t kc, PackLinesFn<float> unused);
void dgemm_pack_a_avx512(double* dst, const double* src, int64_t rs, int64_t cs, int64_t extent,
                         int64_t kc, PackLinesFn<double> unused);
void dgemm_pack_b_avx512(double* dst, const double* src, int64_t rs, int64_t cs, int64_t extent,
                         int64_t kc, PackLinesFn<double> unused);
#endif

}  // namespace gemm_detail
}  // namespace pydl
