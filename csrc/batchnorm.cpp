// Batch normalization kernels: fused statistics + normalise, fused two-pass backward.
//
// Two loop orders, chosen by the length L of a channel's rows:
//   * L >= kRowPathMin (conv feature maps): one channel at a time, rows of L contiguous values;
//     the row sums use independent lanes and are flushed into double per block of kFlushBlock
//     values, so long rows do not lose float precision;
//   * small L (the (N, C) input of BatchNorm1d): row n holds all C channels next to each other,
//     so the loops run over channels innermost with one double accumulator per channel.
// Each loop has a portable form (8 lanes the compiler vectorises with the baseline ISA) and, for
// float32, an AVX2+FMA form in batchnorm_avx2.cpp (4 x 8 lanes; for L == 1, eight channels per
// vector); they agree to rounding.
//
// Napkin math, float32 (64, 64, 56, 56) = 51.4 MB: forward must read x and write y (103 MB),
// backward read dy and x and write dx (154 MB); one channel's data (0.8 MB, 1.6 MB for dy and x)
// stays in L2 between the two loops over it, so nothing is read from memory twice. Outputs come
// from the host cache (csrc/host_cache.h), so their pages are already mapped (a fresh 51 MB
// mapping cost 6-7 ms of page faults per output), and large ones are written with streaming
// stores (kStreamMinBytes): no read of each output line before its write, and x and dy stay in
// L2 for the second loop. Measured on the development VM (2 threads, quiet machine): forward
// 2.4 ms, backward 4.3 ms (43 and 36 GB/s); before the cache and streaming stores 11-12 ms and
// ~19 ms of CPU time on one core.
#include "batchnorm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <type_traits>
#include <vector>

#include "batchnorm_avx2.h"
#include "cpu_features.h"
#include "parallel.h"

namespace pydl {
namespace {

using bn_detail::kFlushBlock;  // values summed in T before the lanes go into double
constexpr int64_t kRowPathMin = 16;
constexpr int64_t kLanes = 8;

// Outputs at least this large are written with streaming (non-temporal) stores on the AVX2 path:
// they go to memory without first reading each line in (a write-allocate read per line) and
// without evicting the channel's x and dy, which the second loop over a channel re-reads from
// L2. Smaller outputs stay in cache for whatever reads them next.
constexpr int64_t kStreamMinBytes = int64_t(8) << 20;

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

// Dispatch to the AVX2 loops (float32) or the portable ones above / inline here.
template <typename T>
void row_shifted_sums(const T* x, int64_t n, T shift, double* s1, double* s2) {
  if constexpr (std::is_same<T, float>::value)
    if (use_avx2()) return bn_detail::shifted_sums_avx2(x, n, shift, s1, s2);
  shifted_sums(x, n, shift, s1, s2);
}

template <typename T>
void row_grad_sums(const T* dy, const T* x, int64_t n, T mean, double* s1, double* s2) {
  if constexpr (std::is_same<T, float>::value)
    if (use_avx2()) return bn_detail::grad_sums_avx2(dy, x, n, mean, s1, s2);
  grad_sums(dy, x, n, mean, s1, s2);
}

template <typename T>
void row_scale_shift(const T* x, int64_t n, T scale, T bias, T* y, bool stream) {
  if constexpr (std::is_same<T, float>::value)
    if (use_avx2()) return bn_detail::scale_shift_avx2(x, n, scale, bias, y, stream);
  for (int64_t l = 0; l < n; ++l) y[l] = x[l] * scale + bias;
}

template <typename T>
void row_grad_input(const T* dy, const T* x, int64_t n, T mdy, T mean, T k, T a, T* dx,
                    bool stream) {
  if constexpr (std::is_same<T, float>::value)
    if (use_avx2()) return bn_detail::grad_input_avx2(dy, x, n, mdy, mean, k, a, dx, stream);
  for (int64_t l = 0; l < n; ++l) dx[l] = (dy[l] - mdy - (x[l] - mean) * k) * a;
}

// The fast sums subtract the shift and add in T (float lanes, flushed into double per block),
// so a finite channel with values near the float limit (3e38) overflows there: x - shift or
// (x - shift)^2 becomes inf, and inf - inf NaN in the variance, where PyTorch keeps a finite
// mean. Sums that come out non-finite are therefore redone here entirely in double (no finite
// float difference or square overflows double), which costs one more pass over the channel only
// when it happens (or when the channel really holds inf or NaN, which stay).
template <typename T>
void channel_sums_double(const T* x, int64_t N, int64_t C, int64_t L, int64_t c, T shift,
                         double* s1, double* s2) {
  if (std::isfinite(*s1) && std::isfinite(*s2)) return;
  double d1 = 0, d2 = 0;
  for (int64_t n = 0; n < N; ++n) {
    const T* row = x + (n * C + c) * L;
    for (int64_t l = 0; l < L; ++l) {
      const double d = double(row[l]) - double(shift);
      d1 += d, d2 += d * d;
    }
  }
  *s1 = d1, *s2 = d2;
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

// Touches every page of a fresh output buffer, each thread its own contiguous share. The row
// path works channel by channel, and one channel's rows lie on every page of the output: left
// to the channel loop, the first channel would take the page faults (the kernel zeroing the
// whole 51 MB) on one thread while the others wait on the same pages.
template <typename T>
void prefault(T* p, int64_t n) {
  constexpr int64_t kPage = 4096 / sizeof(T);
  parallel_for((n + kPage - 1) / kPage, 64, [&](int64_t b, int64_t e) {
    volatile T* v = p;
    for (int64_t i = b; i < e; ++i) v[i * kPage] = T(0);
  });
}

// Whether the (N, C) loops write an output of `count` values with streaming stores: float32 on
// the AVX2 path, kStreamMinBytes or more (as the row path).
template <typename T>
bool avx2_stream(int64_t count) {
  if constexpr (std::is_same<T, float>::value)
    return use_avx2() && count * int64_t(sizeof(T)) >= kStreamMinBytes;
  return false;
}

// Channels per task on the small-L path: enough to vectorise, few enough to spread over threads.
int64_t channel_grain(int64_t C) { return std::max<int64_t>(8, C / (4 * num_threads()) / 8 * 8); }

// ---- channels side by side (small L), one (N, C) row at a time -----------------------------
// With L == 1 (BatchNorm1d on (N, C)) a row's channels are contiguous: the loops run over them
// (AVX2 for float32); for 1 < L < kRowPathMin over each channel's L values.

template <typename T>
void channel_sums(const T* xr, int64_t L, int64_t nc, const T* shift, double* s1, double* s2) {
  for (int64_t j = 0; j < nc; ++j) {
    for (int64_t l = 0; l < L; ++l) {
      const double d = double(xr[j * L + l] - shift[j]);
      s1[j] += d;
      s2[j] += d * d;
    }
  }
}

template <typename T>
void channel_grad_sums(const T* dyr, const T* xr, int64_t L, int64_t nc, const T* mean,
                       double* s1, double* s2) {
  for (int64_t j = 0; j < nc; ++j) {
    for (int64_t l = 0; l < L; ++l) {
      s1[j] += double(dyr[j * L + l]);
      s2[j] += double(dyr[j * L + l]) * double(xr[j * L + l] - mean[j]);
    }
  }
}

// (N, C) input (L == 1): sums over a block of at most kRowBlock rows, per channel, in T then
// added into double (the rows are contiguous; the channel loop runs innermost and vectorises).
// With dy: s1 += dy, s2 += dy * (x - centre); without: s1 += d, s2 += d^2, d = x - centre.
template <typename T>
void rows_sums(const T* dy, const T* x, int64_t rows, int64_t C, const T* centre, double* s1,
               double* s2, T* a, T* q) {
  if constexpr (std::is_same<T, float>::value) {
    if (use_avx2()) {
      if (dy) return bn_detail::rows_grad_sums_avx2(dy, x, rows, C, centre, s1, s2);
      return bn_detail::rows_sums_avx2(x, rows, C, centre, s1, s2);
    }
  }
  std::fill(a, a + C, T(0));
  std::fill(q, q + C, T(0));
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * C;
    if (dy) {
      const T* gr = dy + r * C;
      for (int64_t c = 0; c < C; ++c) a[c] += gr[c], q[c] += gr[c] * (xr[c] - centre[c]);
    } else {
      for (int64_t c = 0; c < C; ++c) {
        const T d = xr[c] - centre[c];
        a[c] += d, q[c] += d * d;
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) s1[c] += double(a[c]), s2[c] += double(q[c]);
}

// Per-channel sums over all N rows of an (N, C) input. The rows are cut into pieces of a fixed
// number of rows (a multiple of kRowBlock, chosen from C alone), each summed into its own double
// partials, which are then added in piece order: the split does not depend on the thread
// count, so the sums are bitwise the same for any number of threads (use_deterministic_algorithms
// asks no more of this path). Threads take pieces from a shared counter.
int64_t rows_per_piece(int64_t C) {
  constexpr int64_t kPieceValues = int64_t(1) << 18;  // ~1 MB of float32 per piece
  const int64_t rows = kPieceValues / std::max<int64_t>(1, C);
  return std::max<int64_t>(1, rows / bn_detail::kRowBlock) * bn_detail::kRowBlock;
}

template <typename T>
void all_rows_sums(const T* dy, const T* x, int64_t N, int64_t C, const T* centre, double* s1,
                   double* s2) {
  const int64_t piece = rows_per_piece(C);
  const int64_t pieces = std::max<int64_t>(1, (N + piece - 1) / piece);
  std::vector<double> part(pieces * 2 * C, 0.0);
  parallel_blocks(pieces, 1, [&](int64_t p0, int64_t p1) {
    std::vector<T> scratch(2 * C);  // the portable loop's T accumulators
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t n0 = p * piece, n1 = std::min(N, n0 + piece);
      double* q1 = part.data() + p * 2 * C;
      for (int64_t b = n0; b < n1; b += bn_detail::kRowBlock) {
        const int64_t rows = std::min(bn_detail::kRowBlock, n1 - b);
        rows_sums(dy ? dy + b * C : nullptr, x + b * C, rows, C, centre, q1, q1 + C,
                  scratch.data(), scratch.data() + C);
      }
    }
  });
  for (int64_t c = 0; c < C; ++c) {
    double t1 = 0, t2 = 0;
    for (int64_t p = 0; p < pieces; ++p) t1 += part[p * 2 * C + c], t2 += part[p * 2 * C + C + c];
    s1[c] = t1, s2[c] = t2;
  }
}

template <typename T>
void channel_scale_shift(const T* xr, int64_t L, int64_t nc, const T* scale, const T* bias,
                         T* yr, bool stream = false) {
  if constexpr (std::is_same<T, float>::value)
    if (L == 1 && use_avx2())
      return bn_detail::channel_scale_shift_avx2(xr, scale, bias, nc, yr, stream);
  if (L == 1) {
    for (int64_t j = 0; j < nc; ++j) yr[j] = xr[j] * scale[j] + bias[j];
    return;
  }
  for (int64_t j = 0; j < nc; ++j)
    for (int64_t l = 0; l < L; ++l) yr[j * L + l] = xr[j * L + l] * scale[j] + bias[j];
}

template <typename T>
void channel_grad_input(const T* dyr, const T* xr, int64_t L, int64_t nc, const T* mdy,
                        const T* mean, const T* k, const T* a, T* dxr, bool stream = false) {
  if constexpr (std::is_same<T, float>::value)
    if (L == 1 && use_avx2())
      return bn_detail::channel_grad_input_avx2(dyr, xr, mdy, mean, k, a, nc, dxr, stream);
  for (int64_t j = 0; j < nc; ++j)
    for (int64_t l = 0; l < L; ++l)
      dxr[j * L + l] = (dyr[j * L + l] - mdy[j] - (xr[j * L + l] - mean[j]) * k[j]) * a[j];
}

}  // namespace

template <typename T>
void batch_norm_forward_train_cpu(int64_t N, int64_t C, int64_t L, const T* x, const T* gamma,
                                  const T* beta, double eps, T* y, T* mean, T* var, T* invstd) {
  const int64_t M = N * L;
  if (L >= kRowPathMin) {
    prefault(y, N * C * L);
    const bool stream = N * C * L * int64_t(sizeof(T)) >= kStreamMinBytes;
    parallel_blocks(C, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const T shift = M > 0 ? x[c * L] : T(0);
        double s1 = 0, s2 = 0;
        for (int64_t n = 0; n < N; ++n) row_shifted_sums(x + (n * C + c) * L, L, shift, &s1, &s2);
        channel_sums_double(x, N, C, L, c, shift, &s1, &s2);
        finish_stats(double(shift), s1, s2, M, eps, mean + c, var + c, invstd + c);
        const T scale = (gamma ? gamma[c] : T(1)) * invstd[c];
        const T bias = (beta ? beta[c] : T(0)) - mean[c] * scale;
        for (int64_t n = 0; n < N; ++n)
          row_scale_shift(x + (n * C + c) * L, L, scale, bias, y + (n * C + c) * L, stream);
      }
    });
    return;
  }
  if (L == 1) {
    std::vector<double> s1(C), s2(C);
    std::vector<T> shift(C, T(0)), scale(C), bias(C);
    if (M > 0) std::copy(x, x + C, shift.begin());  // the first row
    all_rows_sums<T>(nullptr, x, N, C, shift.data(), s1.data(), s2.data());
    for (int64_t c = 0; c < C; ++c) {
      channel_sums_double(x, N, C, int64_t(1), c, shift[c], &s1[c], &s2[c]);
      finish_stats(double(shift[c]), s1[c], s2[c], M, eps, mean + c, var + c, invstd + c);
      scale[c] = (gamma ? gamma[c] : T(1)) * invstd[c];
      bias[c] = (beta ? beta[c] : T(0)) - mean[c] * scale[c];
    }
    const bool stream = avx2_stream<T>(N * C);
    parallel_for(N, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, C)),
                 [&](int64_t n0, int64_t n1) {
                   for (int64_t n = n0; n < n1; ++n)
                     channel_scale_shift(x + n * C, 1, C, scale.data(), bias.data(), y + n * C,
                                         stream);
                   if (stream) bn_detail::store_fence();
                 });
    return;
  }
  parallel_blocks(C, channel_grain(C), [&](int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    std::vector<double> s1(nc, 0.0), s2(nc, 0.0);
    std::vector<T> shift(nc, T(0)), scale(nc), bias(nc);
    if (M > 0)
      for (int64_t c = c0; c < c1; ++c) shift[c - c0] = x[c * L];
    for (int64_t n = 0; n < N; ++n)
      channel_sums(x + (n * C + c0) * L, L, nc, shift.data(), s1.data(), s2.data());
    for (int64_t c = c0; c < c1; ++c) {
      channel_sums_double(x, N, C, L, c, shift[c - c0], &s1[c - c0], &s2[c - c0]);
      finish_stats(double(shift[c - c0]), s1[c - c0], s2[c - c0], M, eps, mean + c, var + c,
                   invstd + c);
      scale[c - c0] = (gamma ? gamma[c] : T(1)) * invstd[c];
      bias[c - c0] = (beta ? beta[c] : T(0)) - mean[c] * scale[c - c0];
    }
    for (int64_t n = 0; n < N; ++n)
      channel_scale_shift(x + (n * C + c0) * L, L, nc, scale.data(), bias.data(),
                          y + (n * C + c0) * L);
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
  if (L >= kRowPathMin) {
    // One pass, y = x * scale_c + bias_c, split over rows (n, c) of L values.
    const bool stream = N * C * L * int64_t(sizeof(T)) >= kStreamMinBytes;
    parallel_blocks(N * C, std::max<int64_t>(1, 16384 / L), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        row_scale_shift(x + r * L, L, scale[r % C], bias[r % C], y + r * L, stream);
    });
    return;
  }
  // Small L: whole (N, C) rows, channels side by side.
  parallel_for(N, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, C * L)),
               [&](int64_t n0, int64_t n1) {
                 for (int64_t n = n0; n < n1; ++n)
                   channel_scale_shift(x + n * C * L, L, C, scale.data(), bias.data(),
                                       y + n * C * L);
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
    if (dx) prefault(dx, N * C * L);
    const bool stream = N * C * L * int64_t(sizeof(T)) >= kStreamMinBytes;
    parallel_blocks(C, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double s_dy = 0, s_dyx = 0;
        for (int64_t n = 0; n < N; ++n)
          row_grad_sums(dy + (n * C + c) * L, x + (n * C + c) * L, L, mean[c], &s_dy, &s_dyx);
        T a, mdy, k;
        finish(c, s_dy, s_dyx, &a, &mdy, &k);
        if (!dx) continue;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t o = (n * C + c) * L;
          row_grad_input(dy + o, x + o, L, mdy, mean[c], k, a, dx + o, stream);
        }
      }
    });
    return;
  }
  if (L == 1) {
    std::vector<double> s_dy(C), s_dyx(C);
    all_rows_sums<T>(dy, x, N, C, mean, s_dy.data(), s_dyx.data());
    std::vector<T> a(C), mdy(C), k(C);
    for (int64_t c = 0; c < C; ++c) finish(c, s_dy[c], s_dyx[c], &a[c], &mdy[c], &k[c]);
    if (!dx) return;
    const bool stream = avx2_stream<T>(N * C);
    parallel_for(N, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, C)),
                 [&](int64_t n0, int64_t n1) {
                   for (int64_t n = n0; n < n1; ++n)
                     channel_grad_input(dy + n * C, x + n * C, 1, C, mdy.data(), mean, k.data(),
                                        a.data(), dx + n * C, stream);
                   if (stream) bn_detail::store_fence();
                 });
    return;
  }
  parallel_blocks(C, channel_grain(C), [&](int64_t c0, int64_t c1) {
    const int64_t nc = c1 - c0;
    std::vector<double> s_dy(nc, 0.0), s_dyx(nc, 0.0);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c0) * L;
      channel_grad_sums(dy + o, x + o, L, nc, mean + c0, s_dy.data(), s_dyx.data());
    }
    std::vector<T> a(nc), mdy(nc), k(nc);
    for (int64_t c = c0; c < c1; ++c)
      finish(c, s_dy[c - c0], s_dyx[c - c0], &a[c - c0], &mdy[c - c0], &k[c - c0]);
    if (!dx) return;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t o = (n * C + c0) * L;
      channel_grad_input(dy + o, x + o, L, nc, mdy.data(), mean + c0, k.data(), a.data(), dx + o);
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
