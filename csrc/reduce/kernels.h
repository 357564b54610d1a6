#pragma once
// The per-ISA row kernels of csrc/reduce/ (kernels.inl), as a table of function pointers that
// reduce.cpp picks once per call from the SIMD path (portable, AVX2+FMA, AVX-512).
#include <cstdint>

#include "reduce/reduce.h"

namespace pydl::reduce {

template <typename T>
struct RowKernels {
  double (*sum[4])(const T* x, int64_t n, double centre);           // by SumOp
  // out[i] = sum of term(rows[i][k]), k < n, for four rows with their centres (by SumOp)
  void (*sum4[4])(const T* const* rows, int64_t n, const double* centre, double* out);
  // part[j] += sum over r < nrows of term(base[row_off[r] + j]), j < w (by SumOp)
  void (*add_cols[4])(const T* base, const int64_t* row_off, int64_t nrows, int64_t w,
                      const T* centre, double* part);
  T (*ext)(const T* x, int64_t n, ExtOp op);
  // first k with x[k] == v (|x[k]| for kMaxAbs; the first NaN when v is NaN)
  int64_t (*find)(const T* x, int64_t n, T v, ExtOp op);
  void (*softmax)(const T* x, int64_t n, bool log, T* y);
  // dst[a * dst_stride + l] = src[l * src_stride + a] for a < na, l < nl: one tile of the
  // transposing copy (T only sets the element size: values are moved bit for bit).
  void (*transpose_tile)(const T* src, int64_t src_stride, T* dst, int64_t dst_stride,
                         int64_t na, int64_t nl);
};

template <typename T>
const RowKernels<T>& row_kernels_portable();
#ifdef PYDL_HAVE_AVX2_KERNELS
template <typename T>
const RowKernels<T>& row_kernels_avx2();
#endif
#ifdef PYDL_HAVE_AVX512_KERNELS
template <typename T>
const RowKernels<T>& row_kernels_avx512();
#endif

}  // namespace pydl::reduce
