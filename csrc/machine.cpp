#include "machine.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "parallel.h"

namespace pydl {

namespace {
// Keeps the accumulators' results observable so the compiler cannot drop the loops.
std::atomic<double> sink{0.0};
}  // namespace

double fma_loop_portable(int64_t iters, bool f64) {
  // Eight independent chains of scalar multiply-adds: what a CPU without the AVX2 path gets.
  auto run = [iters](auto zero) {
    using T = decltype(zero);
    T acc[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const T a = T(0.999999), b = T(1e-7);
    for (int64_t i = 0; i < iters; ++i)
      for (int j = 0; j < 8; ++j) {
        acc[j] = acc[j] * a + b;
#if defined(__GNUC__) || defined(__clang__)
        __asm__ volatile("" : "+g"(acc[j]));  // keeps clang from deleting the loop
#endif
      }
    T s = 0;
    for (T v : acc) s += v;
    sink.store(double(s), std::memory_order_relaxed);
    return 2.0 * 8 * double(iters);
  };
  return f64 ? run(double{}) : run(float{});
}

#if !defined(PYDL_HAVE_AVX2_KERNELS)
double fma_loop_avx2(int64_t iters, bool f64) { return fma_loop_portable(iters, f64); }
#endif
#if !defined(PYDL_HAVE_AVX512_KERNELS)
double fma_loop_avx512(int64_t iters, bool f64) { return fma_loop_avx2(iters, f64); }
#endif

double fma_loop(int64_t iters, bool f64) {
  if (iters < 0)
    throw std::invalid_argument("fma_loop: iters must be >= 0, got " + std::to_string(iters));
  const int threads = num_threads();
  std::vector<double> flops(threads, 0.0);
  const bool avx512 = use_avx512(), avx2 = use_avx2();
  // One index per thread: parallel_for hands each of the `threads` items to its own thread.
  parallel_for(threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t)
      flops[t] = avx512 ? fma_loop_avx512(iters, f64)
                 : avx2 ? fma_loop_avx2(iters, f64)
                        : fma_loop_portable(iters, f64);
  });
  double sum = 0;
  for (double f : flops) sum += f;
  return sum;
}

void parallel_copy(void* dst, const void* src, std::size_t nbytes) {
  constexpr int64_t kBlock = 1 << 20;
  const int64_t blocks = (int64_t(nbytes) + kBlock - 1) / kBlock;
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  parallel_for(blocks, 1, [&](int64_t begin, int64_t end) {
    const std::size_t lo = std::size_t(begin) * kBlock;
    const std::size_t hi = std::min(nbytes, std::size_t(end) * kBlock);
    std::memcpy(d + lo, s + lo, hi - lo);
  });
}

}  // namespace pydl
