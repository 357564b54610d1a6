// The AVX2+FMA instantiation of the elementwise kernels (compiled with -mavx2 -mfma; called only
// after the CPUID check in kernel_table()).
#define PYDL_SIMD_NS avx2
#include "elementwise/kernels.inl"

namespace pydl::ew {

const KernelTable& kernel_table_avx2() {
  static const KernelTable table = avx2::make_table<simd::avx2::AVX2>();
  return table;
}

}  // namespace pydl::ew
