// fma_loop's AVX2+FMA variant (compiled with -mavx2 -mfma; called only after the CPUID check).
// Ten independent vector chains: two FMA units with a latency of 4-5 cycles need 8-10 in flight.
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
std::atomic<double> sink_avx2{0.0};
}

double fma_loop_avx2(int64_t iters, bool f64) {
  constexpr int kChains = 10;
  if (f64) {
    __m256d acc[kChains];
    for (int j = 0; j < kChains; ++j) acc[j] = _mm256_set1_pd(1.0 + j);
    const __m256d a = _mm256_set1_pd(0.999999), b = _mm256_set1_pd(1e-7);
    for (int64_t i = 0; i < iters; ++i)
      for (int j = 0; j < kChains; ++j) {
        acc[j] = _mm256_fmadd_pd(acc[j], a, b);
        PYDL_OPAQUE(acc[j]);
      }
    __m256d s = acc[0];
    for (int j = 1; j < kChains; ++j) s = _mm256_add_pd(s, acc[j]);
    sink_avx2.store(_mm256_cvtsd_f64(s), std::memory_order_relaxed);
    return 2.0 * 4 * kChains * double(iters);
  }
  __m256 acc[kChains];
  for (int j = 0; j < kChains; ++j) acc[j] = _mm256_set1_ps(1.0f + j);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i)
    for (int j = 0; j < kChains; ++j) {
      acc[j] = _mm256_fmadd_ps(acc[j], a, b);
      PYDL_OPAQUE(acc[j]);
    }
  __m256 s = acc[0];
  for (int j = 1; j < kChains; ++j) s = _mm256_add_ps(s, acc[j]);
  sink_avx2.store(_mm256_cvtss_f32(s), std::memory_order_relaxed);
  return 2.0 * 8 * kChains * double(iters);
}

}  // namespace pydl
