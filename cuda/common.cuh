#pragma once
// Shared by every kernel family: the CUDA runtime (or the emulation harness when the same code
// is compiled as C++ by g++, see cuda/emu/cuda_emu.h), checked launches, 64-bit indices,
// vector loads and warp/block reductions.
//
// Device code stays plain enough for both compilers: no dynamic shared memory, no inline PTX,
// launches only through launch_kernel (never a bare <<<...>>> outside this file).
#ifdef PYDL_CUDA_EMU
#include "emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#endif

#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>

namespace pydl::cuda {

// Element offsets are 64-bit everywhere: a tensor may hold more than 2^31 elements.
using index_t = int64_t;

constexpr int kWarp = 32;

__host__ __device__ inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// Throws the runtime's pending error for `name` as a Python RuntimeError (via pybind11).
inline void check_launch(const char* name) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("pydl_cuda: ") + name + " launch failed: " +
                             cudaGetErrorString(err));
  }
}

// The one launch site: kernel<<<grid, block, 0, stream>>>(args...) then check_launch(name).
// Under the harness the same call runs the kernel on emulated threads.
template <class... KArgs, class... Args>
void launch_kernel(const char* name, void (*kernel)(KArgs...), dim3 grid, dim3 block,
                   cudaStream_t stream, Args... args) {
  static_assert(sizeof...(KArgs) == sizeof...(Args), "launch_kernel: wrong argument count");
#ifdef PYDL_CUDA_EMU
  (void)stream;
  pydl_emu::launch(name, kernel, grid, block,
                   std::tuple<std::decay_t<KArgs>...>(static_cast<std::decay_t<KArgs>>(args)...));
#else
  kernel<<<grid, block, 0, stream>>>(static_cast<std::decay_t<KArgs>>(args)...);
#endif
  check_launch(name);
}

// Grid x dimension for a 1-D launch over `blocks` blocks, capped (kernels grid-stride).
inline unsigned grid_1d(index_t blocks, index_t cap = 65535LL * 32) {
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks < cap ? blocks : cap);
}

// ---- device helpers ---------------------------------------------------------------------------

// 128-bit load/store; the caller guarantees 16-byte alignment (checked under the harness).
__device__ __forceinline__ float4 load_float4(const float* p) {
#ifdef PYDL_CUDA_EMU
  pydl_emu::check_aligned(p, 16, "float4 load");
#endif
  return *reinterpret_cast<const float4*>(p);
}

__device__ __forceinline__ void store_float4(float* p, float4 v) {
#ifdef PYDL_CUDA_EMU
  pydl_emu::check_aligned(p, 16, "float4 store");
#endif
  *reinterpret_cast<float4*>(p) = v;
}

// Square root at the argument's precision under both compilers.
__device__ __forceinline__ float sqrt_t(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_t(double x) { return sqrt(x); }

__device__ __forceinline__ index_t global_thread_index() {
  return static_cast<index_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ index_t grid_stride() {
  return static_cast<index_t>(gridDim.x) * blockDim.x;
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` is a __shared__ array of at least 32 elements owned by the caller.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  const int nwarps = blockDim.x / kWarp;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = lane < nwarps ? scratch[lane] : T(0);
  return warp_sum(total);
}

}  // namespace pydl::cuda
