#pragma once
// Reductions over any set of axes of a strided float32/float64 array (sum, mean, var/std, norms,
// logsumexp, max/min with indices), softmax/log_softmax along one axis, and a blocked copy that
// makes strided (transposed) arrays contiguous. Design in reduce.cpp.
#include <cstdint>
#include <vector>

namespace pydl {

// What is summed per element: x, (x - c)^2, |x|, exp(x - c); c is a per-output centre (the mean
// for var, the max for logsumexp) or 0 when null.
enum class SumOp : int { kSum = 0, kSqDiff = 1, kAbs = 2, kExpDiff = 3 };
// Max and min propagate NaN (as torch.amax); kMaxAbs is max |x| (the inf-norm).
enum class ExtOp : int { kMax = 0, kMin = 1, kMaxAbs = 2 };

// A strided view: shape and strides in elements (any sign-free layout NumPy gives: strides >= 0).
struct View {
  std::vector<int64_t> shape, strides;
};

// out[o] = sum over the reduced axes of f(x), out C-contiguous over the kept axes in order.
// Deterministic: the split into partial sums depends on the shape only, never the thread count.
template <typename T>
void reduce_sum_cpu(const T* x, const View& v, const std::vector<bool>& reduced, SumOp op,
                    const T* centre, T* out);
// out[o] = max/min over the reduced axes (NaN if any is NaN); index (may be null) gets the
// flat position over the reduced axes (row-major) of the first extreme (or first NaN).
template <typename T>
void reduce_ext_cpu(const T* x, const View& v, const std::vector<bool>& reduced, ExtOp op,
                    T* out, int64_t* index);
// softmax (log_softmax when log) of rows of n contiguous values: rows * n values.
template <typename T>
void softmax_rows_cpu(const T* x, int64_t rows, int64_t n, bool log, T* y);
// y (C-contiguous) = the strided view of x, elem_size 1, 4 or 8, through cache-sized tiles.
void copy_strided_cpu(const void* x, const View& v, int64_t elem_size, void* y);

}  // namespace pydl
