// The elementwise engine's entry: the kernel table of the selected SIMD path, per-op grains, and
// running a kernel over a loop plan (see ops.h, loop.h).
#include <stdexcept>

#include "cpu_features.h"
#include "elementwise/ops.h"

namespace pydl::ew {

const KernelTable& kernel_table() {
#if defined(PYDL_HAVE_AVX512_KERNELS)
  if (use_avx512()) return kernel_table_avx512();
#endif
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (use_avx2()) return kernel_table_avx2();
#endif
  return kernel_table_portable();
}

// Grains: the element count per thread below which splitting does not pay. Memory-bound ops
// (a few cycles of work per 8-12 bytes) need ~32K elements to repay a pool hand-off (~5 us on
// the development VM); the polynomial ones do ~10x the work per element.
namespace {
constexpr int64_t kCheapGrain = int64_t(1) << 15;
constexpr int64_t kCostlyGrain = int64_t(1) << 12;
}  // namespace

int64_t grain_for(Unary op) {
  switch (op) {
    case Unary::neg: case Unary::abs: case Unary::relu: case Unary::leaky_relu:
    case Unary::hardtanh: case Unary::sqrt: case Unary::rsqrt: case Unary::pow_scalar:
      return kCheapGrain;
    default:
      return kCostlyGrain;
  }
}

int64_t grain_for(Binary op) {
  switch (op) {
    case Binary::add: case Binary::sub: case Binary::mul: case Binary::div:
    case Binary::maximum: case Binary::minimum: case Binary::relu_backward:
    case Binary::leaky_relu_backward: case Binary::hardtanh_backward:
    case Binary::sigmoid_backward: case Binary::tanh_backward:
      return kCheapGrain;
    default:
      return kCostlyGrain;
  }
}

void run_kernel(InnerFn fn, const std::vector<OperandRef>& operands,
                const std::vector<int64_t>& out_shape, const Params& p, int64_t grain) {
  if (fn == nullptr) throw std::logic_error("elementwise: no kernel for this op");
  const LoopPlan plan(operands, out_shape);
  run_loop(plan, grain, [&](char* const* ptrs, const int64_t* strides, int64_t n) {
    fn(ptrs, strides, n, p);
  });
}

}  // namespace pydl::ew
