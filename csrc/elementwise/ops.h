// The elementwise engine's operations and entry points (float32 / float64).
//
// Every op is an inner kernel (kernels.inl) instantiated per instruction set: kernels.cpp (the
// portable Vec<T, Scalar>), kernels_avx2.cpp (Vec<T, AVX2>), kernels_avx512.cpp
// (Vec<T, AVX512>). Each translation unit fills a KernelTable; kernel_table() returns the one for
// the path csrc/cpu_features.h currently selects (PYDL_SIMD / set_simd_path cap it). The loop
// driver (loop.h) feeds the kernels runs of elements; elementwise.cpp joins the two.
#pragma once

#include <cstdint>
#include <vector>

#include "elementwise/loop.h"

namespace pydl::ew {

// y = f(x; p0, p1)
enum class Unary : int {
  neg, abs, sqrt, rsqrt, exp, log, log1p, expm1, sin, cos, tanh, sigmoid, erf,
  relu, leaky_relu,  // p0: negative slope
  elu,               // p0: alpha
  gelu, gelu_tanh, silu,
  softplus,          // p0: beta, p1: threshold
  hardtanh,          // p0: min, p1: max
  pow_scalar,        // p0: exponent (2, 3, 0.5, -0.5, -1, -2, 1, 0 are exact fast paths)
  count
};

// y = f(a, b; p0, p1). The *_backward ops are activations' gradients fused in one pass:
// a is the incoming gradient g, b what the op saved (its input x or its output y, as named).
enum class Binary : int {
  add, sub, mul, div, maximum, minimum, pow,
  relu_backward,        // g, y: y > 0 or NaN ? g : 0 (PyTorch's threshold_backward at NaN)
  leaky_relu_backward,  // g, x; p0 slope: x > 0 ? g : g * slope
  elu_backward,         // g, y; p0 alpha > 0: y <= 0 ? g * (y + alpha) : g
  hardtanh_backward,    // g, y; p0 min, p1 max: min < y < max (or NaN) ? g : 0
  sigmoid_backward,     // g, y: g * y * (1 - y)
  tanh_backward,        // g, y: g * (1 - y^2)
  gelu_backward,        // g, x: g * (Phi(x) + x phi(x))
  gelu_tanh_backward,   // g, x: derivative of x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  silu_backward,        // g, x: g * s (1 + x (1 - s)), s = sigmoid(x)
  softplus_backward,    // g, x; p0 beta, p1 threshold: beta x > threshold ? g : g sigmoid(beta x)
  count
};

enum class Compare : int { eq, ne, lt, le, gt, ge, count };

struct Params {
  double p0 = 0, p1 = 0;
};

// One inner kernel: ptrs[0] the output run (contiguous), ptrs[1..] the inputs with their byte
// strides, n elements.
using InnerFn = void (*)(char* const* ptrs, const int64_t* strides, int64_t n, const Params& p);

struct KernelTable {
  InnerFn unary[2][int(Unary::count)];    // [0] float32, [1] float64
  InnerFn binary[2][int(Binary::count)];
  InnerFn compare[2][int(Compare::count)];  // bool output
  InnerFn where[2];                         // (cond: bool, a, b)
};

const KernelTable& kernel_table_portable();
#if defined(PYDL_HAVE_AVX2_KERNELS)
const KernelTable& kernel_table_avx2();
#endif
#if defined(PYDL_HAVE_AVX512_KERNELS)
const KernelTable& kernel_table_avx512();
#endif
// The table of the currently selected SIMD path.
const KernelTable& kernel_table();

// Elements per thread below which a kernel of this cost runs on one thread: a hand-off to the
// pool costs a few microseconds, which an add of 32K floats (~10 us from DRAM) just repays.
int64_t grain_for(Unary op);
int64_t grain_for(Binary op);

// Runs `fn` over a plan (operands[0] the output: C-contiguous, freshly allocated).
void run_kernel(InnerFn fn, const std::vector<OperandRef>& operands,
                const std::vector<int64_t>& out_shape, const Params& p, int64_t grain);

}  // namespace pydl::ew
