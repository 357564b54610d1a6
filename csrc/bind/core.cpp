// Build and runtime configuration: compiler, SIMD path, threads.
#include "bindings.h"
#include "cpu_features.h"
#include "machine.h"
#include "parallel.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

namespace py = pybind11;

namespace pydl::bind {

namespace {

py::dict cpu_features_dict() {
  const CpuFeatures& f = cpu_features();
  py::dict d;
  d["x86"] = f.x86;
  d["avx"] = f.avx;
  d["fma"] = f.fma;
  d["avx2"] = f.avx2;
  d["osxsave"] = f.osxsave;
  d["avx512f"] = f.avx512f;
  d["avx512dq"] = f.avx512dq;
  d["avx512bw"] = f.avx512bw;
  d["avx512vl"] = f.avx512vl;
  d["xcr0"] = f.xcr0;
  d["os_ymm"] = f.os_ymm;
  d["os_zmm"] = f.os_zmm;
#if defined(PYDL_HAVE_AVX2_KERNELS)
  d["avx2_kernels_built"] = true;
#else
  d["avx2_kernels_built"] = false;
#endif
#if defined(PYDL_HAVE_AVX512_KERNELS)
  d["avx512_kernels_built"] = true;
#else
  d["avx512_kernels_built"] = false;
#endif
  return d;
}

// Bounds of the arguments the core functions take from Python: a loop of 2**62 iterations never
// ends (and its FLOP count overflows), and a thread pool of a million threads exhausts the
// process before the first one starts.
constexpr int64_t kMaxFmaIters = int64_t(1) << 40;
constexpr int kMaxThreads = 1024;

double fma_loop_py(int64_t iters, const std::string& dtype) {
  if (iters < 0 || iters > kMaxFmaIters)
    throw std::invalid_argument("fma_loop: iters must be between 0 and 2**40, got " +
                                std::to_string(iters));
  if (dtype != "float32" && dtype != "float64")
    throw std::invalid_argument("fma_loop: dtype must be 'float32' or 'float64', got '" + dtype +
                                "'");
  py::gil_scoped_release release;
  return fma_loop(iters, dtype == "float64");
}

void parallel_copy_py(py::array dst, py::array src) {
  if (!(dst.flags() & py::array::c_style) || !(src.flags() & py::array::c_style))
    throw std::invalid_argument("parallel_copy: dst and src must be C-contiguous arrays");
  if (!dst.writeable()) throw std::invalid_argument("parallel_copy: dst is read-only");
  if (dst.nbytes() != src.nbytes())
    throw std::invalid_argument("parallel_copy: dst has " + std::to_string(dst.nbytes()) +
                                " bytes, src " + std::to_string(src.nbytes()));
  void* d = dst.mutable_data();
  const void* s = src.data();
  const auto n = static_cast<std::size_t>(src.nbytes());
  const auto* dc = static_cast<const char*>(d);
  const auto* sc = static_cast<const char*>(s);
  if (n && dc < sc + n && sc < dc + n)
    throw std::invalid_argument("parallel_copy: dst and src overlap");
  py::gil_scoped_release release;
  parallel_copy(d, s, n);
}

}  // namespace

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
  m.def("cpu_features", &cpu_features_dict,
        "What CPUID and XGETBV report (read by pydl itself, the same under every compiler): "
        "avx, fma, avx2, avx512f/dq/bw/vl, osxsave, xcr0, os_ymm, os_zmm, and which SIMD "
        "kernels this build has");
  m.def("fma_loop", &fma_loop_py, py::arg("iters"), py::arg("dtype") = "float32",
        "Run `iters` iterations of an FMA loop on every kernel thread on the current SIMD path "
        "and return the floating-point operations done (peak FLOP/s = result / call time)");
  m.def("parallel_copy", &parallel_copy_py, py::arg("dst"), py::arg("src"),
        "Copy the bytes of C-contiguous src into dst with every kernel thread (memory bandwidth "
        "reference)");
  m.def("num_threads", &num_threads, "Threads the kernels use");
  m.def("set_num_threads", [](int64_t n) {
    if (n < 1 || n > kMaxThreads)
      throw std::invalid_argument("set_num_threads: n must be between 1 and " +
                                  std::to_string(kMaxThreads) + ", got " + std::to_string(n));
    set_num_threads(static_cast<int>(n));
  }, py::arg("n"), "Set the threads the kernels use");
  m.def("deterministic_algorithms", &deterministic_algorithms,
        "Whether kernels split reductions independently of the thread count");
  m.def("set_deterministic_algorithms", &set_deterministic_algorithms, py::arg("on"),
        "Split reductions independently of the thread count (pydl.use_deterministic_algorithms)");
}

}  // namespace pydl::bind
