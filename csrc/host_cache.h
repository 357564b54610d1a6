#pragma once
// A caching allocator for large host buffers (kernel outputs), the CPU analogue of PyTorch's
// CUDA caching allocator.
//
// Why: glibc serves every block above its mmap threshold (at most 32 MiB) with a fresh mmap and
// unmaps it on free, so each new large output starts as untouched pages that the kernel's first
// writes page-fault and the OS zeroes, at ~6-12 GB/s on the development machine: 4-8 ms per
// 51 MB array, often more than the kernel's own work. A training loop asks for the same few
// sizes every step, so a freed block is kept here and handed to the next request that fits; its
// pages are already mapped.
//
// Policy:
//   * requests below kHostCacheMinBytes (1 MiB) are not cached: they come from and go back to
//     the system allocator (malloc's own free lists already reuse small blocks);
//   * larger requests are rounded up to whole 64 KiB granules and served best fit from the
//     cached blocks of at most 1.25x the rounded size (so a small request never pins a much
//     larger block), else freshly mapped (page aligned; transparent huge pages requested where
//     the OS supports it, which cuts the first-touch cost of the fresh pages);
//   * a freed block is cached while cached bytes stay within the limit (env PYDL_HOST_CACHE_MB,
//     default min(1024 MiB, a quarter of physical memory); 0 disables caching). Making room
//     returns the least recently freed blocks to the OS first; a block larger than the limit
//     goes straight back.
//   * host_empty_cache() returns every cached block to the OS.
// All functions are thread-safe (one mutex); none touches Python.
#include <cstddef>
#include <cstdint>

namespace pydl {

constexpr std::size_t kHostCacheMinBytes = std::size_t(1) << 20;

// Returns a buffer of at least `bytes` bytes, 64-byte aligned (page aligned when
// bytes >= kHostCacheMinBytes), contents unspecified. bytes == 0 gives a valid unique pointer.
// Throws std::bad_alloc when the memory cannot be had.
void* host_alloc(std::size_t bytes);
// Gives back a pointer from host_alloc (null is ignored). Throws std::invalid_argument for a
// pointer host_alloc did not hand out (or already freed) among the cached-size blocks.
void host_free(void* p);

struct HostCacheStats {
  std::size_t allocated_bytes = 0;       // large blocks handed out and not yet freed
  std::size_t peak_allocated_bytes = 0;  // max of allocated_bytes since the last reset
  std::size_t cached_bytes = 0;          // large blocks kept for reuse
  std::size_t cache_limit_bytes = 0;     // cap on cached_bytes (0: caching disabled)
  std::int64_t num_allocs = 0;           // large-block requests
  std::int64_t num_cache_hits = 0;       // ... served from the cache
  std::int64_t num_os_allocs = 0;        // ... served by mapping fresh memory
  std::int64_t num_os_frees = 0;         // large blocks returned to the OS
};

HostCacheStats host_cache_stats();
// Zeroes the counters and sets the peak to the current allocated bytes.
void host_cache_reset_peak();
// Returns every cached block to the OS; blocks in use are untouched.
void host_empty_cache();
// Sets the cap on cached bytes (0 disables caching and empties the cache); returns the old cap.
std::size_t host_cache_set_limit(std::size_t bytes);

}  // namespace pydl
