#pragma once
// AVX-512 "row-flat" convolution kernels for conv.cpp, float32. conv_avx512.cpp alone is
// compiled with AVX-512 F/BW/DQ/VL; conv.cpp calls it only when use_avx512() is true.
//
// The layout trick: a plane whose rows are exactly as wide as the output rows (OW) lets output
// pixel q = oh * OW + ow read the input pixel (oh + r, ow) at q + r * OW: every kernel row r is
// one contiguous shift of the whole flattened plane, so 16 consecutive output pixels (two 8-wide
// LeNet rows, or one and a third 12-wide rows) fill one zmm with no lanes wasted on row ends.
// The column taps s are made into S shifted copies of the input beforehand (conv.cpp), which is
// S times the input instead of the R * S of a full column matrix.
#include <cstdint>

#include "conv_avx2.h"  // DirectWeights (the packed-weight layout is shared)

namespace pydl::conv_detail {

// out[m * out_plane + q] = (bias ? bias[m] : 0)
//     + sum over taps t of packed(m, t) * in[offsets[t] + q]          for m < w.K, q < Q,
// with taps ordered t = r * J + j (J = w.taps / w.R) and the packed weights in blocks of
// kDirectKB output rows (DirectWeights). Written, not added.
// Tap t's kernel row r = t / J reads input rows (q / row_w) + r * r_rows; rows outside
// [live_lo, live_hi) are known to be zero (padding) and taps that only read those are skipped.
// Reads up to 15 floats past offsets[t] + Q - 1 (the caller leaves that much slack); the lanes
// past Q are never stored.
void rowflat_correlate_avx512(const float* in, const DirectWeights& w, const float* bias,
                              int64_t Q, int64_t row_w, int64_t r_rows, int64_t live_lo,
                              int64_t live_hi, float* out, int64_t out_plane);

// Weight gradient in lanes: for k < K, j < J, r < R,
//   lanes[((k * J + j) * R + r) * 16 + l] += sum over images n < N and vectors v of
//       dy[n * dy_n + k * P + 16 v + l] * in[n * in_n + j * in_plane + r * r_off + 16 v + l]
// over pixels 16 v + l < P (the last vector is masked: no slack needed, nothing past P read).
// With accumulate false the lanes are overwritten instead (their old contents never read).
void rowflat_weight_lanes_avx512(const float* in, int64_t in_n, int64_t in_plane, int64_t J,
                                 int64_t R, int64_t r_off, const float* dy, int64_t dy_n,
                                 int64_t K, int64_t P, int64_t N, bool accumulate, float* lanes);

// The shifted copies for stride_w == 1: dst[((c * S + t) * hp + h) * OW + ow] =
// x[c][h - pad_h][ow + t * dil_w - pad_w] (0 outside x's C planes of H x W), for c < C, t < S,
// h < hp, ow < OW: one masked load and store per 16 columns of a row.
void rowflat_shifted_copies_avx512(const float* x, int64_t C, int64_t H, int64_t W, int64_t S,
                                   int64_t dil_w, int64_t pad_h, int64_t pad_w, int64_t hp,
                                   int64_t OW, float* dst);

// The backward-input column taps for stride_w == 1, as a gather: for c < C, h < rows, w < W,
//   dx[c * dx_plane + h * W + w] = sum over t < S of src[((c * S + t) * rows + h) * OW + ow]
// with ow = w - t * dil_w + pad_w, the taps whose ow lies outside [0, OW) left out. Overwrites.
void rowflat_gather_columns_avx512(const float* src, int64_t C, int64_t S, int64_t rows,
                                   int64_t OW, int64_t dil_w, int64_t pad_w, int64_t W, float* dx,
                                   int64_t dx_plane);

// out[i] = lanes[i][0] + ... + lanes[i][15] for i < n.
void sum_lanes16_avx512(const float* lanes, int64_t n, float* out);

}  // namespace pydl::conv_detail
