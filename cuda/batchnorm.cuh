#pragma once
// Batch normalization device code (NCHW viewed as (N, C, HW); 2-D input has HW = 1).
//
// Training forward: one block per channel computes the batch statistics in a single pass
// (per-thread Welford, merged across the warp with shuffles and across warps through shared
// memory), updates the running statistics (unbiased variance, PyTorch's momentum), then
// normalises the channel in the same launch. Backward: one block per channel reduces
// sum(dy) and sum(dy * x_hat) the same way and writes grad_input in the same launch.
// Evaluation forward is elementwise with the running statistics.
#include "common.cuh"

namespace pydl::cuda {

namespace bn {
constexpr int kThreads = 512;
}

// Merge Welford triples (n, mean, M2): Chan et al.'s parallel update.
template <class T>
__device__ __forceinline__ void welford_merge(T& n, T& mean, T& m2, T n_b, T mean_b, T m2_b) {
  const T total = n + n_b;
  if (total == T(0)) return;
  const T delta = mean_b - mean;
  const T frac = n_b / total;
  mean += delta * frac;
  m2 += m2_b + delta * delta * n * frac;
  n = total;
}

template <class T>
__device__ __forceinline__ void welford_warp(T& n, T& mean, T& m2) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const T n_b = __shfl_xor_sync(0xffffffffu, n, offset);
    const T mean_b = __shfl_xor_sync(0xffffffffu, mean, offset);
    const T m2_b = __shfl_xor_sync(0xffffffffu, m2, offset);
    welford_merge(n, mean, m2, n_b, mean_b, m2_b);
  }
}

// save_mean/save_invstd receive the batch mean and 1/sqrt(biased var + eps) for backward.
// weight, bias, running_mean, running_var may be null.
template <class T>
__global__ void __launch_bounds__(bn::kThreads)
    batch_norm_forward_train_kernel(const T* x, T* y, const T* weight, const T* bias,
                                    T* running_mean, T* running_var, T* save_mean,
                                    T* save_invstd, index_t batch, index_t channels, index_t hw,
                                    T eps, T momentum) {
  __shared__ T sh_n[32], sh_mean[32], sh_m2[32];
  __shared__ T sh_scale, sh_shift;
  const index_t c = blockIdx.x;
  const index_t count = batch * hw;
  T n = 0, mean = 0, m2 = 0;
  for (index_t i = threadIdx.x; i < count; i += blockDim.x) {
    const index_t b = i / hw;
    const T v = x[(b * channels + c) * hw + (i - b * hw)];
    n += T(1);
    const T d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  welford_warp(n, mean, m2);
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  if (lane == 0) {
    sh_n[warp] = n;
    sh_mean[warp] = mean;
    sh_m2[warp] = m2;
  }
  __syncthreads();
  if (warp == 0) {
    const int nwarps = blockDim.x / kWarp;
    n = lane < nwarps ? sh_n[lane] : T(0);
    mean = lane < nwarps ? sh_mean[lane] : T(0);
    m2 = lane < nwarps ? sh_m2[lane] : T(0);
    welford_warp(n, mean, m2);
    if (lane == 0) {
      const T var = count > 0 ? m2 / n : T(0);
      const T invstd = T(1) / sqrt_t(var + eps);
      const T w = weight ? weight[c] : T(1);
      const T b = bias ? bias[c] : T(0);
      sh_scale = w * invstd;
      sh_shift = b - mean * w * invstd;
      save_mean[c] = mean;
      save_invstd[c] = invstd;
      if (running_mean) running_mean[c] = (T(1) - momentum) * running_mean[c] + momentum * mean;
      if (running_var && count > 1) {
        const T unbiased = m2 / (n - T(1));
        running_var[c] = (T(1) - momentum) * running_var[c] + momentum * unbiased;
      }
    }
  }
  __syncthreads();
  const T scale = sh_scale, shift = sh_shift;
  for (index_t i = threadIdx.x; i < count; i += blockDim.x) {
    const index_t b = i / hw;
    const index_t at = (b * channels + c) * hw + (i - b * hw);
    y[at] = x[at] * scale + shift;
  }
}

// y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, elementwise.
template <class T>
__global__ void batch_norm_forward_eval_kernel(const T* x, T* y, const T* weight, const T* bias,
                                               const T* running_mean, const T* running_var,
                                               index_t total, index_t channels, index_t hw,
                                               T eps) {
  for (index_t i = global_thread_index(); i < total; i += grid_stride()) {
    const index_t c = (i / hw) % channels;
    const T invstd = T(1) / sqrt_t(running_var[c] + eps);
    const T w = weight ? weight[c] : T(1);
    const T b = bias ? bias[c] : T(0);
    y[i] = (x[i] - running_mean[c]) * invstd * w + b;
  }
}

// Training backward with x_hat = (x - mean) * invstd, M = N * HW:
//   grad_bias = sum dy, grad_weight = sum dy * x_hat,
//   grad_input = weight * invstd / M * (M * dy - sum dy - x_hat * sum(dy * x_hat)).
// grad_input, grad_weight, grad_bias may be null (not needed).
template <class T>
__global__ void __launch_bounds__(bn::kThreads)
    batch_norm_backward_train_kernel(const T* x, const T* dy, const T* weight,
                                     const T* save_mean, const T* save_invstd, T* dx,
                                     T* grad_weight, T* grad_bias, index_t batch,
                                     index_t channels, index_t hw) {
  __shared__ T scratch[32];
  const index_t c = blockIdx.x;
  const index_t count = batch * hw;
  const T mean = save_mean[c], invstd = save_invstd[c];
  T sum_dy = 0, sum_dy_xhat = 0;
  for (index_t i = threadIdx.x; i < count; i += blockDim.x) {
    const index_t b = i / hw;
    const index_t at = (b * channels + c) * hw + (i - b * hw);
    const T g = dy[at];
    sum_dy += g;
    sum_dy_xhat += g * (x[at] - mean) * invstd;
  }
  sum_dy = block_sum(sum_dy, scratch);
  sum_dy_xhat = block_sum(sum_dy_xhat, scratch);
  if (threadIdx.x == 0) {
    if (grad_weight) grad_weight[c] = sum_dy_xhat;
    if (grad_bias) grad_bias[c] = sum_dy;
  }
  if (!dx || count == 0) return;  // uniform across the block: no barrier follows
  const T w = weight ? weight[c] : T(1);
  const T k = w * invstd / static_cast<T>(count);
  const T mean_dy = sum_dy, mean_dy_xhat = sum_dy_xhat;
  for (index_t i = threadIdx.x; i < count; i += blockDim.x) {
    const index_t b = i / hw;
    const index_t at = (b * channels + c) * hw + (i - b * hw);
    const T xhat = (x[at] - mean) * invstd;
    dx[at] = k * (static_cast<T>(count) * dy[at] - mean_dy - xhat * mean_dy_xhat);
  }
}

}  // namespace pydl::cuda
