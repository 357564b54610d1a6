// AVX-512 row-flat convolution kernels (see conv_avx512.h). This file alone is compiled with
// AVX-512 F/BW/DQ/VL; conv.cpp calls into it only when use_avx512() is true.
//
// Correlation: a register tile of MB output rows (up to 6, one packed weight block) x NV
// vectors of 16 consecutive output pixels (up to 4): per tap NV unaligned input loads and MB
// weight broadcasts feed MB * NV FMAs into 24 accumulators at most.
// Weight gradient: KB output channels (up to 4) x RB kernel rows (up to 5) of one shifted input
// plane accumulate dy * x over the images and pixel vectors of a chunk; the 16 lanes of each
// tap are summed once at the end.
//
// Only the entry points have external linkage, and nothing from the standard library is used, so
// no AVX-512-compiled inline function can stand in for a portable one.
#include "conv_avx512.h"

#include <immintrin.h>

namespace pydl::conv_detail {
namespace {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Lanes [0, n) of a 16-lane vector (n in 0..16).
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u);
}

template <int MB, int NV>
void correlate_tile(const float* in, const int64_t* off, int64_t t0, int64_t t1, const float* wb,
                    const float* bias, int64_t q0, int64_t Q, float* out, int64_t out_plane) {
  __m512 acc[MB][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MB; ++i) {
    const __m512 b = _mm512_set1_ps(bias ? bias[i] : 0.0f);
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = b;
  }
  for (int64_t t = t0; t < t1; ++t) {
    const float* x = in + off[t] + q0;
    const float* wt = wb + t * kDirectKB;
    __m512 xv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) xv[j] = _mm512_loadu_ps(x + 16 * j);
#pragma GCC unroll 8
    for (int i = 0; i < MB; ++i) {
      const __m512 wv = _mm512_set1_ps(wt[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(wv, xv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) {
    const int64_t left = Q - q0 - 16 * j;
#pragma GCC unroll 8
    for (int i = 0; i < MB; ++i) {
      float* o = out + i * out_plane + q0 + 16 * j;
      if (left >= 16)
        _mm512_storeu_ps(o, acc[i][j]);
      else
        _mm512_mask_storeu_ps(o, first_lanes(left), acc[i][j]);
    }
  }
}

using CorrelateTile = void (*)(const float*, const int64_t*, int64_t, int64_t, const float*,
                               const float*, int64_t, int64_t, float*, int64_t);

template <int MB>
CorrelateTile correlate_tile_nv(int64_t nv) {
  switch (nv) {
    case 1: return &correlate_tile<MB, 1>;
    case 2: return &correlate_tile<MB, 2>;
    case 3: return &correlate_tile<MB, 3>;
    default: return &correlate_tile<MB, 4>;
  }
}

CorrelateTile correlate_tile_for(int64_t mb, int64_t nv) {
  switch (mb) {
    case 1: return correlate_tile_nv<1>(nv);
    case 2: return correlate_tile_nv<2>(nv);
    case 3: return correlate_tile_nv<3>(nv);
    case 4: return correlate_tile_nv<4>(nv);
    case 5: return correlate_tile_nv<5>(nv);
    default: return correlate_tile_nv<6>(nv);
  }
}

}  // namespace

void rowflat_correlate_avx512(const float* in, const DirectWeights& w, const float* bias,
                              int64_t Q, int64_t row_w, int64_t r_rows, int64_t live_lo,
                              int64_t live_hi, float* out, int64_t out_plane) {
  const int64_t M = w.K, R = w.R, J = w.taps / w.R;
  const int64_t blocks = (M + kDirectKB - 1) / kDirectKB, n_vec = (Q + 15) / 16;
  for (int64_t v0 = 0; v0 < n_vec; v0 += 4) {
    const int64_t nv = min64(4, n_vec - v0), q0 = 16 * v0, q1 = min64(Q, q0 + 16 * nv);
    // Kernel rows [r0, r1) whose input rows meet the live ones for some pixel of the tile.
    const int64_t row_first = q0 / row_w, row_last = (q1 - 1) / row_w;
    int64_t r0 = 0, r1 = R;
    while (r0 < R && row_last + r0 * r_rows < live_lo) ++r0;
    while (r1 > r0 && row_first + (r1 - 1) * r_rows >= live_hi) --r1;
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t mb = min64(kDirectKB, M - b * kDirectKB);
      correlate_tile_for(mb, nv)(in, w.offsets, r0 * J, r1 * J, w.packed + b * w.taps * kDirectKB,
                                 bias ? bias + b * kDirectKB : nullptr, q0, Q,
                                 out + b * kDirectKB * out_plane, out_plane);
    }
  }
}

namespace {

template <int KB, int RB>
void weight_tile(const float* in, int64_t in_n, int64_t in_plane, int64_t J, int64_t R,
                 int64_t r_off, const float* dy, int64_t dy_n, int64_t P, int64_t N, int64_t k,
                 int64_t j, int64_t r0, bool accumulate, float* lanes) {
  __m512 acc[KB][RB];
#pragma GCC unroll 8
  for (int i = 0; i < KB; ++i)
#pragma GCC unroll 8
    for (int b = 0; b < RB; ++b)
      acc[i][b] = accumulate ? _mm512_loadu_ps(lanes + (((k + i) * J + j) * R + r0 + b) * 16)
                             : _mm512_setzero_ps();
  // Full vectors through plain loads (a masked load costs an extra ALU uop, on the FMA ports),
  // then the last, partial one masked to P.
  const int64_t full = P / 16;
  const __mmask16 tail = first_lanes(P - 16 * full);
  for (int64_t n = 0; n < N; ++n) {
    const float* g = dy + n * dy_n + k * P;
    const float* x = in + n * in_n + j * in_plane + r0 * r_off;
    for (int64_t v = 0; v < full; ++v) {
      __m512 gv[KB];
#pragma GCC unroll 8
      for (int i = 0; i < KB; ++i) gv[i] = _mm512_loadu_ps(g + i * P + 16 * v);
#pragma GCC unroll 8
      for (int b = 0; b < RB; ++b) {
        const __m512 xv = _mm512_loadu_ps(x + b * r_off + 16 * v);
#pragma GCC unroll 8
        for (int i = 0; i < KB; ++i) acc[i][b] = _mm512_fmadd_ps(gv[i], xv, acc[i][b]);
      }
    }
    if (tail) {
      __m512 gv[KB];
#pragma GCC unroll 8
      for (int i = 0; i < KB; ++i) gv[i] = _mm512_maskz_loadu_ps(tail, g + i * P + 16 * full);
#pragma GCC unroll 8
      for (int b = 0; b < RB; ++b) {
        const __m512 xv = _mm512_maskz_loadu_ps(tail, x + b * r_off + 16 * full);
#pragma GCC unroll 8
        for (int i = 0; i < KB; ++i) acc[i][b] = _mm512_fmadd_ps(gv[i], xv, acc[i][b]);
      }
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < KB; ++i)
#pragma GCC unroll 8
    for (int b = 0; b < RB; ++b)
      _mm512_storeu_ps(lanes + (((k + i) * J + j) * R + r0 + b) * 16, acc[i][b]);
}

using WeightTile = void (*)(const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                            const float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                            bool, float*);

template <int KB>
WeightTile weight_tile_rb(int64_t rb) {
  switch (rb) {
    case 1: return &weight_tile<KB, 1>;
    case 2: return &weight_tile<KB, 2>;
    case 3: return &weight_tile<KB, 3>;
    case 4: return &weight_tile<KB, 4>;
    default: return &weight_tile<KB, 5>;
  }
}

WeightTile weight_tile_for(int64_t kb, int64_t rb) {
  switch (kb) {
    case 1: return weight_tile_rb<1>(rb);
    case 2: return weight_tile_rb<2>(rb);
    case 3: return weight_tile_rb<3>(rb);
    default: return weight_tile_rb<4>(rb);
  }
}

}  // namespace

void rowflat_weight_lanes_avx512(const float* in, int64_t in_n, int64_t in_plane, int64_t J,
                                 int64_t R, int64_t r_off, const float* dy, int64_t dy_n,
                                 int64_t K, int64_t P, int64_t N, bool accumulate,
                                 float* lanes) {
  // One block of dy planes at a time (KB planes of the chunk's images, in L1) against every
  // shifted plane, each read from L2 once per block.
  for (int64_t k = 0; k < K; k += 4) {
    const int64_t kb = min64(4, K - k);
    for (int64_t j = 0; j < J; ++j) {
      for (int64_t r0 = 0; r0 < R; r0 += 5) {
        const int64_t rb = min64(5, R - r0);
        weight_tile_for(kb, rb)(in, in_n, in_plane, J, R, r_off, dy, dy_n, P, N, k, j, r0,
                                accumulate, lanes);
      }
    }
  }
}

void rowflat_shifted_copies_avx512(const float* x, int64_t C, int64_t H, int64_t W, int64_t S,
                                   int64_t dil_w, int64_t pad_h, int64_t pad_w, int64_t hp,
                                   int64_t OW, float* dst) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t t = 0; t < S; ++t) {
      const int64_t col0 = t * dil_w - pad_w;  // input column of ow = 0
      float* d = dst + (c * S + t) * hp * OW;
      for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
        const __mmask16 store = first_lanes(OW - ow0);
        // Lanes whose input column ow0 + lane + col0 lies in [0, W); the others read nothing
        // (masked lanes do not fault) and are stored as 0.
        const __m512i col = _mm512_add_epi32(lane, _mm512_set1_epi32(int32_t(ow0 + col0)));
        const __mmask16 valid =
            store & _mm512_cmpge_epi32_mask(col, _mm512_setzero_si512()) &
            _mm512_cmplt_epi32_mask(col, _mm512_set1_epi32(int32_t(W)));
        for (int64_t h = 0; h < hp; ++h) {
          const int64_t ih = h - pad_h;
          __m512 v = zero;
          if (ih >= 0 && ih < H)
            v = _mm512_maskz_loadu_ps(valid, x + (c * H + ih) * W + ow0 + col0);
          _mm512_mask_storeu_ps(d + h * OW + ow0, store, v);
        }
      }
    }
  }
}

void rowflat_gather_columns_avx512(const float* src, int64_t C, int64_t S, int64_t rows,
                                   int64_t OW, int64_t dil_w, int64_t pad_w, int64_t W, float* dx,
                                   int64_t dx_plane) {
  // Each dx vector sums its S shifted source vectors in a register and is stored once (adding
  // into dx tap by tap would reload stores still in flight at another offset).
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  constexpr int kMaxS = 16;
  __mmask16 mask[kMaxS];
  for (int64_t w0 = 0; w0 < W; w0 += 16) {
    const __mmask16 store = first_lanes(W - w0);
    for (int64_t t0 = 0; t0 < S; t0 += kMaxS) {
      const int64_t nt = min64(kMaxS, S - t0);
      // Source column of lane l for tap t: w0 + l - col0(t), live when inside [0, OW).
      for (int64_t i = 0; i < nt; ++i) {
        const int64_t col0 = (t0 + i) * dil_w - pad_w;
        const __m512i col = _mm512_add_epi32(lane, _mm512_set1_epi32(int32_t(w0 - col0)));
        mask[i] = store & _mm512_cmpge_epi32_mask(col, _mm512_setzero_si512()) &
                  _mm512_cmplt_epi32_mask(col, _mm512_set1_epi32(int32_t(OW)));
      }
      for (int64_t c = 0; c < C; ++c) {
        for (int64_t h = 0; h < rows; ++h) {
          float* o = dx + c * dx_plane + h * W + w0;
          __m512 acc = t0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(store, o);
          for (int64_t i = 0; i < nt; ++i) {
            const int64_t col0 = (t0 + i) * dil_w - pad_w;
            const float* a = src + (c * S + t0 + i) * rows * OW + h * OW + w0 - col0;
            acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(mask[i], a));
          }
          _mm512_mask_storeu_ps(o, store, acc);
        }
      }
    }
  }
}

void sum_lanes16_avx512(const float* lanes, int64_t n, float* out) {
  // Zero-masked shuffles throughout: GCC 12's unmasked forms (and _mm512_reduce_add_ps) start
  // from an undefined vector and trip -Wmaybe-uninitialized.
  const __mmask16 all = 0xFFFF;
  for (int64_t i = 0; i < n; ++i) {
    __m512 v = _mm512_loadu_ps(lanes + 16 * i);
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(all, v, v, _MM_SHUFFLE(3, 2, 3, 2)));
    v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(all, v, v, _MM_SHUFFLE(1, 1, 1, 1)));
    v = _mm512_add_ps(v, _mm512_maskz_permute_ps(all, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_maskz_permute_ps(all, v, _MM_SHUFFLE(2, 3, 0, 1)));
    out[i] = _mm512_cvtss_f32(v);  // lane 0 now holds the sum of all 16
  }
}

}  // namespace pydl::conv_detail
