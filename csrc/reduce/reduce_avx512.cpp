// The AVX512 instantiation of the reduction row kernels (compiled with the AVX512 flags; called only
// after the CPUID check in reduce.cpp's row_kernels()).
#define PYDL_SIMD_NS avx512
#include "reduce/kernels.inl"

namespace pydl::reduce {

template <typename T>
const RowKernels<T>& row_kernels_avx512() {
  static const RowKernels<T> table = avx512::make_row_kernels<T, simd::avx512::AVX512>();
  return table;
}
template const RowKernels<float>& row_kernels_avx512<float>();
template const RowKernels<double>& row_kernels_avx512<double>();

}  // namespace pydl::reduce
