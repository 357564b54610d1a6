// pydl._C host memory: the caching allocator behind large kernel outputs (csrc/host_cache.h),
// plus a test hook that makes a cached array of any size.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <vector>

#include "bindings.h"
#include "host_array.h"
#include "host_cache.h"

namespace py = pybind11;

namespace pydl::bind {

void bind_memory(py::module_& m) {
  m.def("host_cache_stats", [] {
    const HostCacheStats s = host_cache_stats();
    py::dict d;
    d["allocated_bytes"] = s.allocated_bytes;
    d["peak_allocated_bytes"] = s.peak_allocated_bytes;
    d["cached_bytes"] = s.cached_bytes;
    d["reserved_bytes"] = s.allocated_bytes + s.cached_bytes;
    d["cache_limit_bytes"] = s.cache_limit_bytes;
    d["num_allocs"] = s.num_allocs;
    d["num_cache_hits"] = s.num_cache_hits;
    d["num_os_allocs"] = s.num_os_allocs;
    d["num_os_frees"] = s.num_os_frees;
    return d;
  }, "Counters of the caching host allocator (large blocks only)");
  m.def("host_empty_cache", [] {
    py::gil_scoped_release release;
    host_empty_cache();
  }, "Return every cached host block to the OS");
  m.def("host_cache_set_limit", [](int64_t bytes) {
    if (bytes < 0) throw std::invalid_argument("host cache limit must be >= 0 bytes, got " +
                                               std::to_string(bytes));
    py::gil_scoped_release release;
    return host_cache_set_limit(std::size_t(bytes));
  }, py::arg("bytes"), "Cap the cached bytes (0 disables caching); returns the previous cap");
  m.def("host_cache_reset_peak", &host_cache_reset_peak,
        "Reset the peak and the counters of the caching host allocator");
  m.def("owns_host_block", [](const py::array& a) { return owns_host_block(a); }, py::arg("a"),
        "True for an array that alone owns a cached host block (like flags.owndata for NumPy's "
        "own allocations); False for views of it and every other array");
  m.def("host_empty", [](const std::vector<py::ssize_t>& shape, const std::string& dtype) {
    for (py::ssize_t d : shape)
      if (d < 0) throw std::invalid_argument("host_empty: negative dimension " + std::to_string(d));
    if (dtype == "float32") return py::array(empty_array<float>(shape));
    if (dtype == "float64") return py::array(empty_array<double>(shape));
    if (dtype == "uint8") return py::array(empty_array<uint8_t>(shape));
    if (dtype == "int64") return py::array(empty_array<int64_t>(shape));
    throw py::type_error("host_empty: dtype must be float32, float64, uint8 or int64, got " +
                         dtype);
  }, py::arg("shape"), py::arg("dtype") = "float32",
     "np.empty(shape, dtype) as the kernels allocate their outputs (cached from 1 MiB up)");
}

}  // namespace pydl::bind
