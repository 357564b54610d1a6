#pragma once
// AVX2+FMA direct convolution for conv.cpp, float32, stride 1, no dilation. It lives in
// conv_avx2.cpp, the only convolution file compiled with -mavx2 -mfma; conv.cpp calls it only
// when use_avx2() is true. For layers with few output channels (LeNet's) the column matrix of
// the im2col path would be written, packed and read for a GEMM whose m is 6 or 16; the direct
// loops read the input where it lies instead, eight output columns per vector.
//
// Buffers are described by strides (in elements). Input reads in[c][oh + r][ow + s] go up to
// column round_up(OW, 8) + S - 2 of a row: the caller pads rows (or proves the reads stay inside
// the buffer); the columns past OW only feed lanes that are never stored.
#include <cstdint>

namespace pydl::conv_detail {

struct Planes {  // element (c, row, col) at data[c * plane + row * row_stride + col]
  const float* data;
  int64_t plane, row_stride;
};

// Weights packed for the forward kernel: channel blocks of kDirectKB, each tap's kDirectKB
// values side by side (zero past K), taps in (r, c, s) order; offsets[t] is tap t's element
// offset in the input planes (c * plane + r * row_stride + s).
constexpr int64_t kDirectKB = 6;
struct DirectWeights {
  const float* packed;     // [ceil(K / kDirectKB)][taps][kDirectKB]
  const int64_t* offsets;  // [taps]
  int64_t K, R, taps;      // taps = C * R * S
};

// y[k][oh][ow] (OH x OW planes, contiguous) = bias[k] (0 when null)
//     + sum_{c, r, s} w[k][c][r][s] * in[c][oh + r][ow + s]      for k < K.
// Written, not added. Rows of `in` outside [live_lo, live_hi) are zero (padding): their taps
// are skipped.
void direct_conv_forward_avx2(const Planes& in, const DirectWeights& w, const float* bias,
                              int64_t OH, int64_t OW, int64_t live_lo, int64_t live_hi, float* y);

// Weight gradient in vector lanes: for every tap (k, c, r, s) of a K x C x R x S kernel,
//   lanes[tap][l] += sum over images n < N, rows oh < OH, vectors v of
//                    dy_n[k][oh][8v + l] * in_n[c][oh + r][8v + l + s]
// (the dw of the tap is the sum of its 8 lanes: sum_lanes_avx2). dy_n has rows of
// round_up(OW, 8) values, zero past OW (they are summed); image n's planes start at
// data + n * in_n (dy_n). Called on chunks of images small enough to stay in L1, the lanes
// (K * C * R * S * 8 floats) carried from one chunk to the next.
void direct_conv_weight_lanes_avx2(const Planes& in, int64_t in_n, const Planes& dy,
                                   int64_t dy_n, int64_t N, int64_t OH, int64_t OW, int64_t K,
                                   int64_t C, int64_t R, int64_t S, float* lanes);
// out[i] += lanes[i][0] + ... + lanes[i][7] for i < n.
void sum_lanes_avx2(const float* lanes, int64_t n, float* out);

// ---- Winograd F(2x2, 3x3) transforms (3x3 kernels, stride 1): y tiles of 2x2 from 4x4 input
// tiles, with U = G g G^T (weights), V = B^T d B (input), Y = A^T M A (output), M = U . V summed
// over input channels (16 GEMMs, one per position xi of the 4x4 tile).
//
// Input transform of one plane, given as its even and odd columns (even[row][j] is column 2j
// of the padded plane, odd[row][j] column 2j + 1; rows of row_stride values, readable up to
// j = round_up(tiles_w, 8)): tile (ti, tj) of tile rows [ti0, ti1) is rows 2ti .. 2ti + 3,
// columns 2tj .. 2tj + 3 (unit-stride loads, no shuffles). Writes v[xi * v_xi + t] for
// t = (ti - ti0) * tiles_w + tj.
void winograd_input_avx2(const float* even, const float* odd, int64_t row_stride, int64_t ti0,
                         int64_t ti1, int64_t tiles_w, float* v, int64_t v_xi);
// Output transform of one output channel: m[xi * m_xi + t] (t as above) to the 2x2 tiles of
// y (OH x OW plane, rows 2*ti0 onwards), plus bias. Reads m up to 7 values past each tile row.
void winograd_output_avx2(const float* m, int64_t m_xi, int64_t ti0, int64_t ti1,
                          int64_t tiles_w, float bias, int64_t OH, int64_t OW, float* y);

// Weight-gradient transform of dy (F(3x3, 2x2): a 4x4 input tile correlated with a 2x2 dy tile
// gives the tile's 3x3 contribution to dw): tile (ti, tj) is dy rows 2ti, 2ti + 1, columns
// 2tj, 2tj + 1, given as even and odd columns as above. Writes u[xi * u_xi + t] = S (G' g G'^T) S
// with G' = [[1, 0], [1/2, 1/2], [1/2, -1/2], [0, 1]] and S = diag(1, 1, 1, -1), the sign that
// lets the forward input transform (B^T d B) serve for this one's B'^T d B'.
void winograd_dy_avx2(const float* even, const float* odd, int64_t row_stride, int64_t ti0,
                      int64_t ti1, int64_t tiles_w, float* u, int64_t u_xi);

// even[j] = row[2j], odd[j] = row[2j + 1] for j < half (row holds 2 * half values).
void split_columns_avx2(const float* row, int64_t half, float* even, float* odd);

}  // namespace pydl::conv_detail

namespace pydl::conv_detail {

// ---- tap lists: depthwise and grouped convolution with few channels per group ----------------
// A convolution of one output plane is a list of taps, each a weight and an element offset into
// a padded (and, for strided columns, column-phase-split) input buffer, so that every tap reads
// a unit-stride row segment whatever the stride, dilation or padding:
//   out[i * out_row + j] = init + sum_t w[t] * in[i * in_row + off[t] + j]   (i < rows, j < cols)
// in must be readable up to 7 elements past column cols - 1 of each tap's row (those lanes are
// never stored). Written, not added.
void tap_correlate_avx2(const float* in, int64_t in_row, const int64_t* off, const float* w,
                        int64_t taps, int64_t rows, int64_t cols, float init, float* out,
                        int64_t out_row);
// The weight gradient of the same tap list:
//   acc[t] += sum_{i < rows, j < cols} dy[i * dy_row + j] * in[i * in_row + off[t] + j]
// summed in float lanes per call, added to acc in double. Reads nothing past column cols - 1.
void tap_weight_avx2(const float* in, int64_t in_row, const int64_t* off, int64_t taps,
                     const float* dy, int64_t dy_row, int64_t rows, int64_t cols, double* acc);

}  // namespace pydl::conv_detail

namespace pydl::conv_detail {
// dst[2j] = even[j], dst[2j + 1] = odd[j] for the n values of dst (even holds (n + 1) / 2 values,
// odd n / 2).
void interleave_columns_avx2(const float* even, const float* odd, int64_t n, float* dst);
}  // namespace pydl::conv_detail
