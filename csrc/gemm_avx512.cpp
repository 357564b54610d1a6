// AVX-512 micro-kernels and packing routines for the packed GEMM in gemm.cpp (this file alone is
// compiled with -mavx512f/bw/dq/vl; gemm.cpp calls it only when use_avx512() is true).
//
// One kernel shape serves both dtypes: 14 rows x 2 vectors of C held in 28 zmm accumulators,
// i.e. 14x32 for float32 (16 lanes) and 14x16 for float64 (8 lanes); BLIS's Skylake-X kernels
// are the same shape seen column-major (32x12 sgemm, 16x14 dgemm). Per step p of the kc loop it
// loads one row of the packed B sliver (2 aligned vectors) and broadcasts each of the 14 packed
// A values of column p into a register (vbroadcastss/sd: one load-port uop, no shuffle) that
// feeds 2 FMAs: 28 accumulators + 2 B vectors + 1 broadcast = 31 of the 32 zmm registers, no
// spills. (Embedded {1to16} broadcasts would spend a load per FMA instead of one per two.)
// 28 independent FMA chains cover the FMA latency (4 cycles) times the 2 FMA ports (8 in
// flight) three times over, and 28 FMAs (14 cycles) need only 16 loads, well within the 2-3
// loads per cycle the core sustains. More rows would not fit the register file; 12x32 ran at
// the same rate alone (within noise) but loads B twice per 24 FMAs instead of per 28 and
// writes C tiles more often. The k loop is unrolled 4 times. Measured alone on L1/L2-resident
// panels (development VM, Sapphire Rapids class): ~205-217 GFLOP/s float32 per core, ~90% of
// the 237 GFLOP/s FMA-only peak.
//
// Edges need no scalar loop: the valid columns of a row are a write mask (masked loads and
// stores never touch the masked-off lanes, so nothing past C's last column is read or written),
// and a bottom-edge tile of fewer rows runs a kernel instantiated for just those rows.
//
// Everything here has internal linkage (anonymous namespace) except the entry points declared in
// gemm.h, so no AVX-512-compiled inline function can be picked by the linker for other code.
#include <immintrin.h>

#include "gemm.h"

// GCC 12 reports the self-initialised `_mm512_undefined_ps()` placeholder inside its own
// unpack/shuffle intrinsics as "maybe uninitialized" once they are inlined here; that operand is
// a pass-through the instructions never read, so the warning is a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace pydl::gemm_detail {
namespace {

struct F32 {
  using T = float;
  using V = __m512;
  static constexpr int kLanes = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const T* p) { return _mm512_load_ps(p); }
  static V loadu(const T* p) { return _mm512_loadu_ps(p); }
  static V maskz_loadu(__mmask16 k, const T* p) { return _mm512_maskz_loadu_ps(k, p); }
  static void storeu(T* p, V v) { _mm512_storeu_ps(p, v); }
  static void mask_storeu(T* p, __mmask16 k, V v) { _mm512_mask_storeu_ps(p, k, v); }
  static V set1(T x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
};

struct F64 {
  using T = double;
  using V = __m512d;
  static constexpr int kLanes = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const T* p) { return _mm512_load_pd(p); }
  static V loadu(const T* p) { return _mm512_loadu_pd(p); }
  static V maskz_loadu(__mmask16 k, const T* p) {
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>(k), p);
  }
  static void storeu(T* p, V v) { _mm512_storeu_pd(p, v); }
  static void mask_storeu(T* p, __mmask16 k, V v) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>(k), v);
  }
  static V set1(T x) { return _mm512_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
};

// Write-back of one row of the tile: C = alpha * AB (beta == 0, C not read) or
// alpha * AB + beta * C, under the column masks k0 / k1 of its two vectors.
template <class S, bool kFull>
inline void store_row(typename S::T* ci, typename S::V x0, typename S::V x1, typename S::V va,
                      typename S::V vb, bool beta_zero, __mmask16 k0, __mmask16 k1) {
  constexpr int L = S::kLanes;
  x0 = S::mul(va, x0);
  x1 = S::mul(va, x1);
  if (kFull) {
    if (!beta_zero) {
      x0 = S::fma(vb, S::loadu(ci), x0);
      x1 = S::fma(vb, S::loadu(ci + L), x1);
    }
    S::storeu(ci, x0);
    S::storeu(ci + L, x1);
  } else {
    if (!beta_zero) {
      x0 = S::fma(vb, S::maskz_loadu(k0, ci), x0);
      x1 = S::fma(vb, S::maskz_loadu(k1, ci + L), x1);
    }
    S::mask_storeu(ci, k0, x0);
    S::mask_storeu(ci + L, k1, x1);
  }
}

// Computes the first MR rows of a tile whose packed A sliver has kAStride values per step: MR =
// kAStride for full tiles, fewer for the bottom edge of C (see micro_rows below). With kDirectA
// it reads A unpacked instead: row i of the tile is a + i * lda, contiguous along k (op(A) =
// row-major A), which small products use to skip packing A (see gemm.cpp); the 14 row
// addresses are 4 bases (rows 0, 4, 8, 12) plus 0, 1, 2 or 3 times lda, so they fit in
// registers as x86 base + index addressing.
template <class S, int MR, int kAStride, bool kDirectA = false>
inline void micro_2v(int64_t kc, const typename S::T* __restrict a, int64_t lda,
                     const typename S::T* __restrict b, typename S::T alpha, typename S::T beta,
                     typename S::T* c, int64_t ldc, int64_t m_valid, int64_t n_valid) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::kLanes;
  constexpr int NR = 2 * L;

  // Bring the C tile toward L1 while the kc loop runs (it is read or written only at the end);
  // each row is NR * sizeof(T) = 128 bytes, two cache lines.
  for (int i = 0; i < MR && i < m_valid; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }

  V acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = S::zero();

  // Direct A: bases of rows 0, 4, 8, 12 (only those below MR are read) and the offsets of the
  // rows in between.
  const T* base[4] = {a, a + (MR > 4 ? 4 : 0) * lda, a + (MR > 8 ? 8 : 0) * lda,
                      a + (MR > 12 ? 12 : 0) * lda};
  const int64_t offset[4] = {0, lda, 2 * lda, 3 * lda};

#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const V b0 = S::load(b);
    const V b1 = S::load(b + L);
    // The packed A sliver is read sequentially; keep it a few steps ahead in L1 (it streams
    // from L2, where the MC x KC block lives).
    if (!kDirectA) _mm_prefetch(reinterpret_cast<const char*>(a + 8 * kAStride), _MM_HINT_T0);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      // One broadcast load, used by both FMAs.
      const V ai = S::set1(kDirectA ? base[i / 4][offset[i % 4]] : a[i]);
      acc0[i] = S::fma(ai, b0, acc0[i]);
      acc1[i] = S::fma(ai, b1, acc1[i]);
    }
    if (kDirectA) {
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) ++base[q];
    } else {
      a += kAStride;
    }
    b += NR;
  }

  const V va = S::set1(alpha);
  const V vb = S::set1(beta);
  const bool beta_zero = beta == T(0);
  if (m_valid == MR && n_valid == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
      store_row<S, true>(c + i * ldc, acc0[i], acc1[i], va, vb, beta_zero, 0, 0);
    return;
  }
  const int64_t n0 = n_valid < L ? n_valid : L, n1 = n_valid - n0;
  const __mmask16 k0 = static_cast<__mmask16>((1u << n0) - 1u);
  const __mmask16 k1 = static_cast<__mmask16>((1u << n1) - 1u);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i < m_valid) store_row<S, false>(c + i * ldc, acc0[i], acc1[i], va, vb, beta_zero, k0, k1);
  }
}

// A tile with m_valid < MR rows (only the last tile row of C) runs a kernel with just those
// rows: the zero padding of the packed sliver is not multiplied, which for small m is a large
// share of the work (m = 64 is 4 full tiles of 14 and one of 8 rows: 9% fewer FMAs).
template <class S, int MR, bool kDirectA>
void micro_rows(int64_t kc, const typename S::T* a, int64_t lda, const typename S::T* b,
                typename S::T alpha, typename S::T beta, typename S::T* c, int64_t ldc,
                int64_t m_valid, int64_t n_valid) {
  static_assert(MR == 14, "one case per row count below");
#define PYDL_ROWS_CASE(R) \
  case R:                \
    return micro_2v<S, R, MR, kDirectA>(kc, a, lda, b, alpha, beta, c, ldc, m_valid, n_valid);
  switch (m_valid) {
    PYDL_ROWS_CASE(1)
    PYDL_ROWS_CASE(2)
    PYDL_ROWS_CASE(3)
    PYDL_ROWS_CASE(4)
    PYDL_ROWS_CASE(5)
    PYDL_ROWS_CASE(6)
    PYDL_ROWS_CASE(7)
    PYDL_ROWS_CASE(8)
    PYDL_ROWS_CASE(9)
    PYDL_ROWS_CASE(10)
    PYDL_ROWS_CASE(11)
    PYDL_ROWS_CASE(12)
    PYDL_ROWS_CASE(13)
    default:
      return micro_2v<S, MR, MR, kDirectA>(kc, a, lda, b, alpha, beta, c, ldc, m_valid, n_valid);
  }
#undef PYDL_ROWS_CASE
}

// ---- Packing -----------------------------------------------------------------------------------
// Packs an extent x kc block into R x kc slivers exactly as gemm.cpp's portable pack_block does
// (sliver q at dst + q * R * kc holds dst[p * R + i] = src[(q * R + i) * rs + p * cs], zero past
// `extent`), one sliver at a time so the writes are one sequential stream. The two common
// layouts get vector code, edges included (the last sliver's missing lines are masked-off
// loads, i.e. zeros):
//   rs == 1: a step's R values are contiguous (op(B) row-major, or op(A) stored transposed):
//            a masked vector copy per step.
//   cs == 1: R lines each contiguous along p (op(A) row-major, op(B) = B^T as in x @ W^T):
//            L x L in-register transposes of L steps at a time.
// Anything else (both strides > 1) is copied element by element.

// 16 x 16 float transpose: on return r[j] holds lane j of every input, in order. Stage 1 pairs
// rows within 128-bit lanes, stage 2 gathers 4 rows per lane, stages 3-4 move whole lanes.
inline void transpose(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4g + j], lane l: element 4l + j of rows 4g .. 4g + 3.
  for (int g = 0; g < 4; ++g) {
    u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
  // t[j + 4h + 8s] (rows 8s .. 8s + 7): lanes hold elements j + 4h and j + 4h + 8 of rows
  // 8s .. 8s + 3, then the same of rows 8s + 4 .. 8s + 7.
  for (int s = 0; s < 2; ++s)
    for (int j = 0; j < 4; ++j) {
      t[j + 8 * s] = _mm512_shuffle_f32x4(u[8 * s + j], u[8 * s + 4 + j], 0x88);
      t[j + 4 + 8 * s] = _mm512_shuffle_f32x4(u[8 * s + j], u[8 * s + 4 + j], 0xDD);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
  }
}

// 8 x 8 double transpose, same convention.
inline void transpose(__m512d r[8]) {
  __m512d t[8], s[8];
  // t[2i + c], lane l: element 2l + c of rows 2i, 2i + 1.
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
  }
  // s[c + 2h + 4g] (rows 4g .. 4g + 3): elements c + 2h and c + 2h + 4 of rows 4g, 4g + 1, then
  // of rows 4g + 2, 4g + 3.
  for (int g = 0; g < 2; ++g)
    for (int c = 0; c < 2; ++c) {
      s[c + 4 * g] = _mm512_shuffle_f64x2(t[4 * g + c], t[4 * g + 2 + c], 0x88);
      s[c + 2 + 4 * g] = _mm512_shuffle_f64x2(t[4 * g + c], t[4 * g + 2 + c], 0xDD);
    }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_f64x2(s[j], s[j + 4], 0x88);
    r[j + 4] = _mm512_shuffle_f64x2(s[j], s[j + 4], 0xDD);
  }
}

// Mask of the first `count` lanes (count clamped to [0, 16]).
inline __mmask16 first_lanes(int64_t count) {
  if (count <= 0) return 0;
  if (count >= 16) return 0xFFFF;
  return static_cast<__mmask16>((1u << count) - 1u);
}

// One sliver, rs == 1: dst[p * R + i] = src[p * cs + i] for i < lines, 0 for lines <= i < R.
template <class S, int R>
inline void pack_sliver_rows(typename S::T* __restrict dst, const typename S::T* __restrict src,
                             int64_t cs, int64_t lines, int64_t kc) {
  constexpr int L = S::kLanes, kVectors = (R + L - 1) / L;
  __mmask16 load_mask[kVectors], store_mask[kVectors];
  for (int v = 0; v < kVectors; ++v) {
    load_mask[v] = first_lanes(lines - v * L);
    store_mask[v] = first_lanes(R - v * L);
  }
  for (int64_t p = 0; p < kc; ++p) {
    const typename S::T* s = src + p * cs;
    typename S::T* d = dst + p * R;
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v)
      S::mask_storeu(d + v * L, store_mask[v], S::maskz_loadu(load_mask[v], s + v * L));
  }
}

// One sliver, cs == 1: dst[p * R + i] = src[i * rs + p] for i < lines, 0 for lines <= i < R.
// Lines are taken L at a time (the last group padded with zero lines), L steps at a time (the
// last group loaded under a mask and stored only for its steps).
template <class S, int R>
inline void pack_sliver_lines(typename S::T* __restrict dst, const typename S::T* __restrict src,
                              int64_t rs, int64_t lines, int64_t kc) {
  using V = typename S::V;
  constexpr int L = S::kLanes, kGroups = (R + L - 1) / L;
  for (int64_t p = 0; p < kc; p += L) {
    const int64_t steps = kc - p < L ? kc - p : L;
    const __mmask16 step_mask = first_lanes(steps);
    for (int g = 0; g < kGroups; ++g) {
      V r[L];
      for (int i = 0; i < L; ++i) {
        const int64_t line = g * L + i;
        r[i] = line < lines ? S::maskz_loadu(step_mask, src + line * rs + p) : S::zero();
      }
      transpose(r);
      const __mmask16 lane_mask = first_lanes(R - g * L);
      for (int64_t q = 0; q < steps; ++q) S::mask_storeu(dst + (p + q) * R + g * L, lane_mask, r[q]);
    }
  }
}

template <class S, int R>
void pack_block_avx512(typename S::T* __restrict dst, const typename S::T* __restrict src,
                       int64_t rs, int64_t cs, int64_t extent, int64_t kc) {
  using T = typename S::T;
  for (int64_t q0 = 0; q0 < extent; q0 += R) {
    const int64_t lines = extent - q0 < R ? extent - q0 : R;
    T* d = dst + q0 * kc;
    const T* s = src + q0 * rs;
    if (rs == 1) {
      pack_sliver_rows<S, R>(d, s, cs, lines, kc);
    } else if (cs == 1) {
      pack_sliver_lines<S, R>(d, s, rs, lines, kc);
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < R; ++i) d[p * R + i] = i < lines ? s[i * rs + p * cs] : T(0);
    }
  }
}

}  // namespace

void sgemm_pack_a_avx512(float* dst, const float* src, int64_t rs, int64_t cs, int64_t extent,
                         int64_t kc, PackLinesFn<float>) {
  pack_block_avx512<F32, kAvx512SgemmMR>(dst, src, rs, cs, extent, kc);
}

void sgemm_pack_b_avx512(float* dst, const float* src, int64_t rs, int64_t cs, int64_t extent,
                         int64_t kc, PackLinesFn<float>) {
  pack_block_avx512<F32, kAvx512SgemmNR>(dst, src, rs, cs, extent, kc);
}

void dgemm_pack_a_avx512(double* dst, const double* src, int64_t rs, int64_t cs, int64_t extent,
                         int64_t kc, PackLinesFn<double>) {
  pack_block_avx512<F64, kAvx512DgemmMR>(dst, src, rs, cs, extent, kc);
}

void dgemm_pack_b_avx512(double* dst, const double* src, int64_t rs, int64_t cs, int64_t extent,
                         int64_t kc, PackLinesFn<double>) {
  pack_block_avx512<F64, kAvx512DgemmNR>(dst, src, rs, cs, extent, kc);
}

void sgemm_micro_14x32_avx512(int64_t kc, const float* a_panel, const float* b_panel, float alpha,
                              float beta, float* c, int64_t ldc, int64_t m_valid,
                              int64_t n_valid) {
  micro_rows<F32, kAvx512SgemmMR, false>(kc, a_panel, 0, b_panel, alpha, beta, c, ldc, m_valid,
                                         n_valid);
}

void sgemm_micro_14x32_direct_a_avx512(int64_t kc, const float* a, int64_t lda,
                                       const float* b_panel, float alpha, float beta, float* c,
                                       int64_t ldc, int64_t m_valid, int64_t n_valid) {
  micro_rows<F32, kAvx512SgemmMR, true>(kc, a, lda, b_panel, alpha, beta, c, ldc, m_valid,
                                        n_valid);
}

void dgemm_micro_14x16_avx512(int64_t kc, const double* a_panel, const double* b_panel,
                              double alpha, double beta, double* c, int64_t ldc, int64_t m_valid,
                              int64_t n_valid) {
  micro_rows<F64, kAvx512DgemmMR, false>(kc, a_panel, 0, b_panel, alpha, beta, c, ldc, m_valid,
                                         n_valid);
}

void dgemm_micro_14x16_direct_a_avx512(int64_t kc, const double* a, int64_t lda,
                                       const double* b_panel, double alpha, double beta,
                                       double* c, int64_t ldc, int64_t m_valid, int64_t n_valid) {
  micro_rows<F64, kAvx512DgemmMR, true>(kc, a, lda, b_panel, alpha, beta, c, ldc, m_valid,
                                        n_valid);
}

}  // namespace pydl::gemm_detail
