// pybind11 module for pydl's CUDA kernels: argument conversion and checks only.
// Built twice from the same sources: pydl._C_cuda (nvcc-compiled kernels, for GPUs) and
// pydl._C_cuda_emu (the same kernels compiled by g++ against the emulation harness, for tests).
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "device.cuh"

#ifdef PYDL_CUDA_EMU
#define PYDL_CUDA_MODULE_NAME _C_cuda_emu
namespace pydl::cuda::emu_selftest {
void bind(pybind11::module_& m);  // cuda/emu/selftest.cpp
}
#else
#define PYDL_CUDA_MODULE_NAME _C_cuda
#endif

namespace py = pybind11;

PYBIND11_MODULE(PYDL_CUDA_MODULE_NAME, m) {
#ifdef PYDL_CUDA_EMU
  m.doc() = "pydl CUDA kernels compiled for the CPU emulation harness (tests only)";
  m.attr("emulated") = true;
  pydl::cuda::emu_selftest::bind(m);
#else
  m.doc() = "pydl CUDA kernels";
  m.attr("emulated") = false;
#endif
  m.def("device_count", &pydl::cuda::device_count, "Number of visible CUDA devices (0 without a GPU)");
  m.def("runtime_version", &pydl::cuda::runtime_version, "CUDA runtime version built against");
  pydl::cuda::bind::bind_gemm(m);
  pydl::cuda::bind::bind_conv(m);
  pydl::cuda::bind::bind_pool_batchnorm(m);
  pydl::cuda::bind::bind_optim(m);
}
