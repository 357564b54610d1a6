// Build and runtime configuration: compiler, SIMD path, threads.
#include "bindings.h"
#include "cpu_features.h"
#include "parallel.h"

namespace py = pybind11;

namespace pydl::bind {

void bind_core(py::module_& m) {
  m.attr("compiler") = PYDL_COMPILER_ID;
  m.def("cpu_supports_avx2_fma", &cpu_supports_avx2_fma,
        "Whether this CPU (and build) can run the AVX2+FMA kernels");
  m.def("simd_path", &simd_path, "The SIMD path kernels use now: 'avx2+fma' or 'portable'");
  m.def("set_simd_path", &set_simd_path, py::arg("path"),
        "Select 'auto' (best available) or 'portable' kernels; PYDL_SIMD=portable does the same");
  m.def("num_threads", &num_threads, "Threads the kernels use");
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Set the threads the kernels use");
}

}  // namespace pydl::bind
