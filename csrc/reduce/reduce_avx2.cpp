// The AVX2 instantiation of the reduction row kernels (compiled with the AVX2 flags; called only
// after the CPUID check in reduce.cpp's row_kernels()).
#define PYDL_SIMD_NS avx2
#include "reduce/kernels.inl"

namespace pydl::reduce {

template <typename T>
const RowKernels<T>& row_kernels_avx2() {
  static const RowKernels<T> table = avx2::make_row_kernels<T, simd::avx2::AVX2>();
  return table;
}
template const RowKernels<float>& row_kernels_avx2<float>();
template const RowKernels<double>& row_kernels_avx2<double>();

}  // namespace pydl::reduce
