#pragma once
// Fused log-softmax + negative log-likelihood (cross-entropy with class-index targets) over the
// rows of an (m, c) logits matrix z, with optional class weights w (c), an ignore_index and
// label smoothing eps. Per row i with target y (W = sum_c w_c, w = 1 when absent):
//   lse_i  = log sum_c exp(z_ic), computed as max_c z_ic + log sum_c exp(z_ic - max): no overflow
//   loss_i = (1 - eps) w_y (lse_i - z_iy) + (eps / c) sum_c w_c (lse_i - z_ic)
// and loss_i = 0 when y == ignore_index. Backward, with p = exp(z - lse) = softmax(z):
//   dz_ic = coef_i [p_ic ((1 - eps) w_y + eps W / c) - (1 - eps) w_y [c == y] - (eps / c) w_c]
// (0 for ignored rows), coef_i the incoming gradient of loss_i.
//
// Forward saves two float64 numbers per row in stats (m, 2): shift = max_k z_ik and
// log_s = log sum_k exp(z_ik - shift) (lse = shift + log_s); backward recomputes the softmax
// as exp((z - shift) - log_s), exact for float32 logits of any magnitude.
// A target outside [0, c) that is not ignore_index throws std::out_of_range. Threads: rows are
// split through parallel_for.
#include <cstdint>

namespace pydl {

struct CrossEntropyTotals {
  double loss_sum;    // sum_i loss_i
  double weight_sum;  // sum over counted rows of w_y (the divisor of reduction='mean')
};

CrossEntropyTotals cross_entropy_forward_cpu(const float* z, const int64_t* target,
                                             const float* weight, int64_t m, int64_t c,
                                             int64_t ignore_index, double eps, float* loss,
                                             double* stats);
CrossEntropyTotals cross_entropy_forward_cpu(const double* z, const int64_t* target,
                                             const double* weight, int64_t m, int64_t c,
                                             int64_t ignore_index, double eps, double* loss,
                                             double* stats);

// coef has one value per row (coef_stride 1) or one value for every row (coef_stride 0).
void cross_entropy_backward_cpu(const float* z, const double* stats, const int64_t* target,
                                const float* weight, int64_t m, int64_t c, int64_t ignore_index,
                                double eps, const float* coef, int64_t coef_stride, float* dz);
void cross_entropy_backward_cpu(const double* z, const double* stats, const int64_t* target,
                                const double* weight, int64_t m, int64_t c, int64_t ignore_index,
                                double eps, const double* coef, int64_t coef_stride, double* dz);

// Internal: the row kernels built with AVX2+FMA (loss_avx2.cpp), called by loss.cpp only when
// use_avx2(). Rows [begin, end); each returns the first row with an out-of-range target, or -1.
int64_t ce_forward_rows_avx2(const float* z, const int64_t* target, const float* weight,
                             int64_t c, int64_t ignore_index, double eps, double w_total,
                             float* loss, double* stats, int64_t begin, int64_t end);
int64_t ce_forward_rows_avx2(const double* z, const int64_t* target, const double* weight,
                             int64_t c, int64_t ignore_index, double eps, double w_total,
                             double* loss, double* stats, int64_t begin, int64_t end);
int64_t ce_backward_rows_avx2(const float* z, const double* stats, const int64_t* target,
                              const float* weight, int64_t c, int64_t ignore_index, double eps,
                              double w_total, const float* coef, int64_t coef_stride, float* dz,
                              int64_t begin, int64_t end);
int64_t ce_backward_rows_avx2(const double* z, const double* stats, const int64_t* target,
                              const double* weight, int64_t c, int64_t ignore_index, double eps,
                              double w_total, const double* coef, int64_t coef_stride,
                              double* dz, int64_t begin, int64_t end);

}  // namespace pydl
