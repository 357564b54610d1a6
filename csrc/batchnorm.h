#pragma once
// Batch normalization on the CPU, for C-contiguous input viewed as (N, C, L): L = 1 for (N, C)
// input, L = H * W for (N, C, H, W). Statistics are per channel over the N * L values.
//
//   training:  mean_c = E[x], var_c = E[(x - mean_c)^2] (biased), invstd_c = 1 / sqrt(var_c + eps)
//   y = (x - mean_c) * invstd_c * gamma_c + beta_c        (gamma = 1, beta = 0 when null)
//
// Backward (M = N * L values per channel, xhat = (x - mean) * invstd):
//   dbeta = sum dy,  dgamma = sum dy * xhat,
//   training:  dx = gamma * invstd * (dy - dbeta / M - xhat * dgamma / M)
//   eval:      dx = gamma * invstd * dy   (mean and invstd are constants from the running stats)
// Each pass works one channel at a time (its N * L values, ~1 MB for the benchmark case, stay in
// L2 between the statistics and the normalising loop), so x is read from memory once per pass.
#include <cstdint>

namespace pydl {

// Writes y, and mean, var (biased) and invstd per channel. Statistics are accumulated in double
// around a per-channel shift (the channel's first value), which keeps E[d^2] - E[d]^2 accurate.
template <typename T>
void batch_norm_forward_train_cpu(int64_t N, int64_t C, int64_t L, const T* x, const T* gamma,
                                  const T* beta, double eps, T* y, T* mean, T* var, T* invstd);

// y = (x - mean) / sqrt(var + eps) * gamma + beta with given (running) statistics.
template <typename T>
void batch_norm_forward_eval_cpu(int64_t N, int64_t C, int64_t L, const T* x, const T* mean,
                                 const T* var, const T* gamma, const T* beta, double eps, T* y);

// Fused backward in two passes: per-channel sums of dy and dy * (x - mean), then dx.
// mean and invstd are the ones the forward used. Any of dx, dgamma, dbeta may be null (not wanted).
template <typename T>
void batch_norm_backward_cpu(int64_t N, int64_t C, int64_t L, const T* dy, const T* x,
                             const T* mean, const T* invstd, const T* gamma, bool training, T* dx,
                             T* dgamma, T* dbeta);

}  // namespace pydl
