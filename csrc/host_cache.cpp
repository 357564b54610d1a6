// Caching host allocator; policy and rationale in host_cache.h.
#include "host_cache.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#define PYDL_HOST_CACHE_MMAP 1
#endif
#if defined(_WIN32)
#include <malloc.h>
#endif

namespace pydl {
namespace {

constexpr std::size_t kGranule = std::size_t(64) << 10;  // large sizes round up to 64 KiB
constexpr std::size_t kSmallAlign = 64;

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

std::size_t default_limit() {
  std::size_t limit = std::size_t(1024) << 20;
#if defined(PYDL_HOST_CACHE_MMAP) && defined(_SC_PHYS_PAGES)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) limit = std::min(limit, std::size_t(pages) * std::size_t(page) / 4);
#endif
  if (const char* env = std::getenv("PYDL_HOST_CACHE_MB")) {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(env, &end, 10);
    // An unreadable value keeps the default rather than failing at import.
    if (end != env && *end == '\0') limit = std::size_t(mb) << 20;
  }
  return limit;
}

void* os_map(std::size_t bytes) {
#ifdef PYDL_HOST_CACHE_MMAP
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  // Best effort: 2 MiB pages fault (and get zeroed) in far fewer, cheaper steps.
  madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
#elif defined(_WIN32)
  void* p = _aligned_malloc(bytes, 4096);
  if (!p) throw std::bad_alloc();
  return p;
#else
  void* p = std::aligned_alloc(4096, bytes);
  if (!p) throw std::bad_alloc();
  return p;
#endif
}

void os_unmap(void* p, std::size_t bytes) {
#ifdef PYDL_HOST_CACHE_MMAP
  munmap(p, bytes);
#elif defined(_WIN32)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

void* small_alloc(std::size_t bytes) {
  const std::size_t n = round_up(std::max<std::size_t>(bytes, 1), kSmallAlign);
#if defined(_WIN32)
  void* p = _aligned_malloc(n, kSmallAlign);
#else
  void* p = std::aligned_alloc(kSmallAlign, n);
#endif
  if (!p) throw std::bad_alloc();
  return p;
}

void small_free(void* p) {
#if defined(_WIN32)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

struct Cached {
  void* p;
  std::uint64_t freed_at;  // sequence number: lower = freed longer ago
};

class HostCache {
 public:
  HostCache() { stats_.cache_limit_bytes = default_limit(); }

  void* alloc(std::size_t bytes) {
    if (bytes < kHostCacheMinBytes) {
      void* p = small_alloc(bytes);
      std::lock_guard<std::mutex> lock(mu_);
      live_.emplace(p, 0);
      return p;
    }
    if (bytes > SIZE_MAX - kGranule) throw std::bad_alloc();
    const std::size_t size = round_up(bytes, kGranule);
    std::unique_lock<std::mutex> lock(mu_);
    ++stats_.num_allocs;
    auto it = free_.lower_bound(size);
    if (it != free_.end() && it->first <= size + size / 4) {
      const std::size_t got = it->first;
      void* p = it->second.p;
      free_.erase(it);
      stats_.cached_bytes -= got;
      ++stats_.num_cache_hits;
      hand_out(p, got);
      return p;
    }
    lock.unlock();
    void* p;
    try {
      p = os_map(size);
    } catch (const std::bad_alloc&) {
      // Cached blocks of the wrong size may be what stands in the way: drop them and retry.
      empty_cache();
      p = os_map(size);
    }
    lock.lock();
    ++stats_.num_os_allocs;
    hand_out(p, size);
    return p;
  }

  void free(void* p) {
    if (!p) return;
    std::unique_lock<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end())
      throw std::invalid_argument("host_free: pointer was not allocated by host_alloc or was "
                                  "already freed");
    const std::size_t size = it->second;
    live_.erase(it);
    if (size == 0) {
      lock.unlock();
      small_free(p);
      return;
    }
    stats_.allocated_bytes -= size;
    std::map<void*, std::size_t> release;
    if (size <= stats_.cache_limit_bytes) {
      evict_until(stats_.cache_limit_bytes - size, &release);
      free_.emplace(size, Cached{p, ++seq_});
      stats_.cached_bytes += size;
    } else {
      release.emplace(p, size);
    }
    stats_.num_os_frees += std::int64_t(release.size());
    lock.unlock();
    for (auto& [q, n] : release) os_unmap(q, n);
  }

  void empty_cache() {
    std::map<void*, std::size_t> release;
    {
      std::lock_guard<std::mutex> lock(mu_);
      evict_until(0, &release);
      stats_.num_os_frees += std::int64_t(release.size());
    }
    for (auto& [q, n] : release) os_unmap(q, n);
  }

  std::size_t set_limit(std::size_t bytes) {
    std::map<void*, std::size_t> release;
    std::size_t old;
    {
      std::lock_guard<std::mutex> lock(mu_);
      old = stats_.cache_limit_bytes;
      stats_.cache_limit_bytes = bytes;
      evict_until(bytes, &release);
      stats_.num_os_frees += std::int64_t(release.size());
    }
    for (auto& [q, n] : release) os_unmap(q, n);
    return old;
  }

  // fork() while another thread holds mu_ would leave the child's copy locked forever (a
  // DataLoader worker, say): hold it across the fork, as malloc does with its own locks.
  void lock_for_fork() { mu_.lock(); }
  void unlock_after_fork() { mu_.unlock(); }

  HostCacheStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
    stats_.num_allocs = stats_.num_cache_hits = stats_.num_os_allocs = stats_.num_os_frees = 0;
  }

 private:
  // With mu_ held.
  void hand_out(void* p, std::size_t size) {
    live_.emplace(p, size);
    stats_.allocated_bytes += size;
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  }

  // With mu_ held: moves the least recently freed cached blocks into *release until the cache
  // holds at most `target` bytes. The caller unmaps them after dropping the lock.
  void evict_until(std::size_t target, std::map<void*, std::size_t>* release) {
    while (stats_.cached_bytes > target && !free_.empty()) {
      auto oldest = free_.begin();
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if (it->second.freed_at < oldest->second.freed_at) oldest = it;
      release->emplace(oldest->second.p, oldest->first);
      stats_.cached_bytes -= oldest->first;
      free_.erase(oldest);
    }
  }

  std::mutex mu_;
  std::multimap<std::size_t, Cached> free_;     // cached blocks by size
  std::unordered_map<void*, std::size_t> live_;  // handed out: size (0 = small, malloc'd)
  std::uint64_t seq_ = 0;
  HostCacheStats stats_;
};

// Never destroyed: arrays that outlive interpreter shutdown may still give blocks back.
HostCache& cache() {
  static HostCache* c = [] {
    HostCache* made = new HostCache();
#ifdef PYDL_HOST_CACHE_MMAP
    pthread_atfork([] { cache().lock_for_fork(); }, [] { cache().unlock_after_fork(); },
                   [] { cache().unlock_after_fork(); });
#endif
    return made;
  }();
  return *c;
}

}  // namespace

void* host_alloc(std::size_t bytes) { return cache().alloc(bytes); }
void host_free(void* p) { cache().free(p); }
HostCacheStats host_cache_stats() { return cache().stats(); }
void host_cache_reset_peak() { cache().reset_peak(); }
void host_empty_cache() { cache().empty_cache(); }
std::size_t host_cache_set_limit(std::size_t bytes) { return cache().set_limit(bytes); }

}  // namespace pydl
