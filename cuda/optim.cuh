#pragma once
// Fused optimizer steps as multi-tensor kernels: one launch updates every parameter of a group.
//
// The group is described by a table in device memory (built once per group by the caller):
//   addresses[t * lists + l]  device address of list l (param, grad, state...) of tensor t
//   numels[t]                 elements of tensor t
//   chunk_prefix[t]           first chunk of tensor t (chunk_prefix[tensors] = total chunks)
// Block b (grid-stride over chunks) finds its tensor by binary search in chunk_prefix and
// updates one chunk of kChunk elements; every formula is torch.optim's, in the parameter's
// precision with scalar hyper-parameters precomputed on the host (bias corrections).
#include "common.cuh"

namespace pydl::cuda {

namespace mt {
constexpr int kThreads = 256;
constexpr index_t kChunk = 256 * 16;
}  // namespace mt

struct TensorTable {
  const int64_t* addresses;
  const int64_t* numels;
  const int64_t* chunk_prefix;
  int tensors;
  int lists;
  index_t chunks;
};

__device__ __forceinline__ int find_tensor(const TensorTable& t, index_t chunk) {
  int lo = 0, hi = t.tensors - 1;  // last tensor whose first chunk <= chunk
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (t.chunk_prefix[mid] <= chunk) lo = mid; else hi = mid - 1;
  }
  return lo;
}

template <class T>
__device__ __forceinline__ T* list_ptr(const TensorTable& t, int tensor, int list) {
  return reinterpret_cast<T*>(t.addresses[static_cast<index_t>(tensor) * t.lists + list]);
}

// Runs op(i, pointers...) for every element of every tensor; op gets the element index within
// its tensor and the tensor's list pointers (param, grad, states).
template <class T, class Op>
__device__ __forceinline__ void for_each_chunk(const TensorTable& t, const Op& op) {
  for (index_t chunk = blockIdx.x; chunk < t.chunks; chunk += gridDim.x) {
    const int tensor = find_tensor(t, chunk);
    const index_t begin = (chunk - t.chunk_prefix[tensor]) * mt::kChunk;
    const index_t numel = t.numels[tensor];
    const index_t end = begin + mt::kChunk < numel ? begin + mt::kChunk : numel;
    T* p[5];
#pragma unroll
    for (int l = 0; l < 5; ++l) p[l] = l < t.lists ? list_ptr<T>(t, tensor, l) : nullptr;
    for (index_t i = begin + threadIdx.x; i < end; i += blockDim.x) op(i, p);
  }
}

template <class T>
struct SgdHyper {
  T lr, momentum, dampening, weight_decay;
  bool nesterov, maximize, first_step;  // first_step: the momentum buffer starts as d_p
};

// lists: param, grad[, momentum_buffer]
template <class T>
__global__ void __launch_bounds__(mt::kThreads) sgd_step_kernel(TensorTable t, SgdHyper<T> h) {
  for_each_chunk<T>(t, [&](index_t i, T** p) {
    T g = h.maximize ? -p[1][i] : p[1][i];
    const T w = p[0][i];
    if (h.weight_decay != T(0)) g += h.weight_decay * w;
    if (h.momentum != T(0)) {
      T buf = h.first_step ? g : h.momentum * p[2][i] + (T(1) - h.dampening) * g;
      p[2][i] = buf;
      g = h.nesterov ? g + h.momentum * buf : buf;
    }
    p[0][i] = w - h.lr * g;
  });
}

template <class T>
struct AdamHyper {
  T lr, beta1, beta2, eps, weight_decay;
  T bias_correction1, bias_correction2_sqrt;  // 1 - beta1^step, sqrt(1 - beta2^step)
  bool decoupled, amsgrad, maximize;          // decoupled: AdamW
};

// lists: param, grad, exp_avg, exp_avg_sq[, max_exp_avg_sq]
template <class T>
__global__ void __launch_bounds__(mt::kThreads) adam_step_kernel(TensorTable t, AdamHyper<T> h) {
  for_each_chunk<T>(t, [&](index_t i, T** p) {
    T g = h.maximize ? -p[1][i] : p[1][i];
    T w = p[0][i];
    if (h.decoupled) {
      w *= T(1) - h.lr * h.weight_decay;
    } else if (h.weight_decay != T(0)) {
      g += h.weight_decay * w;
    }
    const T m = p[2][i] + (T(1) - h.beta1) * (g - p[2][i]);  // torch: exp_avg.lerp_(grad, 1-b1)
    const T v = h.beta2 * p[3][i] + (T(1) - h.beta2) * g * g;
    p[2][i] = m;
    p[3][i] = v;
    T second = v;
    if (h.amsgrad) {
      second = p[4][i] > v ? p[4][i] : v;
      p[4][i] = second;
    }
    const T denom = sqrt_t(second) / h.bias_correction2_sqrt + h.eps;
    p[0][i] = w - (h.lr / h.bias_correction1) * m / denom;
  });
}

template <class T>
struct AdagradHyper {
  T clr, weight_decay, eps;  // clr = lr / (1 + (step - 1) * lr_decay)
  bool maximize;
};

// lists: param, grad, state_sum
template <class T>
__global__ void __launch_bounds__(mt::kThreads)
    adagrad_step_kernel(TensorTable t, AdagradHyper<T> h) {
  for_each_chunk<T>(t, [&](index_t i, T** p) {
    T g = h.maximize ? -p[1][i] : p[1][i];
    const T w = p[0][i];
    if (h.weight_decay != T(0)) g += h.weight_decay * w;
    const T sum = p[2][i] + g * g;
    p[2][i] = sum;
    p[0][i] = w - h.clr * g / (sqrt_t(sum) + h.eps);
  });
}

template <class T>
struct RmspropHyper {
  T lr, alpha, eps, weight_decay, momentum;
  bool centered, maximize;
};

// lists: param, grad, square_avg[, momentum_buffer][, grad_avg] (buffers present when used,
// in this order)
template <class T>
__global__ void __launch_bounds__(mt::kThreads)
    rmsprop_step_kernel(TensorTable t, RmspropHyper<T> h) {
  for_each_chunk<T>(t, [&](index_t i, T** p) {
    T g = h.maximize ? -p[1][i] : p[1][i];
    const T w = p[0][i];
    if (h.weight_decay != T(0)) g += h.weight_decay * w;
    const T sq = h.alpha * p[2][i] + (T(1) - h.alpha) * g * g;
    p[2][i] = sq;
    T avg;
    if (h.centered) {
      T* grad_avg = h.momentum > T(0) ? p[4] : p[3];
      const T ga = h.alpha * grad_avg[i] + (T(1) - h.alpha) * g;
      grad_avg[i] = ga;
      avg = sqrt_t(sq - ga * ga) + h.eps;
    } else {
      avg = sqrt_t(sq) + h.eps;
    }
    if (h.momentum > T(0)) {
      const T buf = h.momentum * p[3][i] + g / avg;
      p[3][i] = buf;
      p[0][i] = w - h.lr * buf;
    } else {
      p[0][i] = w - h.lr * g / avg;
    }
  });
}

// sum of squares of every element of list 0 of every tensor, added into *out (double, zeroed by
// the launcher): the squared global norm clip_grad_norm_ needs, in one launch.
template <class T>
__global__ void __launch_bounds__(mt::kThreads)
    sum_squares_kernel(TensorTable t, double* out) {
  __shared__ double scratch[32];
  double acc = 0;
  for_each_chunk<T>(t, [&](index_t i, T** p) {
    const double v = static_cast<double>(p[0][i]);
    acc += v * v;
  });
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) atomicAdd(out, acc);
}

// list 0 *= scale, for every tensor (clip_grad_norm_'s rescale).
template <class T>
__global__ void __launch_bounds__(mt::kThreads) scale_kernel(TensorTable t, T scale) {
  for_each_chunk<T>(t, [&](index_t i, T** p) { p[0][i] *= scale; });
}

}  // namespace pydl::cuda
