#pragma once
// AVX2+FMA loops for batchnorm.cpp, float32 only. They live in batchnorm_avx2.cpp, the only
// batch-norm file compiled with -mavx2 -mfma; batchnorm.cpp calls them only when use_avx2() is
// true and runs its portable loops otherwise. Same formulas and the same float/double split as
// the portable loops (sums in float lanes over blocks of kFlushBlock values, then in double);
// results differ from them only by rounding (summation order, fused multiply-adds).
#include <cstdint>

namespace pydl::bn_detail {

constexpr int64_t kFlushBlock = 2048;  // values summed in float before the lanes go into double

// Contiguous rows of n values of one channel.
//   s1 += sum(x - shift), s2 += sum((x - shift)^2)
void shifted_sums_avx2(const float* x, int64_t n, float shift, double* s1, double* s2);
//   s1 += sum(dy), s2 += sum(dy * (x - mean))
void grad_sums_avx2(const float* dy, const float* x, int64_t n, float mean, double* s1,
                    double* s2);
//   y = x * scale + bias
void scale_shift_avx2(const float* x, int64_t n, float scale, float bias, float* y);
//   dx = (dy - mdy - (x - mean) * k) * a
void grad_input_avx2(const float* dy, const float* x, int64_t n, float mdy, float mean, float k,
                     float a, float* dx);

// One (N, C) row's channels [0, nc) side by side (L == 1), per-channel arrays of nc values.
//   s1[c] += x[c] - shift[c], s2[c] += (x[c] - shift[c])^2   (the differences in float, then
//   accumulated in double, as the portable loop does)
void channel_sums_avx2(const float* x, const float* shift, int64_t nc, double* s1, double* s2);
//   s1[c] += dy[c], s2[c] += dy[c] * (x[c] - mean[c])   (in double)
void channel_grad_sums_avx2(const float* dy, const float* x, const float* mean, int64_t nc,
                            double* s1, double* s2);
//   y[c] = x[c] * scale[c] + bias[c]
void channel_scale_shift_avx2(const float* x, const float* scale, const float* bias, int64_t nc,
                              float* y);
//   dx[c] = (dy[c] - mdy[c] - (x[c] - mean[c]) * k[c]) * a[c]
void channel_grad_input_avx2(const float* dy, const float* x, const float* mdy, const float* mean,
                             const float* k, const float* a, int64_t nc, float* dx);

}  // namespace pydl::bn_detail
