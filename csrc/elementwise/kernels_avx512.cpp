// The AVX-512 (F/BW/DQ/VL) instantiation of the elementwise kernels; called only after the CPUID
// check in kernel_table().
#define PYDL_SIMD_NS avx512
// GCC 12's own AVX-512 headers trip -Wmaybe-uninitialized inside _mm512_roundscale / getmant
// (the pass-through operand of their masked forms); the warning is about the header, not us.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "elementwise/kernels.inl"

namespace pydl::ew {

const KernelTable& kernel_table_avx512() {
  static const KernelTable table = avx512::make_table<simd::avx512::AVX512>();
  return table;
}

}  // namespace pydl::ew
