#pragma once
// General matrix multiply: C = alpha * op(A) @ op(B) + beta * C.
//
// Row-major storage with explicit leading dimensions (elements between consecutive rows), so a
// transposed or row-strided view is passed without copying: op(A) is m x k, op(B) is k x n and
// C is m x n. trans_a means A is stored k x m (row-major) and read transposed; likewise trans_b.
// beta == 0 overwrites C without reading it (NaNs already in C do not propagate), as BLAS does.
// Any m, n, k >= 0. Threads: splits work through parallel_for; runs inline when called from
// inside a parallel region.
#include <cstdint>

namespace pydl {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc);

void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc);

}  // namespace pydl
