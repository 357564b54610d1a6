"""Host (CPU) memory: the caching allocator behind pydl's large kernel outputs.

glibc gives every block above its mmap threshold a fresh mapping and unmaps it on free, so each
new large output (a 51 MB activation or gradient, say) is untouched memory that the OS must
zero page by page on the kernel's first write, often costing more than the kernel itself.
pydl keeps freed blocks of 1 MiB and more (csrc/host_cache.h) and hands them to the next output
of a fitting size, like PyTorch's CUDA caching allocator. These functions mirror
``torch.cuda.memory_*`` for it:

    pydl.memory.memory_stats()        # counters (bytes in use, cached, peak, hits, ...)
    pydl.memory.memory_allocated()    # bytes of large blocks in use by arrays
    pydl.memory.memory_reserved()     # ... plus bytes held in the cache
    pydl.memory.empty_cache()         # return the cached blocks to the OS
    pydl.memory.set_cache_limit(n)    # cap the cached bytes (0 disables caching)

The cap defaults to min(1024 MiB, a quarter of physical memory); the environment variable
``PYDL_HOST_CACHE_MB`` sets it at import (0 disables caching). Arrays served from the cache are
ordinary NumPy arrays (writeable, picklable, views keep the block alive).
"""
from __future__ import annotations

from pydl import _C

__all__ = ["empty_cache", "memory_stats", "memory_allocated", "memory_reserved",
           "max_memory_allocated", "reset_peak_memory_stats", "set_cache_limit",
           "get_cache_limit"]


def memory_stats() -> dict:
    """The allocator's counters: allocated_bytes, peak_allocated_bytes, cached_bytes,
    reserved_bytes (allocated + cached), cache_limit_bytes, num_allocs, num_cache_hits,
    num_os_allocs, num_os_frees. Only blocks of 1 MiB and more are counted."""
    return dict(_C.host_cache_stats())


def memory_allocated() -> int:
    """Bytes of cached-size blocks currently used by live arrays."""
    return int(_C.host_cache_stats()["allocated_bytes"])


def memory_reserved() -> int:
    """Bytes held by the allocator: in use plus cached."""
    return int(_C.host_cache_stats()["reserved_bytes"])


def max_memory_allocated() -> int:
    """Peak of memory_allocated() since start or the last reset_peak_memory_stats()."""
    return int(_C.host_cache_stats()["peak_allocated_bytes"])


def reset_peak_memory_stats() -> None:
    """Set the peak to the current allocation and zero the counters."""
    _C.host_cache_reset_peak()


def empty_cache() -> None:
    """Return every cached (unused) block to the OS; blocks in use are not affected."""
    _C.host_empty_cache()


def get_cache_limit() -> int:
    """The cap on cached bytes (0: caching disabled)."""
    return int(_C.host_cache_stats()["cache_limit_bytes"])


def set_cache_limit(nbytes: int) -> int:
    """Cap the bytes kept in the cache (0 disables caching and empties it); blocks beyond the new
    cap are returned to the OS, least recently freed first. Returns the previous cap."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise TypeError(f"set_cache_limit: nbytes must be an int, got {type(nbytes).__name__}")
    if nbytes < 0:
        raise ValueError(f"set_cache_limit: nbytes must be >= 0, got {nbytes}")
    return int(_C.host_cache_set_limit(nbytes))
