// AVX-512 micro-kernels and transposing packs for the packed GEMM in gemm.cpp (this file alone is
// compiled with -mavx512f/bw/dq/vl; gemm.cpp calls it only when use_avx512() is true).
//
// One kernel shape serves both dtypes: 14 rows x 2 vectors of C held in 28 zmm accumulators,
// i.e. 14x32 for float32 (16 lanes) and 14x16 for float64 (8 lanes); BLIS's Skylake-X kernels
// are the same shape seen column-major (32x12 sgemm, 16x14 dgemm). Per step p of the kc loop it
// loads one row of the packed B sliver (2 aligned vectors) and, for each of the 14 packed A
// values of column p, issues 2 FMAs that take the A value straight from memory as an embedded
// broadcast ({1to16} / {1to8}), so no register is spent on it: 28 accumulators + 2 B vectors = 30
// of the 32 zmm registers. 28 independent FMA chains cover the FMA latency (4 cycles) times the
// 2 FMA ports (8 in flight) three times over, and 28 FMAs (14 cycles) need only 2 vector loads
// and 14 broadcast loads, well within the 2 loads per cycle the core sustains. A wider tile
// (more rows) would not fit the register file; a narrower one (12x32) leaves FMA slots to the
// C write-back and the loop overhead for no gain in latency hiding.
//
// Edges need no scalar loop: the valid columns of a row are a write mask (masked loads and
// stores never touch the masked-off lanes, so nothing past C's last column is read or written)
// and rows past m_valid are skipped.
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

template <class S, int MR>
inline void micro_2v(int64_t kc, const typename S::T* __restrict a,
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

#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const V b0 = S::load(b);
    const V b1 = S::load(b + L);
    // The packed A sliver is read sequentially; keep it a few steps ahead in L1 (it streams
    // from L2, where the MC x KC block lives).
    _mm_prefetch(reinterpret_cast<const char*>(a + 8 * MR), _MM_HINT_T0);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = S::set1(a[i]);  // folded into the FMA as an embedded broadcast
      acc0[i] = S::fma(ai, b0, acc0[i]);
      acc1[i] = S::fma(ai, b1, acc1[i]);
    }
    a += MR;
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

// ---- Transposing packs ------------------------------------------------------------------------
// The driver's portable packing handles sources that are contiguous across a sliver (a row copy
// per step); these handle the other common case, R lines each contiguous along p (op(A) = A
// stored row-major, op(B) = B^T as in x @ W^T), with in-register transposes instead of R
// scalar loads and stores per step.

// 16 x 16 float transpose: on return r[j] holds lane j of every input, in order. Stage 1 pairs
// rows within 128-bit lanes, stage 2 gathers 4 rows per lane, stages 3-4 move whole lanes.
inline void transpose16x16(__m512 r[16]) {
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
inline void transpose8x8(__m512d r[8]) {
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

}  // namespace

void sgemm_pack_lines14_avx512(float* dst, const float* src, int64_t ld, int64_t kc) {
  // 16 steps at a time: 14 lines (+2 zero lines) x 16 floats, transposed to 16 steps x 14
  // values, each stored under a 14-lane mask (steps are 14 floats apart).
  // The last group of fewer than 16 steps loads under a mask (nothing past the line is read)
  // and stores only its steps.
  constexpr __mmask16 first14 = 0x3FFF;
  for (int64_t p = 0; p < kc; p += 16) {
    const int64_t steps = kc - p < 16 ? kc - p : 16;
    const __mmask16 valid = static_cast<__mmask16>((1u << steps) - 1u);
    __m512 r[16];
    for (int i = 0; i < 14; ++i) r[i] = _mm512_maskz_loadu_ps(valid, src + i * ld + p);
    r[14] = r[15] = _mm512_setzero_ps();
    transpose16x16(r);
    for (int q = 0; q < steps; ++q) _mm512_mask_storeu_ps(dst + (p + q) * 14, first14, r[q]);
  }
}

void sgemm_pack_lines32_avx512(float* dst, const float* src, int64_t ld, int64_t kc) {
  for (int64_t p = 0; p < kc; p += 16) {
    const int64_t steps = kc - p < 16 ? kc - p : 16;
    const __mmask16 valid = static_cast<__mmask16>((1u << steps) - 1u);
    for (int half = 0; half < 2; ++half) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = _mm512_maskz_loadu_ps(valid, src + (half * 16 + i) * ld + p);
      transpose16x16(r);
      for (int q = 0; q < steps; ++q) _mm512_store_ps(dst + (p + q) * 32 + half * 16, r[q]);
    }
  }
}

void dgemm_pack_lines14_avx512(double* dst, const double* src, int64_t ld, int64_t kc) {
  // 8 steps at a time: lines 0-7 and 8-13 (+2 zero lines) transposed separately; each step
  // stores 8 + 6 (masked) values.
  for (int64_t p = 0; p < kc; p += 8) {
    const int64_t steps = kc - p < 8 ? kc - p : 8;
    const __mmask8 valid = static_cast<__mmask8>((1u << steps) - 1u);
    __m512d lo[8], hi[8];
    for (int i = 0; i < 8; ++i) lo[i] = _mm512_maskz_loadu_pd(valid, src + i * ld + p);
    for (int i = 0; i < 6; ++i) hi[i] = _mm512_maskz_loadu_pd(valid, src + (8 + i) * ld + p);
    hi[6] = hi[7] = _mm512_setzero_pd();
    transpose8x8(lo);
    transpose8x8(hi);
    for (int q = 0; q < steps; ++q) {
      _mm512_storeu_pd(dst + (p + q) * 14, lo[q]);
      _mm512_mask_storeu_pd(dst + (p + q) * 14 + 8, 0x3F, hi[q]);
    }
  }
}

void dgemm_pack_lines16_avx512(double* dst, const double* src, int64_t ld, int64_t kc) {
  for (int64_t p = 0; p < kc; p += 8) {
    const int64_t steps = kc - p < 8 ? kc - p : 8;
    const __mmask8 valid = static_cast<__mmask8>((1u << steps) - 1u);
    for (int half = 0; half < 2; ++half) {
      __m512d r[8];
      for (int i = 0; i < 8; ++i)
        r[i] = _mm512_maskz_loadu_pd(valid, src + (half * 8 + i) * ld + p);
      transpose8x8(r);
      for (int q = 0; q < steps; ++q) _mm512_store_pd(dst + (p + q) * 16 + half * 8, r[q]);
    }
  }
}

void sgemm_micro_14x32_avx512(int64_t kc, const float* a_panel, const float* b_panel, float alpha,
                              float beta, float* c, int64_t ldc, int64_t m_valid,
                              int64_t n_valid) {
  micro_2v<F32, kAvx512SgemmMR>(kc, a_panel, b_panel, alpha, beta, c, ldc, m_valid, n_valid);
}

void dgemm_micro_14x16_avx512(int64_t kc, const double* a_panel, const double* b_panel,
                              double alpha, double beta, double* c, int64_t ldc, int64_t m_valid,
                              int64_t n_valid) {
  micro_2v<F64, kAvx512DgemmMR>(kc, a_panel, b_panel, alpha, beta, c, ldc, m_valid, n_valid);
}

}  // namespace pydl::gemm_detail
