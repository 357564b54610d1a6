// The cross-entropy row kernels of loss_rows.inl compiled with -mavx2 -mfma, with the float32
// rows exponentiated 8 lanes at a time. Called by loss.cpp only when use_avx2() is true.
#include "loss.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <immintrin.h>

namespace pydl {
namespace {

#define PYDL_LOSS_ROWS_AVX2 1
#include "loss_rows.inl"

}  // namespace

int64_t ce_forward_rows_avx2(const float* z, const int64_t* target, const float* weight,
                             int64_t c, int64_t ignore_index, double eps, double w_total,
                             float* loss, double* stats, int64_t begin, int64_t end) {
  return ce_forward_rows(z, target, weight, c, ignore_index, eps, w_total, loss, stats, begin,
                         end);
}
int64_t ce_forward_rows_avx2(const double* z, const int64_t* target, const double* weight,
                             int64_t c, int64_t ignore_index, double eps, double w_total,
                             double* loss, double* stats, int64_t begin, int64_t end) {
  return ce_forward_rows(z, target, weight, c, ignore_index, eps, w_total, loss, stats, begin,
                         end);
}
int64_t ce_backward_rows_avx2(const float* z, const double* stats, const int64_t* target,
                              const float* weight, int64_t c, int64_t ignore_index, double eps,
                              double w_total, const float* coef, int64_t coef_stride, float* dz,
                              int64_t begin, int64_t end) {
  return ce_backward_rows(z, stats, target, weight, c, ignore_index, eps, w_total, coef,
                          coef_stride, dz, begin, end);
}
int64_t ce_backward_rows_avx2(const double* z, const double* stats, const int64_t* target,
                              const double* weight, int64_t c, int64_t ignore_index, double eps,
                              double w_total, const double* coef, int64_t coef_stride,
                              double* dz, int64_t begin, int64_t end) {
  return ce_backward_rows(z, stats, target, weight, c, ignore_index, eps, w_total, coef,
                          coef_stride, dz, begin, end);
}

}  // namespace pydl
