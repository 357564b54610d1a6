#pragma once
// The one place in csrc/ that makes threads. Every kernel that wants more than one core calls
// parallel_for; nothing else creates a std::thread.
//
// A fixed pool of (num_threads() - 1) workers sleeps on a condition variable; the calling thread
// takes part in every job, so a 1-thread setting never touches the pool. A parallel_for issued
// from inside a running job (a conv tile calling GEMM, say) runs inline on the calling thread:
// the outer loop already owns the cores, and nesting would only oversubscribe them.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>

namespace pydl {

// Threads used by parallel_for. Defaults to PYDL_NUM_THREADS, else the hardware's thread count.
int num_threads();
// Resizes the pool (n >= 1). Not to be called while a parallel_for is running.
void set_num_threads(int n);
// True while the calling thread is executing a chunk of some parallel_for.
bool in_parallel_region();

// pydl.use_deterministic_algorithms: while set, kernels that add up partial results of several
// threads (reductions, the conv weight gradient) split their work into pieces chosen without
// looking at num_threads(), so their results are bitwise the same for any thread count. Unset,
// they are still bitwise the same from run to run for a fixed thread count (partials are added
// in a fixed order), only the split follows the thread count.
bool deterministic_algorithms();
void set_deterministic_algorithms(bool on);

// Splits [0, n) into at most num_threads() contiguous chunks of at least `grain` items each and
// calls fn(begin, end) on each chunk, on the pool and the calling thread. Returns when all chunks
// are done. The first exception a chunk throws is rethrown here after the others finish.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// parallel_for's contract (fn(begin, end) over [0, n), blocks of at least `grain`), with the
// blocks handed out from a shared counter instead of one fixed share per thread: on a shared
// machine a pool worker that is descheduled for a while then takes fewer blocks instead of
// holding the caller up with half the work. Each block is about n / (4 * threads) items.
template <typename Fn>
void parallel_blocks(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  const int64_t threads = num_threads();
  const int64_t block = std::max<int64_t>(std::max<int64_t>(grain, 1), n / (4 * threads));
  const int64_t slots = std::min<int64_t>(threads, (n + block - 1) / block);
  std::atomic<int64_t> next{0};
  parallel_for(slots, 1, [&](int64_t, int64_t) {
    for (;;) {
      const int64_t b = next.fetch_add(block);
      if (b >= n) break;
      fn(b, std::min(n, b + block));
    }
  });
}

}  // namespace pydl
