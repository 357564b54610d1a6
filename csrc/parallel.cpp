#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace pydl {
namespace {

thread_local bool tls_in_parallel = false;

int default_thread_count() {
  if (const char* env = std::getenv("PYDL_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Waking a sleeping thread through a condition variable costs tens of microseconds on a VM
// (measured ~30 us to start a worker and ~30 us more to wake the caller on the development
// machine), which is more than many kernel calls take. So both sides spin briefly before they
// sleep: a worker keeps polling for the next job for kSpinTime after finishing one (back-to-back
// kernel calls in a training step come much sooner than that), and the caller polls for the
// job's end before blocking. Spinning is bounded in time, so an idle pool sleeps.
constexpr auto kSpinTime = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Polls pred() until it holds or kSpinTime has passed; true if it held.
template <typename Pred>
bool spin_until(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (int i = 0;; ++i) {
    if (pred()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
  }
}

// One parallel_for in flight. Lives on the caller's stack; run() returns only after every
// worker that picked it up has left it (active == 0), so no worker touches a dead job.
struct Job {
  const std::function<void(int64_t)>* body = nullptr;
  int64_t n_chunks = 0;
  std::atomic<int64_t> next_chunk{0};
  std::atomic<int64_t> chunks_left{0};
  std::atomic<int> active{0};  // workers inside this job
  std::exception_ptr error;    // guarded by the pool mutex
};

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads) { start(n_threads); }
  ~ThreadPool() { stop(); }

  void resize(int n_threads) {
    stop();
    start(n_threads);
  }

  // Runs body(c) for c = 0..n_chunks-1; the caller executes chunks too.
  void run(int64_t n_chunks, const std::function<void(int64_t)>& body) {
    std::lock_guard<std::mutex> job_guard(job_mutex_);  // one job at a time from any thread
    Job job;
    job.body = &body;
    job.n_chunks = n_chunks;
    job.chunks_left.store(n_chunks);
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_.store(&job, std::memory_order_release);
      generation_.fetch_add(1, std::memory_order_acq_rel);
    }
    cv_work_.notify_all();
    work_on(job);
    {
      // Every chunk is claimed once work_on returns, so unpublish now (under the lock workers
      // join with): from here on no worker can enter the job, and the ones inside are counted
      // in `active`, which the wait below drains before the job leaves this stack frame.
      std::lock_guard<std::mutex> lk(mu_);
      job_.store(nullptr, std::memory_order_release);
    }
    auto finished = [&] {
      return job.chunks_left.load(std::memory_order_acquire) == 0 &&
             job.active.load(std::memory_order_acquire) == 0;
    };
    if (!spin_until(finished)) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_done_.wait(lk, finished);
    }
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  void start(int n_threads) {
    shutdown_.store(false);
    for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      shutdown_.store(true);
    }
    cv_work_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void work_on(Job& job) {
    tls_in_parallel = true;
    int64_t done = 0;
    for (;;) {
      int64_t c = job.next_chunk.fetch_add(1);
      if (c >= job.n_chunks) break;
      try {
        (*job.body)(c);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!job.error) job.error = std::current_exception();
      }
      ++done;
    }
    tls_in_parallel = false;
    if (done > 0 && job.chunks_left.fetch_sub(done, std::memory_order_acq_rel) == done) {
      std::lock_guard<std::mutex> lk(mu_);  // pairs with the caller's predicate check
      cv_done_.notify_all();
    }
  }

  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] {
        return shutdown_.load(std::memory_order_acquire) ||
               generation_.load(std::memory_order_acquire) != seen;
      });
      Job* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_work_.wait(lk, [&] {
          return shutdown_.load() || (job_.load() != nullptr && generation_.load() != seen);
        });
        if (shutdown_.load()) return;
        seen = generation_.load();
        job = job_.load();
        job->active.fetch_add(1);
      }
      work_on(*job);
      if (job->active.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(mu_);
        cv_done_.notify_all();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex job_mutex_;
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  std::atomic<Job*> job_{nullptr};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> shutdown_{false};
};

std::mutex pool_mutex;
std::unique_ptr<ThreadPool> pool;
int thread_setting = 0;

ThreadPool& get_pool() {
  std::lock_guard<std::mutex> lk(pool_mutex);
  if (!pool) {
    if (thread_setting == 0) thread_setting = default_thread_count();
    pool = std::make_unique<ThreadPool>(thread_setting);
  }
  return *pool;
}

}  // namespace

int num_threads() {
  std::lock_guard<std::mutex> lk(pool_mutex);
  if (thread_setting == 0) thread_setting = default_thread_count();
  return thread_setting;
}

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
  std::lock_guard<std::mutex> lk(pool_mutex);
  thread_setting = n;
  if (pool) pool->resize(n);
}

bool in_parallel_region() { return tls_in_parallel; }

namespace {
std::atomic<bool> deterministic_setting{false};
}  // namespace

bool deterministic_algorithms() { return deterministic_setting.load(std::memory_order_relaxed); }
void set_deterministic_algorithms(bool on) {
  deterministic_setting.store(on, std::memory_order_relaxed);
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int threads = num_threads();
  int64_t max_chunks = (n + grain - 1) / grain;
  int64_t n_chunks = std::min<int64_t>(threads, max_chunks);
  if (n_chunks <= 1 || tls_in_parallel) {
    fn(0, n);
    return;
  }
  // Even split: chunk c covers [c*n/n_chunks, (c+1)*n/n_chunks).
  std::function<void(int64_t)> body = [&](int64_t c) {
    int64_t begin = n * c / n_chunks;
    int64_t end = n * (c + 1) / n_chunks;
    if (begin < end) fn(begin, end);
  };
  get_pool().run(n_chunks, body);
}

}  // namespace pydl
