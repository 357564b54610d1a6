#pragma once
// Fresh output arrays for kernels, served by the caching host allocator (csrc/host_cache.h).
//
// empty_array<T>(shape) is np.empty(shape, T) (C order, contents unspecified): below the cache's
// minimum size NumPy allocates it as usual; from kHostCacheMinBytes up the data is a host_alloc
// block, and the array's base is a capsule that hands the block back to the cache when the last
// array (or view) using it dies. Such an array is an ordinary writeable NumPy array: views,
// pickling (by copy), np.save all work, and the block is never handed out again while any of
// them lives. The capsule's destructor runs with the GIL held; host_free takes only the cache's
// own mutex, never the GIL, so it cannot deadlock with a kernel that released the GIL.
#include <pybind11/numpy.h>

#include <cstddef>
#include <initializer_list>
#include <limits>
#include <new>
#include <stdexcept>
#include <vector>

#include "common/checked.h"
#include "host_cache.h"

namespace pydl::bind {

// The flags of the bindings' C-contiguous array types (py::array_t<T, kCStyle>).
constexpr int kCStyle = pybind11::array::c_style | pybind11::array::forcecast;

// The name of the capsules that own cached blocks (see owns_host_block).
constexpr const char* kHostBlockCapsule = "pydl.host_block";

namespace host_array_detail {
inline void release_block(void* p) noexcept {
  try {
    host_free(p);
  } catch (...) {
    // Cannot happen for blocks made below; a capsule destructor must not throw either way.
  }
}
}  // namespace host_array_detail

template <class T, int Flags = pybind11::array::forcecast>
pybind11::array_t<T, Flags> empty_array(std::vector<pybind11::ssize_t> shape) {
  namespace py = pybind11;
  std::size_t count = 1;
  for (py::ssize_t d : shape) {
    if (d < 0) throw std::invalid_argument("empty_array: negative dimension");
    count *= std::size_t(d);
  }
  // Element and byte counts must fit int64 (as PyTorch's "Storage size calculation overflowed"):
  // checked_numel treats a zero dimension as making any shape fine.
  checked_bytes(checked_numel(shape, "empty_array: element count"), int64_t(sizeof(T)),
                "empty_array: byte count");
  const std::size_t bytes = count * sizeof(T);
  if (bytes < kHostCacheMinBytes) return py::array_t<T, Flags>(shape);
  void* p = host_alloc(bytes);
  py::capsule owner;
  try {
    owner = py::capsule(p, kHostBlockCapsule, &host_array_detail::release_block);
  } catch (...) {
    host_free(p);
    throw;
  }
  return py::array_t<T, Flags>(std::move(shape), static_cast<const T*>(p), owner);
}

template <class T, int Flags = pybind11::array::forcecast>
pybind11::array_t<T, Flags> empty_array(std::initializer_list<pybind11::ssize_t> shape) {
  return empty_array<T, Flags>(std::vector<pybind11::ssize_t>(shape));
}

// Same for a shape given as any range of integers (e.g. std::vector<int64_t>).
template <class T, int Flags = pybind11::array::forcecast, class Shape>
pybind11::array_t<T, Flags> empty_array_like_shape(const Shape& shape) {
  return empty_array<T, Flags>(std::vector<pybind11::ssize_t>(shape.begin(), shape.end()));
}

// True when `a` is the array empty_array made (its base is the block's capsule): it alone owns
// the block, as an array with OWNDATA owns its memory. Views of it (base: the array) are not.
inline bool owns_host_block(const pybind11::array& a) {
  PyObject* base = pybind11::detail::array_proxy(a.ptr())->base;
  return base != nullptr && PyCapsule_CheckExact(base) &&
         PyCapsule_IsValid(base, kHostBlockCapsule);
}

}  // namespace pydl::bind
