#pragma once
// Each kernel family registers its functions on pydl._C from its own bind/<family>.cpp.
// Bindings convert and check arguments, release the GIL, and call csrc; they hold no math.
#include <pybind11/pybind11.h>

namespace pydl::bind {

void bind_core(pybind11::module_& m);
void bind_gemm(pybind11::module_& m);
void bind_conv(pybind11::module_& m);
void bind_pool(pybind11::module_& m);
void bind_batchnorm(pybind11::module_& m);
void bind_activation(pybind11::module_& m);
void bind_loss(pybind11::module_& m);
void bind_optim(pybind11::module_& m);
void bind_memory(pybind11::module_& m);
void bind_reduce(pybind11::module_& m);
void bind_group_norm(pybind11::module_& m);
void bind_elementwise(pybind11::module_& m);

}  // namespace pydl::bind
