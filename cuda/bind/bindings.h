#pragma once
// Each kernel family registers its functions from its own bind/<family>.cpp. Pointers arrive as
// Python ints (CuPy's `data.ptr`), streams likewise; bindings check sizes, release the GIL and
// call the launchers declared in cuda/kernels.h.
#include <pybind11/pybind11.h>

#include <cstdint>

namespace pydl::cuda::bind {

template <class T>
T* ptr(std::uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

void bind_gemm(pybind11::module_& m);
void bind_conv(pybind11::module_& m);
void bind_pool_batchnorm(pybind11::module_& m);
void bind_optim(pybind11::module_& m);

}  // namespace pydl::cuda::bind
