// AVX2+FMA micro-kernels for the packed GEMM in gemm.cpp (this file alone is compiled with
// -mavx2 -mfma; gemm.cpp calls it only when use_avx2() is true).
//
// One kernel shape serves both dtypes: 6 rows x 2 vectors of C held in 12 ymm accumulators,
// i.e. 6x16 for float32 (8 lanes) and 6x8 for float64 (4 lanes), as in BLIS's Haswell/Zen
// kernels. Per step p of the kc loop it loads one row of the packed B sliver (2 vectors, aligned),
// broadcasts the 6 packed A values of column p one at a time and issues 12 FMAs: 12 accumulators
// + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers. 12 independent FMA chains cover the
// FMA latency (4 cycles) times the 2 FMA ports with room to spare, and the loop does 2 vector
// loads + 6 broadcasts (8 loads) per 12 FMAs, within the 2-3 loads per cycle the cores sustain.
//
// Everything here has internal linkage (anonymous namespace) except the two entry points, so no
// AVX-compiled inline function can be picked by the linker for the portable code.
#include <immintrin.h>

#include "gemm.h"

namespace pydl::gemm_detail {
namespace {

struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_load_ps(p); }
  static V loadu(const T* p) { return _mm256_loadu_ps(p); }
  static void storeu(T* p, V v) { _mm256_storeu_ps(p, v); }
  static void store(T* p, V v) { _mm256_store_ps(p, v); }
  static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};

struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int kLanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_load_pd(p); }
  static V loadu(const T* p) { return _mm256_loadu_pd(p); }
  static void storeu(T* p, V v) { _mm256_storeu_pd(p, v); }
  static void store(T* p, V v) { _mm256_store_pd(p, v); }
  static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
};

template <class S>
inline void micro_6x2v(int64_t kc, const typename S::T* __restrict a,
                       const typename S::T* __restrict b, typename S::T alpha,
                       typename S::T beta, typename S::T* c, int64_t ldc, int64_t m_valid,
                       int64_t n_valid) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::kLanes;
  constexpr int MR = 6;
  constexpr int NR = 2 * L;

  // Bring the C tile toward L1 while the kc loop runs (it is read or written only at the end).
  for (int i = 0; i < MR && i < m_valid; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }

  V c00 = S::zero(), c01 = S::zero(), c10 = S::zero(), c11 = S::zero();
  V c20 = S::zero(), c21 = S::zero(), c30 = S::zero(), c31 = S::zero();
  V c40 = S::zero(), c41 = S::zero(), c50 = S::zero(), c51 = S::zero();

#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const V b0 = S::load(b);
    const V b1 = S::load(b + L);
    V ai = S::bcast(a + 0);
    c00 = S::fma(ai, b0, c00);
    c01 = S::fma(ai, b1, c01);
    ai = S::bcast(a + 1);
    c10 = S::fma(ai, b0, c10);
    c11 = S::fma(ai, b1, c11);
    ai = S::bcast(a + 2);
    c20 = S::fma(ai, b0, c20);
    c21 = S::fma(ai, b1, c21);
    ai = S::bcast(a + 3);
    c30 = S::fma(ai, b0, c30);
    c31 = S::fma(ai, b1, c31);
    ai = S::bcast(a + 4);
    c40 = S::fma(ai, b0, c40);
    c41 = S::fma(ai, b1, c41);
    ai = S::bcast(a + 5);
    c50 = S::fma(ai, b0, c50);
    c51 = S::fma(ai, b1, c51);
    a += MR;
    b += NR;
  }

  const V va = S::set1(alpha);
  if (m_valid == MR && n_valid == NR) {
    T* r0 = c;
    T* r1 = c + ldc;
    T* r2 = c + 2 * ldc;
    T* r3 = c + 3 * ldc;
    T* r4 = c + 4 * ldc;
    T* r5 = c + 5 * ldc;
    if (beta == T(0)) {
      S::storeu(r0, S::mul(va, c00));
      S::storeu(r0 + L, S::mul(va, c01));
      S::storeu(r1, S::mul(va, c10));
      S::storeu(r1 + L, S::mul(va, c11));
      S::storeu(r2, S::mul(va, c20));
      S::storeu(r2 + L, S::mul(va, c21));
      S::storeu(r3, S::mul(va, c30));
      S::storeu(r3 + L, S::mul(va, c31));
      S::storeu(r4, S::mul(va, c40));
      S::storeu(r4 + L, S::mul(va, c41));
      S::storeu(r5, S::mul(va, c50));
      S::storeu(r5 + L, S::mul(va, c51));
    } else {
      const V vb = S::set1(beta);
      S::storeu(r0, S::fma(vb, S::loadu(r0), S::mul(va, c00)));
      S::storeu(r0 + L, S::fma(vb, S::loadu(r0 + L), S::mul(va, c01)));
      S::storeu(r1, S::fma(vb, S::loadu(r1), S::mul(va, c10)));
      S::storeu(r1 + L, S::fma(vb, S::loadu(r1 + L), S::mul(va, c11)));
      S::storeu(r2, S::fma(vb, S::loadu(r2), S::mul(va, c20)));
      S::storeu(r2 + L, S::fma(vb, S::loadu(r2 + L), S::mul(va, c21)));
      S::storeu(r3, S::fma(vb, S::loadu(r3), S::mul(va, c30)));
      S::storeu(r3 + L, S::fma(vb, S::loadu(r3 + L), S::mul(va, c31)));
      S::storeu(r4, S::fma(vb, S::loadu(r4), S::mul(va, c40)));
      S::storeu(r4 + L, S::fma(vb, S::loadu(r4 + L), S::mul(va, c41)));
      S::storeu(r5, S::fma(vb, S::loadu(r5), S::mul(va, c50)));
      S::storeu(r5 + L, S::fma(vb, S::loadu(r5 + L), S::mul(va, c51)));
    }
    return;
  }

  // Edge tile: spill the scaled product, then update only the valid corner of C.
  alignas(32) T tile[MR * NR];
  S::store(tile + 0 * NR, S::mul(va, c00));
  S::store(tile + 0 * NR + L, S::mul(va, c01));
  S::store(tile + 1 * NR, S::mul(va, c10));
  S::store(tile + 1 * NR + L, S::mul(va, c11));
  S::store(tile + 2 * NR, S::mul(va, c20));
  S::store(tile + 2 * NR + L, S::mul(va, c21));
  S::store(tile + 3 * NR, S::mul(va, c30));
  S::store(tile + 3 * NR + L, S::mul(va, c31));
  S::store(tile + 4 * NR, S::mul(va, c40));
  S::store(tile + 4 * NR + L, S::mul(va, c41));
  S::store(tile + 5 * NR, S::mul(va, c50));
  S::store(tile + 5 * NR + L, S::mul(va, c51));
  for (int64_t i = 0; i < m_valid; ++i) {
    T* ci = c + i * ldc;
    const T* ti = tile + i * NR;
    if (beta == T(0)) {
      for (int64_t j = 0; j < n_valid; ++j) ci[j] = ti[j];
    } else {
      for (int64_t j = 0; j < n_valid; ++j) ci[j] = ti[j] + beta * ci[j];
    }
  }
}

}  // namespace

void sgemm_micro_6x16_avx2(int64_t kc, const float* a_panel, const float* b_panel, float alpha,
                           float beta, float* c, int64_t ldc, int64_t m_valid, int64_t n_valid) {
  micro_6x2v<F32>(kc, a_panel, b_panel, alpha, beta, c, ldc, m_valid, n_valid);
}

void dgemm_micro_6x8_avx2(int64_t kc, const double* a_panel, const double* b_panel, double alpha,
                          double beta, double* c, int64_t ldc, int64_t m_valid, int64_t n_valid) {
  micro_6x2v<F64>(kc, a_panel, b_panel, alpha, beta, c, ldc, m_valid, n_valid);
}

}  // namespace pydl::gemm_detail
