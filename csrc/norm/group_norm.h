#pragma once
// Layer and group normalization: one fused kernel pair for both.
//
// The input is viewed as (N, G, K, L): N rows of G groups, each group normalized over its K * L
// values; the affine weight and bias have one entry per (g, k). GroupNorm of an (N, C, *) input
// is (N, G, C / G, prod(*)); LayerNorm over the last dims of size D is (prod(leading), 1, D, 1).
//
//   mean, rstd = mean and 1 / sqrt(biased var + eps) of each (n, g)   (accumulated in double)
//   y          = (x - mean) * rstd * weight[g, k] + bias[g, k]
//
// Backward, per (n, g) with xhat = (x - mean) rstd and dxhat = dy * weight[g, k]:
//   dx        = rstd * (dxhat - <dxhat> - xhat <dxhat xhat>)     (<.>: mean over the group)
//   dweight   = sum over n, l of dy * xhat,   dbias = sum over n, l of dy
//
// Napkin math: forward reads x twice (statistics, then y) and writes y; backward reads dy and x
// twice (row sums, then dx) and once more for dweight/dbias: memory-bound at ~5 passes.
#include <cstdint>

namespace pydl {

// y (N*G*K*L), mean and rstd (N*G) are written. weight/bias may be null.
template <typename T>
void group_norm_forward_cpu(const T* x, const T* weight, const T* bias, T* y, T* mean, T* rstd,
                            int64_t N, int64_t G, int64_t K, int64_t L, double eps);

// Any of dx, dweight, dbias may be null (not wanted). weight may be null (ones).
template <typename T>
void group_norm_backward_cpu(const T* dy, const T* x, const T* mean, const T* rstd,
                             const T* weight, T* dx, T* dweight, T* dbias, int64_t N, int64_t G,
                             int64_t K, int64_t L);

}  // namespace pydl
