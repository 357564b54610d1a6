// pybind11 bindings for pydl._C_cuda: argument conversion and checks only.
#include <pybind11/pybind11.h>

#include "device.cuh"

namespace py = pybind11;

PYBIND11_MODULE(_C_cuda, m) {
  m.doc() = "pydl CUDA kernels";
  m.def("device_count", &pydl::cuda::device_count, "Number of visible CUDA devices (0 without a GPU)");
  m.def("runtime_version", &pydl::cuda::runtime_version, "CUDA runtime version built against");
}
