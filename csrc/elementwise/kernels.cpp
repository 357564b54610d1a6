// The portable instantiation of the elementwise kernels: Vec<T, Scalar>, one element at a time
// (the compiler may still vectorise the simple loops with the baseline SSE2).
#define PYDL_SIMD_NS portable
#include "elementwise/kernels.inl"

namespace pydl::ew {

const KernelTable& kernel_table_portable() {
  static const KernelTable table = portable::make_table<simd::portable::Scalar>();
  return table;
}

}  // namespace pydl::ew
