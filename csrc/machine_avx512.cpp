// fma_loop's AVX-512 variant (compiled with the AVX-512 F/BW/DQ/VL flags; called only after the
// CPUID + XGETBV check). Twelve independent zmm chains cover two FMA units of latency 4-6.
#include <immintrin.h>

#include <atomic>

#include "machine.h"

// clang (zig 0.17's clang 22) deleted these loops outright; an empty asm that claims to read and
// write each accumulator keeps every FMA (and costs no instruction).
#if defined(__GNUC__) || defined(__clang__)
#define PYDL_OPAQUE(v) __asm__ volatile("" : "+v"(v))
#else
#define PYDL_OPAQUE(v) ((void)0)
#endif

namespace pydl {

namespace {
std::atomic<double> sink_avx512{0.0};
}

double fma_loop_avx512(int64_t iters, bool f64) {
  constexpr int kChains = 12;
  if (f64) {
    __m512d acc[kChains];
    for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_pd(1.0 + j);
    const __m512d a = _mm512_set1_pd(0.999999), b = _mm512_set1_pd(1e-7);
    for (int64_t i = 0; i < iters; ++i)
      for (int j = 0; j < kChains; ++j) {
        acc[j] = _mm512_fmadd_pd(acc[j], a, b);
        PYDL_OPAQUE(acc[j]);
      }
    __m512d s = acc[0];
    for (int j = 1; j < kChains; ++j) s = _mm512_add_pd(s, acc[j]);
    sink_avx512.store(_mm512_reduce_add_pd(s), std::memory_order_relaxed);
    return 2.0 * 8 * kChains * double(iters);
  }
  __m512 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm512_set1_ps(1.0f + j);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < kChains; ++j) {
      acc[j] = _mm512_fmadd_ps(acc[j], a, b);
      PYDL_OPAQUE(acc[j]);
    }
  __m512 s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm512_add_ps(s, acc[j]);
  sink_avx512.store(_mm512_reduce_add_ps(s), std::memory_order_relaxed);
  return 2.0 * 16 * kChains * double(iters);
}

}  // namespace pydl
