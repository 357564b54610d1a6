// Straightforward GEMM, correct for every shape; the packed AVX2 kernel replaces its hot path.
#include "gemm.h"

#include "parallel.h"

namespace pydl {
namespace {

template <typename T>
void gemm_simple(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                 int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  parallel_for(m, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T* ci = c + i * ldc;
      for (int64_t j = 0; j < n; ++j) ci[j] = beta == T(0) ? T(0) : beta * ci[j];
      for (int64_t p = 0; p < k; ++p) {
        T aip = alpha * (trans_a ? a[p * lda + i] : a[i * lda + p]);
        if (trans_b) {
          for (int64_t j = 0; j < n; ++j) ci[j] += aip * b[j * ldb + p];
        } else {
          const T* bp = b + p * ldb;
          for (int64_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
        }
      }
    }
  });
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc) {
  gemm_simple<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc) {
  gemm_simple<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace pydl
