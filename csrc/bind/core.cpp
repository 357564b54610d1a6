// Build and runtime configuration: compiler, SIMD path, threads.
#include "bindings.h"
#include "cpu_features.h"
#include "parallel.h"

#include <pybind11/stl.h>

namespace py = pybind11;

namespace pydl::bind {

void bind_core(py::module_& m) {
  m.attr("compiler") = PYDL_COMPILER_ID;
  m.def("cpu_supports_avx2_fma", &cpu_supports_avx2_fma,
        "Whether this CPU (and build) can run the AVX2+FMA kernels");
  m.def("cpu_supports_avx512", &cpu_supports_avx512,
        "Whether this CPU (and build) can run the AVX-512 kernels");
  m.def("simd_path", &simd_path,
        "The SIMD path kernels use now: 'avx512', 'avx2+fma' or 'portable'");
  m.def("available_simd_paths", &available_simd_paths,
        "The SIMD paths this CPU and build can run, best first");
  m.def("set_simd_path", &set_simd_path, py::arg("path"),
        "Select 'auto' (best available), 'avx512', 'avx2+fma' or 'portable' kernels; the "
        "PYDL_SIMD environment variable does the same at import");
  m.def("num_threads", &num_threads, "Threads the kernels use");
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Set the threads the kernels use");
}

}  // namespace pydl::bind
