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
// stream: write y / dx with non-temporal stores (then an sfence), from the first 32-byte
// aligned element on.
//   y = x * scale + bias
void scale_shift_avx2(const float* x, int64_t n, float scale, float bias, float* y,
                      bool stream);
//   dx = (dy - mdy - (x - mean) * k) * a
void grad_input_avx2(const float* dy, const float* x, int64_t n, float mdy, float mean, float k,
                     float a, float* dx, bool stream);

// (N, C) input (L == 1): a block of `rows` rows of C channels (row stride C).
//   s1[c] += sum_r (x[r][c] - shift[c]), s2[c] += sum_r (x[r][c] - shift[c])^2
// summed in float over the block (callers keep blocks to kRowBlock rows), then added into
// double. Rows are read front to back four at a time, the float sums of up to 1024 channels in
// L1; each lane adds its rows in row order, as the portable loop does.
constexpr int64_t kRowBlock = 64;
void rows_sums_avx2(const float* x, int64_t rows, int64_t C, const float* shift, double* s1,
                    double* s2);
//   s1[c] += sum_r dy[r][c], s2[c] += sum_r dy[r][c] * (x[r][c] - mean[c])   (likewise)
void rows_grad_sums_avx2(const float* dy, const float* x, int64_t rows, int64_t C,
                         const float* mean, double* s1, double* s2);
// One row's channels [0, nc) side by side; stream: non-temporal stores from the first 32-byte
// aligned element on, without a fence (the caller calls store_fence after its last row):
//   y[c] = x[c] * scale[c] + bias[c]
void channel_scale_shift_avx2(const float* x, const float* scale, const float* bias, int64_t nc,
                              float* y, bool stream);
//   dx[c] = (dy[c] - mdy[c] - (x[c] - mean[c]) * k[c]) * a[c]
void channel_grad_input_avx2(const float* dy, const float* x, const float* mdy, const float* mean,
                             const float* k, const float* a, int64_t nc, float* dx, bool stream);
// sfence: makes a thread's streaming stores visible before it hands its work back.
void store_fence();

}  // namespace pydl::bn_detail
