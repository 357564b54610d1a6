// Batch normalization kernels: fused statistics + normalise, fused two-pass backward.
//
// Two loop orders, chosen by the length L of a channel's rows:
//   * L >= kRowPathMin (conv feature maps): one channel at a time, rows of L contiguous values;
//     the row sums use 8 independent lanes (vectorised by the compiler without -ffast-math) and
//     are flushed into double per block, so long rows do not lose float precision;
//   * small L (the (N, C) input of BatchNorm1d): row n holds all C channels next to each other,
//     so the loops run over channels innermost with one double accumulator per channel.
// Napkin math, float32 (64, 64, 56, 56) = 51.4 MB: forward must read x and write y (103 MB),
// backward read dy and x and write dx (154 MB); one channel's data (0.8 MB, 1.6 MB for dy and x)
// stays in L2 between the two loops over it, so nothing is read from DRAM twice.
#include "batchnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"

namespace pydl {
namespace {

constexpr int64_t kRowPathMin = 16;
constexpr int64_t kLanes = 8;
constexpr int64_t kFlushBlock = 2048;  // values summed in T before the lanes go into double

// s1 += sum(x - shift), s2 += sum((x - shift)^2) over x[0, L).
template <typename T>
inline void shifted_sums(const T* x, int64_t L, T shift, double* s1, double* s2) {
  double d1 = 0, d2 = 0;
  for (int64_t b0 = 0; b0 < L; b0 += kFlushBlock) {
    const int64_t b1 = std::min(L, b0 + kFlushBlock);
    T a[kLanes] = {}, q[kLanes] = {};
    int64_t l = b0;
    for (; l + kLanes <= b1; l += kLanes) {
      for (int64_t j = 0; j < kLanes; ++j) {
        const T d = x[l + j] - shift;
        a[j] += d;
        q[j] += d * d;
      }
    }
    T ta = 0, tq = 0;
    for (; l < b1; ++l) {
      const T d = x[l] - shift;
      ta += d;
      tq += d * d;
    }
    for (int64_t j = 0; j < kLanes; ++j) ta += a[j], tq += q[j];
    d1 += ta, d2 += tq;
  }
  *s1 += d1, *s2 += d2;
}

// s1 += sum(dy), s2 += sum(dy * (x - mean)) over [0, L).
template <typename T>
inline void grad_sums(const T* dy, const T* x, int64_t L, T mean, double* s1, double* s2) {
  double d1 = 0, d2 = 0;
  for (int64_t b0 = 0; b0 < L; b0 += kFlushBlock) {
    const int64_t b1 = std::min(L, b0 + kFlushBlock);
    T a[kLanes] = {}, q[kLanes] = {};
    int64_t l = b0;
    for (; l + kLanes <= b1; l += kLanes) {
      for (int64_t j = 0; j < kLanes; ++j) {
        a[j] += dy[l + j];
        q[j] += dy[l + j] * (x[l + j] - mean);
      }
    }
    T ta = 0, tq = 0;
    for (; l < b1; ++l) {
      ta += dy[l];
      tq += dy[l] * (x[l] - mean);
    }
    for (int64_t j = 0; j < kLanes; ++j) ta += a[j], tq += q[j];
    d1 += ta, d2 += tq;
  }
  *s1 += d1, *s2 += d2;
}

// Per-channel statistics from shifted sums over M values.
template <typename T>
void finish_stats(double shift, double s1, double s2, int64_t M, double eps, T* mean, T* var,
                  T* invstd) {
  double m = 0, v = 0;
  if (M > 0) {
    const double d = s1 / double(M);
    m = shift + d;
    v = std::max(s2 / double(M) - d * d, 0.0);
  }
  *mean = T(m);
  *var = T(v);
  *invstd = T(1.0 / std::sqrt(v + eps));
}

// Channels per task on the small-L path: enough to vectorise, few enough to spread over threads.
int64_t channel_grain(int64_t C) { return std::max<int64_t>(8, C / (4 * num_threads()) / 8 * 8); }

}  // namespace

template <typename T>
void batch_norm_forward_train_cpu(int64_t N, int64_t C, int64_t L, const T* x, const T* gamma,
                                  const T* beta, double eps, T* y, T* mean, T* var, T* invstd) {
  const int64_t M = N * L;
  if (L >= kRowPathMin) {
    parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const T shift = M > 0 ? x[c * L] : T(0);
        double s1 = 0, s2 = 0;
        for (int64_t n = 0; n < N; ++n) shifted_sums(x + (n * C + c) * L, L, shift, &s1, &s2);
        finish_stats(double(shift), s1, s2, M, eps, mean + c, var + c, invstd + c);
        const T scale = (gamma ? gamma[c] : T(1)) * invstd[c];
        const T bias = (beta ? beta[c] : T(0)) - mean[c] * scale;
        for (int64_t n = 0; n < N; ++n) {
          const T* xr = x + (n * C + c) * L;
          T* yr = y + (n * C + c) * L;
          for (int64_t l = 0; l < L; ++l) yr[l] = xr[l] * scale + bias;
        }
      }
    });
    return;
  }
  parallel_for(C, channel_grain(C), [&](int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    std::vector<double> s1(nc, 0.0), s2(nc, 0.0);
    std::vector<T> shift(nc, T(0)), scale(nc), bias(nc);
    if (M > 0)
      for (int64_t c = c0; c < c1; ++c) shift[c - c0] = x[c * L];
    for (int64_t n = 0; n < N; ++n) {
      const T* xr = x + n * C * L;
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t l = 0; l < L; ++l) {
          const double d = double(xr[c * L + l] - shift[c - c0]);
          s1[c - c0] += d;
          s2[c - c0] += d * d;
        }
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      finish_stats(double(shift[c - c0]), s1[c - c0], s2[c - c0], M, eps, mean + c, var + c,
                   invstd + c);
      scale[c - c0] = (gamma ? gamma[c] : T(1)) * invstd[c];
      bias[c - c0] = (beta ? beta[c] : T(0)) - mean[c] * scale[c - c0];
    }
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t c = c0; c < c1; ++c) {
        const T* xr = x + (n * C + c) * L;
        T* yr = y + (n * C + c) * L;
        for (int64_t l = 0; l < L; ++l) yr[l] = xr[l] * scale[c - c0] + bias[c - c0];
      }
    }
  });
}

template <typename T>
void batch_norm_forward_eval_cpu(int64_t N, int64_t C, int64_t L, const T* x, const T* mean,
                                 const T* var, const T* gamma, const T* beta, double eps, T* y) {
  std::vector<T> scale(C), bias(C);
  for (int64_t c = 0; c < C; ++c) {
    const double inv = 1.0 / std::sqrt(double(var[c]) + eps);
    scale[c] = T((gamma ? double(gamma[c]) : 1.0) * inv);
    bias[c] = T((beta ? double(beta[c]) : 0.0) - double(mean[c]) * double(scale[c]));
  }
  // One pass, y = x * scale_c + bias_c, split over rows (n, c) of L values.
  const int64_t rows = N * C;
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(L, 1)),
               [&](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const int64_t c = r % C;
                   const T sc = scale[c], bi = bias[c];
                   const T* xr = x + r * L;
                   T* yr = y + r * L;
                   for (int64_t l = 0; l < L; ++l) yr[l] = xr[l] * sc + bi;
                 }
               });
}

template <typename T>
void batch_norm_backward_cpu(int64_t N, int64_t C, int64_t L, const T* dy, const T* x,
                             const T* mean, const T* invstd, const T* gamma, bool training, T* dx,
                             T* dgamma, T* dbeta) {
  const int64_t M = N * L;
  // From the channel sums: dx = (dy - mean_dy - (x - mean) * k) * a, with a = gamma * invstd,
  // mean_dy = sum(dy) / M and k = invstd^2 * sum(dy * (x - mean)) / M in training; in eval mode
  // the statistics are constants and dx = a * dy.
  auto finish = [&](int64_t c, double s_dy, double s_dyx, T* a, T* mdy, T* k) {
    if (dbeta) dbeta[c] = T(s_dy);
    if (dgamma) dgamma[c] = T(s_dyx * double(invstd[c]));
    const double inv = double(invstd[c]);
    *a = T((gamma ? double(gamma[c]) : 1.0) * inv);
    *mdy = training && M > 0 ? T(s_dy / double(M)) : T(0);
    *k = training && M > 0 ? T(inv * inv * s_dyx / double(M)) : T(0);
  };
  if (L >= kRowPathMin) {
    parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double s_dy = 0, s_dyx = 0;
        for (int64_t n = 0; n < N; ++n)
          grad_sums(dy + (n * C + c) * L, x + (n * C + c) * L, L, mean[c], &s_dy, &s_dyx);
        T a, mdy, k;
        finish(c, s_dy, s_dyx, &a, &mdy, &k);
        if (!dx) continue;
        const T mu = mean[c];
        for (int64_t n = 0; n < N; ++n) {
          const T* dyr = dy + (n * C + c) * L;
          const T* xr = x + (n * C + c) * L;
          T* dxr = dx + (n * C + c) * L;
          for (int64_t l = 0; l < L; ++l) dxr[l] = (dyr[l] - mdy - (xr[l] - mu) * k) * a;
        }
      }
    });
    return;
  }
  parallel_for(C, channel_grain(C), [&](int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    std::vector<double> s_dy(nc, 0.0), s_dyx(nc, 0.0);
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t c = c0; c < c1; ++c) {
        const T* dyr = dy + (n * C + c) * L;
        const T* xr = x + (n * C + c) * L;
        for (int64_t l = 0; l < L; ++l) {
          s_dy[c - c0] += double(dyr[l]);
          s_dyx[c - c0] += double(dyr[l]) * double(xr[l] - mean[c]);
        }
      }
    }
    std::vector<T> a(nc), mdy(nc), k(nc);
    for (int64_t c = c0; c < c1; ++c)
      finish(c, s_dy[c - c0], s_dyx[c - c0], &a[c - c0], &mdy[c - c0], &k[c - c0]);
    if (!dx) return;
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t j = c - c0;
        const T* dyr = dy + (n * C + c) * L;
        const T* xr = x + (n * C + c) * L;
        T* dxr = dx + (n * C + c) * L;
        for (int64_t l = 0; l < L; ++l) dxr[l] = (dyr[l] - mdy[j] - (xr[l] - mean[c]) * k[j]) * a[j];
      }
    }
  });
}

#define PYDL_INSTANTIATE_BN(T)                                                                  \
  template void batch_norm_forward_train_cpu<T>(int64_t, int64_t, int64_t, const T*, const T*,   \
                                                const T*, double, T*, T*, T*, T*);               \
  template void batch_norm_forward_eval_cpu<T>(int64_t, int64_t, int64_t, const T*, const T*,    \
                                               const T*, const T*, const T*, double, T*);        \
  template void batch_norm_backward_cpu<T>(int64_t, int64_t, int64_t, const T*, const T*,        \
                                           const T*, const T*, const T*, bool, T*, T*, T*);
PYDL_INSTANTIATE_BN(float)
PYDL_INSTANTIATE_BN(double)
#undef PYDL_INSTANTIATE_BN

}  // namespace pydl
