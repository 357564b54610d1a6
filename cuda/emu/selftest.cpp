// Kernels that misuse CUDA on purpose, built only into pydl._C_cuda_emu, so tests/cuda can show
// that the harness catches what a GPU would do wrong (or silently get away with).
#include <pybind11/pybind11.h>

#include "../common.cuh"

namespace py = pybind11;

namespace pydl::cuda::emu_selftest {

__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

__global__ void early_return_barrier_kernel(float* out, int n) {
  if (static_cast<int>(threadIdx.x) >= n) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void misaligned_float4_kernel(const float* in, float* out) {
  const float4 v = load_float4(in + 1);
  out[threadIdx.x] = v.x;
}

// Each thread writes its slot, then reads its neighbour's: correct only with the barrier.
template <bool SYNC>
__global__ void neighbour_kernel(const float* in, float* out) {
  __shared__ float s[256];
  s[threadIdx.x] = in[threadIdx.x];
  if (SYNC) __syncthreads();
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

__global__ void block_sum_kernel(const float* in, float* out, int n) {
  __shared__ float scratch[32];
  float v = 0.0f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) v += in[blockIdx.x * n + i];
  v = block_sum(v, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = v;
}

__global__ void shuffle_kernel(const int* in, int* out_xor, int* out_down, int* out_idx) {
  const int v = in[threadIdx.x];
  out_xor[threadIdx.x] = __shfl_xor_sync(0xffffffffu, v, 5);
  out_down[threadIdx.x] = __shfl_down_sync(0xffffffffu, v, 3);
  out_idx[threadIdx.x] = __shfl_sync(0xffffffffu, v, 7);
}

__global__ void partial_mask_kernel(float* out) {
  out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, 1.0f, 1);
}

__global__ void atomic_kernel(float* out) { atomicAdd(out, 1.0f); }

void bind(py::module_& m) {
  auto sub = m.def_submodule("selftest", "deliberately broken kernels for harness tests");
  auto p = [](std::uintptr_t a) { return reinterpret_cast<float*>(a); };
  auto pi = [](std::uintptr_t a) { return reinterpret_cast<int*>(a); };
  sub.def("divergent_barrier", [=](std::uintptr_t out) {
    launch_kernel("divergent_barrier_kernel", divergent_barrier_kernel, dim3(1), dim3(64), nullptr,
                  p(out));
  });
  sub.def("early_return_barrier", [=](std::uintptr_t out, int n) {
    launch_kernel("early_return_barrier_kernel", early_return_barrier_kernel, dim3(1), dim3(64),
                  nullptr, p(out), n);
  });
  sub.def("misaligned_float4", [=](std::uintptr_t in, std::uintptr_t out) {
    launch_kernel("misaligned_float4_kernel", misaligned_float4_kernel, dim3(1), dim3(32), nullptr,
                  static_cast<const float*>(p(in)), p(out));
  });
  sub.def("neighbour", [=](std::uintptr_t in, std::uintptr_t out, bool sync, int threads) {
    if (sync)
      launch_kernel("neighbour_kernel", neighbour_kernel<true>, dim3(1), dim3(threads), nullptr,
                    static_cast<const float*>(p(in)), p(out));
    else
      launch_kernel("neighbour_kernel", neighbour_kernel<false>, dim3(1), dim3(threads), nullptr,
                    static_cast<const float*>(p(in)), p(out));
  });
  sub.def("block_sum", [=](std::uintptr_t in, std::uintptr_t out, int blocks, int threads, int n) {
    launch_kernel("block_sum_kernel", block_sum_kernel, dim3(blocks), dim3(threads), nullptr,
                  static_cast<const float*>(p(in)), p(out), n);
  });
  sub.def("shuffle", [=](std::uintptr_t in, std::uintptr_t a, std::uintptr_t b, std::uintptr_t c) {
    launch_kernel("shuffle_kernel", shuffle_kernel, dim3(1), dim3(64), nullptr,
                  static_cast<const int*>(pi(in)), pi(a), pi(b), pi(c));
  });
  sub.def("partial_mask", [=](std::uintptr_t out) {
    launch_kernel("partial_mask_kernel", partial_mask_kernel, dim3(1), dim3(32), nullptr, p(out));
  });
  sub.def("atomic_add", [=](std::uintptr_t out, int blocks, int threads) {
    launch_kernel("atomic_kernel", atomic_kernel, dim3(blocks), dim3(threads), nullptr, p(out));
  });
}

}  // namespace pydl::cuda::emu_selftest
