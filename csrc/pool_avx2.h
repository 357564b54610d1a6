#pragma once
// AVX2 row kernels for pool.cpp. They live in pool_avx2.cpp, the only pooling file compiled with
// -mavx2 -mfma; pool.cpp calls them only when use_avx2() is true and runs its portable loops
// otherwise. Both paths take the window's taps in the same order (row-major, the first maximum
// wins, a NaN always wins; sums start from 0 and add tap by tap), so their results are equal
// bit for bit, not just within rounding.
#include <cstdint>

#include "pool.h"

namespace pydl::pool_detail {

// Output columns [ow0, ow1) of output row oh whose windows lie wholly inside the input's columns
// (no clipping), window rows [rlo, rhi) (rlo < rhi) counted from input row h0 = oh*stride_h -
// pad_h. Handles stride_w 1 and 2; returns the end of the columns it did: [ow0, end) are
// written, [end, ow1) are left to the caller's portable loop (end == ow0 when it did nothing).
//
// Max: y[ow] and, when taps is not null, taps[ow] = r * kernel_w + t of the maximum.
int64_t max_pool_row_avx2(const Pool2dShape& s, const float* xp, int64_t h0, int64_t rlo,
                          int64_t rhi, int64_t ow0, int64_t ow1, float* y, int32_t* taps);

// The same over a rectangle of output rows [oh0, oh1) and columns [ow0, ow1) of one plane whose
// windows lie wholly inside the input (no clipping along either axis); yp and taps point at the
// plane's outputs (row stride OW). The end returned holds for every row of the rectangle.
// Max: taps as bytes (kernel_h * kernel_w <= 255), or not at all when taps is null.
int64_t max_pool_rect_avx2(const Pool2dShape& s, const float* xp, int64_t oh0, int64_t oh1,
                           int64_t ow0, int64_t ow1, float* yp, uint8_t* taps);
// Average (no dilation): y = (sum of the window, tap by tap from 0) / divisor.
int64_t avg_pool_rect_avx2(const Pool2dShape& s, const float* xp, int64_t oh0, int64_t oh1,
                           int64_t ow0, int64_t ow1, float divisor, float* yp);

// Backward of one row of 2x2, stride 2 windows (they do not overlap): dx0[2*ow + t] and
// dx1[2*ow + t] (t = 0, 1) are the four elements of window ow; for ow in [ow0, ow1) (all inside
// the input) they are written, not added to. Max: the gradient dy[ow] goes to the window's tap
// (taps[ow] = 2*r + t), its other elements get 0. Average: every element gets g[ow].
// Both return the end of the output columns done, as above.
int64_t max_pool_backward_2x2_row_avx2(const float* dy, const uint8_t* taps, int64_t ow0,
                                       int64_t ow1, float* dx0, float* dx1);
int64_t avg_pool_backward_2x2_row_avx2(const float* g, int64_t ow0, int64_t ow1, float* dx0,
                                       float* dx1);

// Maximum of one wide window: rows [0, rows) of len contiguous floats each, row r at
// xp + r * row_stride (the window of a pooling with dil_w 1 and no clipping). Returns the value
// at the first maximum in row-major order, or at the last NaN when there is one (PyTorch's rule
// "v > m or v is NaN", as the tap loops), and its position in *row, *col. Two passes: a 32-lane max (and NaN test) over the
// window, then a compare scan for the first element equal to it (the window is in cache by
// then); the tap loops' one compare-select per element is a serial dependency chain instead.
float max_window_wide_avx2(const float* xp, int64_t rows, int64_t len, int64_t row_stride,
                           int64_t* row, int64_t* col);

// Sum of n contiguous floats, 32 lanes (four accumulators) at a time.
float contiguous_sum_avx2(const float* p, int64_t n);

// memcpy with non-temporal (streaming) stores from the first 32-byte aligned destination byte
// on, then an sfence: for large outputs that nothing re-reads soon, it skips the read of each
// destination line that an ordinary store does first and leaves the caches alone.
void stream_copy_avx2(void* dst, const void* src, int64_t bytes);

}  // namespace pydl::pool_detail
