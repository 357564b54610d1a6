// Fused cross-entropy forward and backward (formulas in loss.h; row loops in loss_rows.inl).
//
// One pass over each row forward (max, sum of exponentials, the loss terms) and one backward
// (softmax recomputed from z and the saved row statistics, minus the smoothed one-hot target).
// Against the vectorised NumPy version this removes ~15 temporaries and array calls per call,
// which dominate at training batch sizes (32 x 10 logits); with AVX2 the float32 exponentials
// run 8 at a time (loss_avx2.cpp), so large inputs keep up with NumPy's SIMD exp.
#include "loss.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "cpu_features.h"
#include "parallel.h"

namespace pydl {
namespace {

#include "loss_rows.inl"

// Whether to call the AVX2 row kernels (only built on x86-64).
bool avx2_rows() {
#ifdef PYDL_HAVE_AVX2_KERNELS
  return use_avx2();
#else
  return false;
#endif
}

// Rows per chunk: about 16K logits, below which a thread hand-off costs more than the work.
int64_t row_grain(int64_t c) {
  return std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(c, 1));
}

[[noreturn]] void throw_bad_target(int64_t t, int64_t row, int64_t c, int64_t ignore_index) {
  throw std::out_of_range("cross_entropy: target " + std::to_string(t) + " (row " +
                          std::to_string(row) + ") is out of bounds for " + std::to_string(c) +
                          " classes (ignore_index=" + std::to_string(ignore_index) + ")");
}

template <typename T>
double weight_total(const T* weight, int64_t c) {
  if (!weight) return double(c);
  double w = 0;
  for (int64_t k = 0; k < c; ++k) w += double(weight[k]);
  return w;
}

template <typename T>
CrossEntropyTotals forward(const T* z, const int64_t* target, const T* weight, int64_t m,
                           int64_t c, int64_t ignore_index, double eps, T* loss, double* stats) {
  const double w_total = weight_total(weight, c);
  const bool avx2 = avx2_rows();
  parallel_for(m, row_grain(c), [&](int64_t begin, int64_t end) {
    int64_t bad;
#ifdef PYDL_HAVE_AVX2_KERNELS
    if (avx2) {
      bad = ce_forward_rows_avx2(z, target, weight, c, ignore_index, eps, w_total, loss, stats,
                                 begin, end);
    } else
#endif
    {
      bad = ce_forward_rows(z, target, weight, c, ignore_index, eps, w_total, loss, stats, begin,
                            end);
    }
    if (bad >= 0) throw_bad_target(target[bad], bad, c, ignore_index);
  });
  CrossEntropyTotals totals{0.0, 0.0};
  for (int64_t i = 0; i < m; ++i) {
    const int64_t t = target[i];
    if (t == ignore_index) continue;
    totals.loss_sum += double(loss[i]);
    totals.weight_sum += weight ? double(weight[t]) : 1.0;
  }
  return totals;
}

template <typename T>
void backward(const T* z, const double* stats, const int64_t* target, const T* weight, int64_t m,
              int64_t c, int64_t ignore_index, double eps, const T* coef, int64_t coef_stride,
              T* dz) {
  const double w_total = weight_total(weight, c);
  const bool avx2 = avx2_rows();
  parallel_for(m, row_grain(c), [&](int64_t begin, int64_t end) {
    int64_t bad;
#ifdef PYDL_HAVE_AVX2_KERNELS
    if (avx2) {
      bad = ce_backward_rows_avx2(z, stats, target, weight, c, ignore_index, eps, w_total, coef,
                                  coef_stride, dz, begin, end);
    } else
#endif
    {
      bad = ce_backward_rows(z, stats, target, weight, c, ignore_index, eps, w_total, coef,
                             coef_stride, dz, begin, end);
    }
    if (bad >= 0) throw_bad_target(target[bad], bad, c, ignore_index);
  });
}

}  // namespace

CrossEntropyTotals cross_entropy_forward_cpu(const float* z, const int64_t* target,
                                             const float* weight, int64_t m, int64_t c,
                                             int64_t ignore_index, double eps, float* loss,
                                             double* stats) {
  return forward(z, target, weight, m, c, ignore_index, eps, loss, stats);
}
CrossEntropyTotals cross_entropy_forward_cpu(const double* z, const int64_t* target,
                                             const double* weight, int64_t m, int64_t c,
                                             int64_t ignore_index, double eps, double* loss,
                                             double* stats) {
  return forward(z, target, weight, m, c, ignore_index, eps, loss, stats);
}
void cross_entropy_backward_cpu(const float* z, const double* stats, const int64_t* target,
                                const float* weight, int64_t m, int64_t c, int64_t ignore_index,
                                double eps, const float* coef, int64_t coef_stride, float* dz) {
  backward(z, stats, target, weight, m, c, ignore_index, eps, coef, coef_stride, dz);
}
void cross_entropy_backward_cpu(const double* z, const double* stats, const int64_t* target,
                                const double* weight, int64_t m, int64_t c, int64_t ignore_index,
                                double eps, const double* coef, int64_t coef_stride,
                                double* dz) {
  backward(z, stats, target, weight, m, c, ignore_index, eps, coef, coef_stride, dz);
}

}  // namespace pydl
