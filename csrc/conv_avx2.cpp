// AVX2+FMA direct convolution (see conv_avx2.h). This file alone is compiled with -mavx2 -mfma;
// conv.cpp calls into it only when use_avx2() is true.
//
// Forward: a register tile of KN output channels (up to 6) x NP output vectors (2 vectors of 8
// columns, anywhere in the output plane): per tap (c, r, s) two unaligned input loads and KN
// weight broadcasts feed 2 * KN FMAs into 12 accumulators (the GEMM micro-kernel's ratio,
// without a column matrix).
// Weight gradient: for fixed (c, r), KB output channels (2) x SB taps s (up to 5) accumulate
// dy * x over every image, row and vector of columns; the lanes are summed once at the end.
//
// Only the entry points have external linkage, and nothing from the standard library is used, so
// no AVX-compiled inline function can stand in for a portable one.
#include "conv_avx2.h"

#include <immintrin.h>

namespace pydl::conv_detail {
namespace {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Lanes [0, n) set (n in 0..8), for the masked store of a row's last, partial vector.
inline __m256i lane_mask(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(n)), idx);
}

inline float hsum(__m256 v) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

// Output vector p of a plane: row p / OWv, columns 8 * (p % OWv) ...
struct Vec {
  int64_t in_off, out_off, lanes;
};

inline Vec vec_at(int64_t p, int64_t OWv, int64_t OW, int64_t in_row) {
  const int64_t oh = p / OWv, ow = 8 * (p % OWv);
  return {oh * in_row + ow, oh * OW + ow, min64(8, OW - ow)};
}

// One register tile: KN output channels (one block of the packed weights) x NP output vectors.
// Taps [t0, t1) in (r, c, s) order; tap t reads in + off[t] + (vector's offset) and broadcasts
// wb[t * 6 + k].
template <int KN, int NP>
inline void forward_tile(const float* in, const int64_t* off, int64_t t0, int64_t t1,
                         const float* wb, const float* bias, const Vec* v, int64_t OHW,
                         float* y) {
  __m256 acc[KN][NP];
  for (int k = 0; k < KN; ++k) {
    const __m256 b = _mm256_set1_ps(bias ? bias[k] : 0.0f);
    for (int j = 0; j < NP; ++j) acc[k][j] = b;
  }
  for (int64_t t = t0; t < t1; ++t) {
    const float* x = in + off[t];
    const float* wt = wb + t * kDirectKB;
    __m256 xv[NP];
    for (int j = 0; j < NP; ++j) xv[j] = _mm256_loadu_ps(x + v[j].in_off);
    for (int k = 0; k < KN; ++k) {
      const __m256 wv = _mm256_broadcast_ss(wt + k);
      for (int j = 0; j < NP; ++j) acc[k][j] = _mm256_fmadd_ps(wv, xv[j], acc[k][j]);
    }
  }
  for (int k = 0; k < KN; ++k) {
    for (int j = 0; j < NP; ++j) {
      float* out = y + k * OHW + v[j].out_off;
      if (v[j].lanes == 8)
        _mm256_storeu_ps(out, acc[k][j]);
      else
        _mm256_maskstore_ps(out, lane_mask(v[j].lanes), acc[k][j]);
    }
  }
}

// Every channel block for the NP vectors v: the vectors' input rows stay in L1 while the
// weight blocks stream past.
template <int NP>
void forward_vectors(const DirectWeights& dw, const float* in, const float* bias, const Vec* v,
                     int64_t t0, int64_t t1, int64_t OHW, float* y) {
  const int64_t K = dw.K, blocks = (K + kDirectKB - 1) / kDirectKB;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* wb = dw.packed + b * dw.taps * kDirectKB;
    const float* bb = bias ? bias + b * kDirectKB : nullptr;
    float* yb = y + b * kDirectKB * OHW;
    switch (K - b * kDirectKB) {
      case 1: forward_tile<1, NP>(in, dw.offsets, t0, t1, wb, bb, v, OHW, yb); break;
      case 2: forward_tile<2, NP>(in, dw.offsets, t0, t1, wb, bb, v, OHW, yb); break;
      case 3: forward_tile<3, NP>(in, dw.offsets, t0, t1, wb, bb, v, OHW, yb); break;
      case 4: forward_tile<4, NP>(in, dw.offsets, t0, t1, wb, bb, v, OHW, yb); break;
      case 5: forward_tile<5, NP>(in, dw.offsets, t0, t1, wb, bb, v, OHW, yb); break;
      default: forward_tile<6, NP>(in, dw.offsets, t0, t1, wb, bb, v, OHW, yb); break;
    }
  }
}

// Kernel rows [r0, r1) that read a live input row (one in [live_lo, live_hi), the others are
// zero padding) for some output row in [oh_first, oh_last].
inline void live_rows(int64_t oh_first, int64_t oh_last, int64_t R, int64_t live_lo,
                      int64_t live_hi, int64_t* r0, int64_t* r1) {
  const int64_t a = live_lo - oh_last, b = live_hi - oh_first;
  *r0 = a < 0 ? 0 : a;
  *r1 = b > R ? R : b;
  if (*r1 < *r0) *r1 = *r0;
}

}  // namespace

namespace {

// The plane's output vectors NP at a time (then one at a time for the rest).
template <int NP>
void forward_plane(const Planes& in, const DirectWeights& dw, const float* bias, int64_t OH,
                   int64_t OW, int64_t live_lo, int64_t live_hi, float* y) {
  const int64_t OWv = (OW + 7) / 8, n_vec = OH * OWv, OHW = OH * OW;
  const int64_t per_r = dw.taps / dw.R;  // taps are ordered (r, c, s)
  int64_t p = 0, r0, r1;
  for (; p + NP <= n_vec; p += NP) {
    Vec v[NP];
    for (int j = 0; j < NP; ++j) v[j] = vec_at(p + j, OWv, OW, in.row_stride);
    live_rows(p / OWv, (p + NP - 1) / OWv, dw.R, live_lo, live_hi, &r0, &r1);
    forward_vectors<NP>(dw, in.data, bias, v, r0 * per_r, r1 * per_r, OHW, y);
  }
  for (; p < n_vec; ++p) {
    const Vec v[1] = {vec_at(p, OWv, OW, in.row_stride)};
    live_rows(p / OWv, p / OWv, dw.R, live_lo, live_hi, &r0, &r1);
    forward_vectors<1>(dw, in.data, bias, v, r0 * per_r, r1 * per_r, OHW, y);
  }
}

}  // namespace

void direct_conv_forward_avx2(const Planes& in, const DirectWeights& dw, const float* bias,
                              int64_t OH, int64_t OW, int64_t live_lo, int64_t live_hi,
                              float* y) {
  // As many output vectors per tile as the registers hold next to KN x NP accumulators, NP
  // input vectors and a broadcast: fewer output channels, more vectors (more FMAs per load).
  switch (dw.K < kDirectKB ? dw.K : kDirectKB) {
    case 1: return forward_plane<6>(in, dw, bias, OH, OW, live_lo, live_hi, y);
    case 2: return forward_plane<4>(in, dw, bias, OH, OW, live_lo, live_hi, y);
    case 3: return forward_plane<3>(in, dw, bias, OH, OW, live_lo, live_hi, y);
    default: return forward_plane<2>(in, dw, bias, OH, OW, live_lo, live_hi, y);
  }
}

namespace {

// lanes[tap (k, c, r, s0 + j)][8] += dy[k][oh][8v + lane] * in[c][oh + r][8v + lane + s0 + j]
// over the images, rows and vectors of one chunk, for KB channels from k and SB taps from s0.
template <int KB, int SB>
void weight_tile(const Planes& in, int64_t in_n, const Planes& dy, int64_t dy_n, int64_t N,
                 int64_t OH, int64_t OWv, int64_t k, int64_t c, int64_t r, int64_t s0,
                 int64_t C, int64_t R, int64_t S, float* lanes) {
  __m256 acc[KB][SB];
  auto lane_ptr = [&](int i, int j) { return lanes + ((((k + i) * C + c) * R + r) * S + s0 + j) * 8; };
  for (int i = 0; i < KB; ++i)
    for (int j = 0; j < SB; ++j) acc[i][j] = _mm256_loadu_ps(lane_ptr(i, j));
  for (int64_t n = 0; n < N; ++n) {
    const float* x = in.data + n * in_n + c * in.plane + r * in.row_stride + s0;
    const float* g = dy.data + n * dy_n + k * dy.plane;
    for (int64_t oh = 0; oh < OH; ++oh) {
      for (int64_t v = 0; v < OWv; ++v) {
        __m256 gv[KB];
        for (int i = 0; i < KB; ++i)
          gv[i] = _mm256_loadu_ps(g + i * dy.plane + oh * dy.row_stride + 8 * v);
        for (int j = 0; j < SB; ++j) {
          const __m256 xv = _mm256_loadu_ps(x + oh * in.row_stride + 8 * v + j);
          for (int i = 0; i < KB; ++i) acc[i][j] = _mm256_fmadd_ps(gv[i], xv, acc[i][j]);
        }
      }
    }
  }
  for (int i = 0; i < KB; ++i)
    for (int j = 0; j < SB; ++j) _mm256_storeu_ps(lane_ptr(i, j), acc[i][j]);
}

template <int KB>
void weight_taps(const Planes& in, int64_t in_n, const Planes& dy, int64_t dy_n, int64_t N,
                 int64_t OH, int64_t OWv, int64_t k, int64_t c, int64_t r, int64_t C, int64_t R,
                 int64_t S, float* lanes) {
  int64_t s0 = 0;
  for (; s0 + 5 <= S; s0 += 5)
    weight_tile<KB, 5>(in, in_n, dy, dy_n, N, OH, OWv, k, c, r, s0, C, R, S, lanes);
  switch (S - s0) {
    case 4: weight_tile<KB, 4>(in, in_n, dy, dy_n, N, OH, OWv, k, c, r, s0, C, R, S, lanes); break;
    case 3: weight_tile<KB, 3>(in, in_n, dy, dy_n, N, OH, OWv, k, c, r, s0, C, R, S, lanes); break;
    case 2: weight_tile<KB, 2>(in, in_n, dy, dy_n, N, OH, OWv, k, c, r, s0, C, R, S, lanes); break;
    case 1: weight_tile<KB, 1>(in, in_n, dy, dy_n, N, OH, OWv, k, c, r, s0, C, R, S, lanes); break;
    default: break;
  }
}

}  // namespace

void direct_conv_weight_lanes_avx2(const Planes& in, int64_t in_n, const Planes& dy,
                                   int64_t dy_n, int64_t N, int64_t OH, int64_t OW, int64_t K,
                                   int64_t C, int64_t R, int64_t S, float* lanes) {
  const int64_t OWv = (OW + 7) / 8;
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t r = 0; r < R; ++r) {
      int64_t k = 0;
      for (; k + 2 <= K; k += 2)
        weight_taps<2>(in, in_n, dy, dy_n, N, OH, OWv, k, c, r, C, R, S, lanes);
      if (k < K) weight_taps<1>(in, in_n, dy, dy_n, N, OH, OWv, k, c, r, C, R, S, lanes);
    }
  }
}

void sum_lanes_avx2(const float* lanes, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] += hsum(_mm256_loadu_ps(lanes + 8 * i));
}

namespace {

// Stores the first n (0..8) lanes.
inline void store_lanes(float* p, __m256 v, int64_t n) {
  if (n >= 8)
    _mm256_storeu_ps(p, v);
  else if (n > 0)
    _mm256_maskstore_ps(p, lane_mask(n), v);
}

}  // namespace

void winograd_input_avx2(const float* even, const float* odd, int64_t row_stride, int64_t ti0,
                         int64_t ti1, int64_t tiles_w, float* v, int64_t v_xi) {
  for (int64_t ti = ti0; ti < ti1; ++ti) {
    for (int64_t tj = 0; tj < tiles_w; tj += 8) {
      const int64_t lanes = min64(8, tiles_w - tj);
      // d[a][b]: element (a, b) of the 4x4 tiles of eight consecutive tiles; tile tj's columns
      // are even[tj], odd[tj], even[tj + 1], odd[tj + 1].
      __m256 d[4][4];
      for (int a = 0; a < 4; ++a) {
        const int64_t o = (2 * ti + a) * row_stride + tj;
        d[a][0] = _mm256_loadu_ps(even + o);
        d[a][1] = _mm256_loadu_ps(odd + o);
        d[a][2] = _mm256_loadu_ps(even + o + 1);
        d[a][3] = _mm256_loadu_ps(odd + o + 1);
      }
      // B^T d: rows (d0 - d2, d1 + d2, d2 - d1, d1 - d3), then the same on the columns.
      __m256 e[4][4];
      for (int b = 0; b < 4; ++b) {
        e[0][b] = _mm256_sub_ps(d[0][b], d[2][b]);
        e[1][b] = _mm256_add_ps(d[1][b], d[2][b]);
        e[2][b] = _mm256_sub_ps(d[2][b], d[1][b]);
        e[3][b] = _mm256_sub_ps(d[1][b], d[3][b]);
      }
      float* out = v + (ti - ti0) * tiles_w + tj;
      for (int a = 0; a < 4; ++a) {
        store_lanes(out + (4 * a + 0) * v_xi, _mm256_sub_ps(e[a][0], e[a][2]), lanes);
        store_lanes(out + (4 * a + 1) * v_xi, _mm256_add_ps(e[a][1], e[a][2]), lanes);
        store_lanes(out + (4 * a + 2) * v_xi, _mm256_sub_ps(e[a][2], e[a][1]), lanes);
        store_lanes(out + (4 * a + 3) * v_xi, _mm256_sub_ps(e[a][1], e[a][3]), lanes);
      }
    }
  }
}

void winograd_output_avx2(const float* m, int64_t m_xi, int64_t ti0, int64_t ti1,
                          int64_t tiles_w, float bias, int64_t OH, int64_t OW, float* y) {
  const __m256 b = _mm256_set1_ps(bias);
  for (int64_t ti = ti0; ti < ti1; ++ti) {
    for (int64_t tj = 0; tj < tiles_w; tj += 8) {
      const float* in = m + (ti - ti0) * tiles_w + tj;
      __m256 q[4][4];
      for (int xi = 0; xi < 16; ++xi) q[xi / 4][xi % 4] = _mm256_loadu_ps(in + xi * m_xi);
      // A^T q: rows (q0 + q1 + q2, q1 - q2 - q3), then the same on the columns.
      __m256 s[2][4];
      for (int c = 0; c < 4; ++c) {
        s[0][c] = _mm256_add_ps(_mm256_add_ps(q[0][c], q[1][c]), q[2][c]);
        s[1][c] = _mm256_sub_ps(_mm256_sub_ps(q[1][c], q[2][c]), q[3][c]);
      }
      for (int a = 0; a < 2; ++a) {
        const int64_t oh = 2 * ti + a;
        if (oh >= OH) break;
        const __m256 y0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[a][0], s[a][1]), s[a][2]), b);
        const __m256 y1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[a][1], s[a][2]), s[a][3]), b);
        // Interleave: columns 2tj, 2tj + 1, ... of the output row.
        const __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
        const __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20);
        const __m256 second = _mm256_permute2f128_ps(lo, hi, 0x31);
        float* row = y + oh * OW + 2 * tj;
        const int64_t cols = OW - 2 * tj;  // output columns left in this row
        store_lanes(row, first, cols);
        store_lanes(row + 8, second, cols - 8);
      }
    }
  }
}

void winograd_dy_avx2(const float* even, const float* odd, int64_t row_stride, int64_t ti0,
                      int64_t ti1, int64_t tiles_w, float* u, int64_t u_xi) {
  const __m256 half = _mm256_set1_ps(0.5f);
  for (int64_t ti = ti0; ti < ti1; ++ti) {
    for (int64_t tj = 0; tj < tiles_w; tj += 8) {
      const int64_t lanes = min64(8, tiles_w - tj);
      __m256 g[2][2];
      for (int i = 0; i < 2; ++i) {
        const int64_t o = (2 * ti + i) * row_stride + tj;
        g[i][0] = _mm256_loadu_ps(even + o);
        g[i][1] = _mm256_loadu_ps(odd + o);
      }
      // G' g: rows (g0, (g0 + g1) / 2, (g0 - g1) / 2, g1), per column.
      __m256 h[4][2];
      for (int j = 0; j < 2; ++j) {
        h[0][j] = g[0][j];
        h[1][j] = _mm256_mul_ps(_mm256_add_ps(g[0][j], g[1][j]), half);
        h[2][j] = _mm256_mul_ps(_mm256_sub_ps(g[0][j], g[1][j]), half);
        h[3][j] = g[1][j];
      }
      float* out = u + (ti - ti0) * tiles_w + tj;
      for (int a = 0; a < 4; ++a) {
        // (G' g) G'^T along the columns; S flips the sign of row 3 and column 3 (not both).
        const __m256 c0 = h[a][0];
        const __m256 c1 = _mm256_mul_ps(_mm256_add_ps(h[a][0], h[a][1]), half);
        const __m256 c2 = _mm256_mul_ps(_mm256_sub_ps(h[a][0], h[a][1]), half);
        const __m256 c3 = h[a][1];
        const __m256 zero = _mm256_setzero_ps();
        auto sgn = [&](__m256 x, bool neg) { return neg ? _mm256_sub_ps(zero, x) : x; };
        store_lanes(out + (4 * a + 0) * u_xi, sgn(c0, a == 3), lanes);
        store_lanes(out + (4 * a + 1) * u_xi, sgn(c1, a == 3), lanes);
        store_lanes(out + (4 * a + 2) * u_xi, sgn(c2, a == 3), lanes);
        store_lanes(out + (4 * a + 3) * u_xi, sgn(c3, a != 3), lanes);
      }
    }
  }
}

void split_columns_avx2(const float* row, int64_t half, float* even, float* odd) {
  int64_t j = 0;
  for (; j + 8 <= half; j += 8) {
    const __m256 lo = _mm256_loadu_ps(row + 2 * j), hi = _mm256_loadu_ps(row + 2 * j + 8);
    const __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    _mm256_storeu_ps(even + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e),
                                                                       _MM_SHUFFLE(3, 1, 2, 0))));
    _mm256_storeu_ps(odd + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o),
                                                                      _MM_SHUFFLE(3, 1, 2, 0))));
  }
  for (; j < half; ++j) {
    even[j] = row[2 * j];
    odd[j] = row[2 * j + 1];
  }
}

}  // namespace pydl::conv_detail

// ---- tap lists (depthwise and grouped convolution with few channels per group) -------------

namespace pydl::conv_detail {
namespace {

// RB output rows x NV vectors of 8 columns: every tap is one weight broadcast (and one offset
// load) shared by RB * NV FMAs, each with one unaligned input load.
template <int RB, int NV>
inline void tap_block(const float* in, int64_t in_row, const int64_t* off, const float* w,
                      int64_t taps, float init, float* out, int64_t out_row, int64_t lanes) {
  __m256 acc[RB][NV];
  for (int i = 0; i < RB; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_set1_ps(init);
  for (int64_t t = 0; t < taps; ++t) {
    const __m256 wv = _mm256_broadcast_ss(w + t);
    const float* p = in + off[t];
    for (int i = 0; i < RB; ++i)
      for (int v = 0; v < NV; ++v)
        acc[i][v] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p + i * in_row + 8 * v), acc[i][v]);
  }
  for (int i = 0; i < RB; ++i) {
    for (int v = 0; v + 1 < NV; ++v) _mm256_storeu_ps(out + i * out_row + 8 * v, acc[i][v]);
    float* last = out + i * out_row + 8 * (NV - 1);
    if (lanes == 8)
      _mm256_storeu_ps(last, acc[i][NV - 1]);
    else
      _mm256_maskstore_ps(last, lane_mask(lanes), acc[i][NV - 1]);
  }
}

template <int RB>
inline void tap_rows(const float* in, int64_t in_row, const int64_t* off, const float* w,
                     int64_t taps, int64_t cols, float init, float* out, int64_t out_row) {
  int64_t j = 0;
  for (; j + 32 <= cols; j += 32)
    tap_block<RB, 4>(in + j, in_row, off, w, taps, init, out + j, out_row, 8);
  const int64_t rest = cols - j;
  if (rest <= 0) return;
  const int64_t nv = (rest + 7) / 8, lanes = rest - 8 * (nv - 1);
  switch (nv) {
    case 1: tap_block<RB, 1>(in + j, in_row, off, w, taps, init, out + j, out_row, lanes); break;
    case 2: tap_block<RB, 2>(in + j, in_row, off, w, taps, init, out + j, out_row, lanes); break;
    case 3: tap_block<RB, 3>(in + j, in_row, off, w, taps, init, out + j, out_row, lanes); break;
    default: tap_block<RB, 4>(in + j, in_row, off, w, taps, init, out + j, out_row, lanes); break;
  }
}

// NT taps, two vectors of columns at a time (two accumulators per tap: 2 * NT independent FMA
// chains, enough to hide the FMA latency from NT = 4 on).
template <int NT>
void weight_tap_group(const float* in, int64_t in_row, const int64_t* off, const float* dy,
                      int64_t dy_row, int64_t rows, int64_t cols, double* acc) {
  __m256 a[NT][2];
  for (int t = 0; t < NT; ++t) a[t][0] = a[t][1] = _mm256_setzero_ps();
  for (int64_t i = 0; i < rows; ++i) {
    const float* d = dy + i * dy_row;
    const float* x = in + i * in_row;
    int64_t j = 0;
    for (; j + 16 <= cols; j += 16) {
      const __m256 d0 = _mm256_loadu_ps(d + j), d1 = _mm256_loadu_ps(d + j + 8);
      for (int t = 0; t < NT; ++t) {
        a[t][0] = _mm256_fmadd_ps(d0, _mm256_loadu_ps(x + off[t] + j), a[t][0]);
        a[t][1] = _mm256_fmadd_ps(d1, _mm256_loadu_ps(x + off[t] + j + 8), a[t][1]);
      }
    }
    if (j + 8 <= cols) {
      const __m256 d0 = _mm256_loadu_ps(d + j);
      for (int t = 0; t < NT; ++t)
        a[t][0] = _mm256_fmadd_ps(d0, _mm256_loadu_ps(x + off[t] + j), a[t][0]);
      j += 8;
    }
    if (j < cols) {
      // Lanes past cols load as 0, dy and input both (an inf there must not make 0 * inf).
      const __m256i m = lane_mask(cols - j);
      const __m256 d0 = _mm256_maskload_ps(d + j, m);
      for (int t = 0; t < NT; ++t)
        a[t][1] = _mm256_fmadd_ps(d0, _mm256_maskload_ps(x + off[t] + j, m), a[t][1]);
    }
  }
  for (int t = 0; t < NT; ++t) acc[t] += double(hsum(_mm256_add_ps(a[t][0], a[t][1])));
}

}  // namespace

void tap_correlate_avx2(const float* in, int64_t in_row, const int64_t* off, const float* w,
                        int64_t taps, int64_t rows, int64_t cols, float init, float* out,
                        int64_t out_row) {
  if (cols <= 0) return;
  int64_t i = 0;
  // Two rows per block where a row is at most two vectors wide (8 accumulators at most).
  if (cols <= 16) {
    for (; i + 2 <= rows; i += 2)
      tap_rows<2>(in + i * in_row, in_row, off, w, taps, cols, init, out + i * out_row, out_row);
  }
  for (; i < rows; ++i)
    tap_rows<1>(in + i * in_row, in_row, off, w, taps, cols, init, out + i * out_row, out_row);
}

void tap_weight_avx2(const float* in, int64_t in_row, const int64_t* off, int64_t taps,
                     const float* dy, int64_t dy_row, int64_t rows, int64_t cols, double* acc) {
  if (rows <= 0 || cols <= 0) return;
  // Groups of at most 6 taps (12 accumulators + 2 dy vectors + 1 input vector), split evenly
  // (9 taps: 5 + 4, not 6 + 3, so no group is left with few FMA chains).
  const int64_t groups = (taps + 5) / 6;
  int64_t t0 = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t nt = (taps - t0) / (groups - g);
    const int64_t* o = off + t0;
    switch (nt) {
      case 1: weight_tap_group<1>(in, in_row, o, dy, dy_row, rows, cols, acc + t0); break;
      case 2: weight_tap_group<2>(in, in_row, o, dy, dy_row, rows, cols, acc + t0); break;
      case 3: weight_tap_group<3>(in, in_row, o, dy, dy_row, rows, cols, acc + t0); break;
      case 4: weight_tap_group<4>(in, in_row, o, dy, dy_row, rows, cols, acc + t0); break;
      case 5: weight_tap_group<5>(in, in_row, o, dy, dy_row, rows, cols, acc + t0); break;
      default: weight_tap_group<6>(in, in_row, o, dy, dy_row, rows, cols, acc + t0); break;
    }
    t0 += nt;
  }
}

}  // namespace pydl::conv_detail

namespace pydl::conv_detail {

void interleave_columns_avx2(const float* even, const float* odd, int64_t n, float* dst) {
  int64_t j = 0;
  for (; 2 * j + 16 <= n; j += 8) {
    const __m256 e = _mm256_loadu_ps(even + j), o = _mm256_loadu_ps(odd + j);
    const __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);
    _mm256_storeu_ps(dst + 2 * j, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(dst + 2 * j + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
  for (; 2 * j < n; ++j) {
    dst[2 * j] = even[j];
    if (2 * j + 1 < n) dst[2 * j + 1] = odd[j];
  }
}

}  // namespace pydl::conv_detail
