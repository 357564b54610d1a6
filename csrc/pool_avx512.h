#pragma once
// AVX-512 kernels for pool.cpp (F/BW/DQ/VL). They live in pool_avx512.cpp, the only pooling file
// compiled with -mavx512*; pool.cpp calls them only when use_avx512() is true and takes the
// AVX2 or portable path otherwise. The window's taps are combined in the portable loops' order
// rule (the first maximum wins, a NaN always wins, so the last NaN of a window is the one
// kept), so values and taps equal theirs bit for bit.
#include <cstdint>
#include <cstring>

#include "pool.h"

namespace pydl::pool_detail {

#ifdef PYDL_HAVE_AVX512_KERNELS

// 2x2 windows at stride 2 along both axes, no dilation: output rows [oh0, oh1) and columns
// [ow0, ow1) of one plane whose windows lie wholly inside the input, sixteen windows at a time
// (the last block of a row masked). yp and taps point at the plane's outputs (row stride OW);
// taps (bytes 2 * r + t) may be null. Returns ow1 when it did the rectangle, ow0 for any other
// window (the caller then takes its other paths).
int64_t max_pool_rect_2x2s2_avx512(const Pool2dShape& s, const float* xp, int64_t oh0,
                                   int64_t oh1, int64_t ow0, int64_t ow1, float* yp,
                                   uint8_t* taps);

// Average of 2x2 windows at stride 2 along both axes over output rows [oh0, oh1) and columns
// [ow0, ow1) of one plane whose windows lie wholly inside the input, all with the same divisor,
// sixteen windows at a time (the last block of a row masked); the taps are summed in the
// portable loop's order, so the bits equal its. Returns ow1, or ow0 for any other window.
int64_t avg_pool_rect_2x2s2_avx512(const Pool2dShape& s, const float* xp, int64_t oh0,
                                   int64_t oh1, int64_t ow0, int64_t ow1, float divisor,
                                   float* yp);

// One whole plane of 3x3 windows at stride 2 along both axes, no dilation, any padding (0 or
// 1) and ceil_mode: y (row stride OW) and, when taps is not null, the tap bytes (255 for a
// window with no input element), sixteen windows at a time, clipped windows included (their
// taps outside the input are masked off, as the portable loops skip them). Separable: each
// input row's 3-wide maxima are computed once and shared by the two output rows that hold it.
// Returns false (and writes nothing) for any other window.
bool max_pool_plane_3x3s2_avx512(const Pool2dShape& s, const float* xp, float* yp,
                                 uint8_t* taps);

// Backward of one row of 2x2, stride 2 windows, as max_pool_backward_2x2_row_avx2 (dx0, dx1
// written, not added to: dy[ow] at the window's tap 2 * r + t, 0 at its other elements and at
// all four for any other tap byte), all of [ow0, ow1); returns ow1.
int64_t max_pool_backward_2x2_row_avx512(const float* dy, const uint8_t* taps, int64_t ow0,
                                         int64_t ow1, float* dx0, float* dx1);

// One plane of the backward of 3x3 windows at stride 2 with padding 1 along both axes, no
// dilation (ResNet's stem pooling), any H, W, OH, OW: every dx element written once (not added
// to), dense, sixteen column pairs at a time. Input row 2k takes window row 1 of output row k,
// row 2k + 1 window row 2 of output row k and row 0 of output row k + 1; within a row, column
// 2j takes tap t = 1 of window j, column 2j + 1 tap 2 of window j and tap 0 of window j + 1.
// The contributions are added to +0 in the order of the portable scatter (output by output),
// so the sums equal its bit for bit. Returns false (and writes nothing) for any other window.
bool max_pool_backward_3x3s2p1_plane_avx512(const Pool2dShape& s, const float* dy,
                                            const uint8_t* taps, float* dx);

// memcpy whose whole 64-byte destination lines are written with non-temporal (streaming)
// stores, then an sfence; the partial lines at either end (if dst or the end is not 64-byte
// aligned) take ordinary stores. A streaming store of a whole line needs no read of the line
// first and leaves the caches to the data that is read again.
void stream_copy_avx512(void* dst, const void* src, int64_t bytes);

#else
// Builds without the AVX-512 kernels (non-x86, MSVC): use_avx512() is always false there, so
// these are never called; they only let pool.cpp link, each saying "nothing done".
inline int64_t max_pool_rect_2x2s2_avx512(const Pool2dShape&, const float*, int64_t, int64_t,
                                          int64_t ow0, int64_t, float*, uint8_t*) { return ow0; }
inline int64_t avg_pool_rect_2x2s2_avx512(const Pool2dShape&, const float*, int64_t, int64_t,
                                          int64_t ow0, int64_t, float, float*) { return ow0; }
inline bool max_pool_plane_3x3s2_avx512(const Pool2dShape&, const float*, float*, uint8_t*) {
  return false;
}
inline int64_t max_pool_backward_2x2_row_avx512(const float*, const uint8_t*, int64_t ow0,
                                                int64_t, float*, float*) { return ow0; }
inline bool max_pool_backward_3x3s2p1_plane_avx512(const Pool2dShape&, const float*,
                                                   const uint8_t*, float*) { return false; }
inline void stream_copy_avx512(void* dst, const void* src, int64_t bytes) {
  std::memcpy(dst, src, static_cast<size_t>(bytes));
}
#endif

}  // namespace pydl::pool_detail
