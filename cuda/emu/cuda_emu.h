#pragma once
// CUDA emulation harness: lets pydl's device code (cuda/*.cuh) and launchers (cuda/*.cu) compile
// as C++20 with g++, and runs each kernel's threads as real threads so that races and barrier
// misuse show up on a machine without a GPU.
//
// Execution model (cuda_emu.cpp):
//   * blocks run one at a time, in order; each block runs blockDim.x*y*z real std::threads;
//   * `__shared__` is `static`: a function-local static shared by the threads of the running
//     block (blocks never overlap, so one static per kernel instantiation is enough);
//   * `__syncthreads()` is a block-wide barrier that also checks that every thread waits at the
//     same call site and that no thread of the block has already exited (CUDA requires both;
//     real hardware often hides the bug, the harness reports it);
//   * warp shuffles exchange values through a per-warp buffer between two warp barriers, and
//     require every lane of the warp to take part (the kernels only use full-warp masks);
//   * atomics are std::atomic_ref operations; vector types are 16/8-byte aligned structs;
//   * a launch validates the configuration as the CUDA runtime does (threads per block, grid
//     limits); a failing kernel (barrier misuse, misaligned vector access, an exception) is
//     reported through cudaGetLastError()/cudaGetErrorString() like a launch failure.
// Only what pydl's kernels use is provided.
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#define PYDL_CUDA_EMU 1

// ---- qualifiers ------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
// One block runs at a time, so a function-local static is exactly "shared by this block".
#define __shared__ static

// ---- vector and index types ------------------------------------------------------------------
struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
struct alignas(8) int2 {
  int x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

// Per-thread built-in variables, set by the launcher for each emulated thread.
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;
constexpr int warpSize = 32;

// ---- runtime API subset ----------------------------------------------------------------------
using cudaStream_t = struct CUstream_emu*;
enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorLaunchFailure = 4,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorMisalignedAddress = 716,
};
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t error);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream = nullptr);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, int kind,
                            cudaStream_t stream = nullptr);
constexpr int cudaMemcpyDeviceToDevice = 3;

namespace pydl_emu {

// Thrown inside an emulated thread to abandon the kernel after another thread reported misuse.
struct Abort {};

// Reports a kernel error (the first one wins) and wakes every waiting thread of the block.
[[noreturn]] void fail(const std::string& message);

void syncthreads(const std::source_location& where);
void syncwarp(unsigned mask, const std::source_location& where);
// Exchanges 8 bytes per lane through the warp's buffer; returns the bytes lane `src` wrote.
uint64_t exchange(unsigned mask, uint64_t bits, int src, const std::source_location& where);
int lane_id();

template <class T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a large type");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <class T>
T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

// Kernel entry: runs kernel(args...) over the grid, as described at the top of this file.
void run_grid(const char* name, dim3 grid, dim3 block, const void* kernel_id,
              void (*body)(void* ctx), void* ctx);

template <class... KArgs>
void launch(const char* name, void (*kernel)(KArgs...), dim3 grid, dim3 block,
            std::tuple<std::decay_t<KArgs>...> args) {
  struct Ctx {
    void (*kernel)(KArgs...);
    std::tuple<std::decay_t<KArgs>...>* args;
  } ctx{kernel, &args};
  run_grid(name, grid, block, reinterpret_cast<const void*>(kernel),
           [](void* p) {
             auto* c = static_cast<Ctx*>(p);
             // Each emulated thread gets its own copy of the arguments, as on a GPU.
             auto local = *c->args;
             std::apply(c->kernel, local);
           },
           &ctx);
}

// Vector accesses must be aligned to their size on a GPU; check it so tests catch it here.
inline void check_aligned(const void* p, size_t bytes, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) % bytes != 0) {
    fail(std::string("misaligned ") + what + " access at address " +
         std::to_string(reinterpret_cast<uintptr_t>(p)));
  }
}

}  // namespace pydl_emu

// ---- synchronisation and warp intrinsics -----------------------------------------------------
inline void __syncthreads(std::source_location where = std::source_location::current()) {
  pydl_emu::syncthreads(where);
}
inline void __syncwarp(unsigned mask = 0xffffffffu,
                       std::source_location where = std::source_location::current()) {
  pydl_emu::syncwarp(mask, where);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
              std::source_location where = std::source_location::current()) {
  const int lane = pydl_emu::lane_id();
  const int src = (lane / width) * width + (src_lane % width);
  return pydl_emu::from_bits<T>(pydl_emu::exchange(mask, pydl_emu::to_bits(var), src, where));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                  std::source_location where = std::source_location::current()) {
  const int lane = pydl_emu::lane_id();
  int src = lane ^ lane_mask;
  if (src / width != lane / width) src = lane;  // outside the segment: own value
  return pydl_emu::from_bits<T>(pydl_emu::exchange(mask, pydl_emu::to_bits(var), src, where));
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                   std::source_location where = std::source_location::current()) {
  const int lane = pydl_emu::lane_id();
  int src = lane + static_cast<int>(delta);
  if ((lane % width) + static_cast<int>(delta) >= width) src = lane;
  return pydl_emu::from_bits<T>(pydl_emu::exchange(mask, pydl_emu::to_bits(var), src, where));
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                 std::source_location where = std::source_location::current()) {
  const int lane = pydl_emu::lane_id();
  int src = lane - static_cast<int>(delta);
  if ((lane % width) < static_cast<int>(delta)) src = lane;
  return pydl_emu::from_bits<T>(pydl_emu::exchange(mask, pydl_emu::to_bits(var), src, where));
}

// ---- atomics ---------------------------------------------------------------------------------
template <class T>
T __emu_atomic_add(T* address, T val) {
  return std::atomic_ref<T>(*address).fetch_add(val);
}
inline float atomicAdd(float* a, float v) { return __emu_atomic_add(a, v); }
inline double atomicAdd(double* a, double v) { return __emu_atomic_add(a, v); }
inline int atomicAdd(int* a, int v) { return __emu_atomic_add(a, v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return __emu_atomic_add(a, v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
  return __emu_atomic_add(a, v);
}
inline int atomicMax(int* a, int v) {
  std::atomic_ref<int> r(*a);
  int old = r.load();
  while (old < v && !r.compare_exchange_weak(old, v)) {
  }
  return old;
}
inline int atomicCAS(int* a, int compare, int val) {
  std::atomic_ref<int> r(*a);
  r.compare_exchange_strong(compare, val);
  return compare;
}

// ---- math intrinsics used by the kernels ------------------------------------------------------
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return std::exp(x); }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline int __float_as_int(float f) {
  int i;
  std::memcpy(&i, &f, 4);
  return i;
}
