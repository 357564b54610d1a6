// Layer / group normalization kernels (see group_norm.h). Rows (n, g) are independent, so
// statistics and dx split over rows; dweight/dbias split over the (g, k) entries, each summing
// its slice of every row, so no two threads write one entry and results do not depend on the
// thread count.
#include "group_norm.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "../parallel.h"

namespace pydl {
namespace {

// Rows per chunk: enough work to be worth a thread (~16K elements).
int64_t row_grain(int64_t row_size) {
  return std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(row_size, 1));
}

}  // namespace

template <typename T>
void group_norm_forward_cpu(const T* x, const T* weight, const T* bias, T* y, T* mean, T* rstd,
                            int64_t N, int64_t G, int64_t K, int64_t L, double eps) {
  if (N < 0 || G < 0 || K < 0 || L < 0)
    throw std::invalid_argument("group_norm_forward: negative size");
  const int64_t D = K * L;
  parallel_for(N * G, row_grain(D), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* xr = x + r * D;
      T* yr = y + r * D;
      // Two passes in double: the mean, then the centered sum of squares (no cancellation).
      double s = 0;
      for (int64_t i = 0; i < D; ++i) s += xr[i];
      const double mu = D ? s / double(D) : 0.0;
      double ss = 0;
      for (int64_t i = 0; i < D; ++i) {
        const double d = double(xr[i]) - mu;
        ss += d * d;
      }
      const double var = D ? ss / double(D) : 0.0;
      const double rs = 1.0 / std::sqrt(var + eps);
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(rs);
      const T m_t = static_cast<T>(mu), rs_t = static_cast<T>(rs);
      const int64_t g = r % G;
      for (int64_t k = 0; k < K; ++k) {
        const T w = weight ? weight[g * K + k] : T(1);
        const T b = bias ? bias[g * K + k] : T(0);
        const T scale = rs_t * w;
        const T* xk = xr + k * L;
        T* yk = yr + k * L;
        for (int64_t l = 0; l < L; ++l) yk[l] = (xk[l] - m_t) * scale + b;
      }
    }
  });
}

template <typename T>
void group_norm_backward_cpu(const T* dy, const T* x, const T* mean, const T* rstd,
                             const T* weight, T* dx, T* dweight, T* dbias, int64_t N, int64_t G,
                             int64_t K, int64_t L) {
  const int64_t D = K * L;
  if (dx) {
    parallel_for(N * G, row_grain(D), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* xr = x + r * D;
        const T* dyr = dy + r * D;
        T* dxr = dx + r * D;
        const int64_t g = r % G;
        const double mu = mean[r], rs = rstd[r];
        // <dxhat> and <dxhat xhat> in double.
        double a = 0, b = 0;
        for (int64_t k = 0; k < K; ++k) {
          const double w = weight ? double(weight[g * K + k]) : 1.0;
          for (int64_t l = 0; l < L; ++l) {
            const int64_t i = k * L + l;
            const double dxh = double(dyr[i]) * w;
            a += dxh;
            b += dxh * (double(xr[i]) - mu) * rs;
          }
        }
        const double inv_d = D ? 1.0 / double(D) : 0.0;
        const T ma = static_cast<T>(a * inv_d), mb = static_cast<T>(b * inv_d);
        const T mu_t = static_cast<T>(mu), rs_t = static_cast<T>(rs);
        for (int64_t k = 0; k < K; ++k) {
          const T w = weight ? weight[g * K + k] : T(1);
          for (int64_t l = 0; l < L; ++l) {
            const int64_t i = k * L + l;
            const T xhat = (xr[i] - mu_t) * rs_t;
            dxr[i] = rs_t * (dyr[i] * w - ma - xhat * mb);
          }
        }
      }
    });
  }
  if (dweight || dbias) {
    // One task per (g, k): sums over n and l of dy * xhat and dy.
    parallel_for(G * K, std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(N * L, 1)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t e = lo; e < hi; ++e) {
                     const int64_t g = e / K, k = e % K;
                     double sw = 0, sb = 0;
                     for (int64_t n = 0; n < N; ++n) {
                       const int64_t r = n * G + g;
                       const double mu = mean[r], rs = rstd[r];
                       const T* xk = x + r * D + k * L;
                       const T* dyk = dy + r * D + k * L;
                       for (int64_t l = 0; l < L; ++l) {
                         sw += double(dyk[l]) * (double(xk[l]) - mu) * rs;
                         sb += double(dyk[l]);
                       }
                     }
                     if (dweight) dweight[e] = static_cast<T>(sw);
                     if (dbias) dbias[e] = static_cast<T>(sb);
                   }
                 });
  }
}

#define PYDL_GROUP_NORM_INSTANTIATE(T)                                                         \
  template void group_norm_forward_cpu<T>(const T*, const T*, const T*, T*, T*, T*, int64_t,   \
                                          int64_t, int64_t, int64_t, double);                  \
  template void group_norm_backward_cpu<T>(const T*, const T*, const T*, const T*, const T*,   \
                                           T*, T*, T*, int64_t, int64_t, int64_t, int64_t);
PYDL_GROUP_NORM_INSTANTIATE(float)
PYDL_GROUP_NORM_INSTANTIATE(double)
#undef PYDL_GROUP_NORM_INSTANTIATE

}  // namespace pydl
