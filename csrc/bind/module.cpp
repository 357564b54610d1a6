#include "bindings.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "pydl CPU kernels";
  pydl::bind::bind_core(m);
  pydl::bind::bind_gemm(m);
  pydl::bind::bind_conv(m);
  pydl::bind::bind_pool(m);
  pydl::bind::bind_batchnorm(m);
  pydl::bind::bind_activation(m);
  pydl::bind::bind_loss(m);
  pydl::bind::bind_optim(m);
  pydl::bind::bind_memory(m);
  pydl::bind::bind_reduce(m);
  pydl::bind::bind_group_norm(m);
  pydl::bind::bind_elementwise(m);
}
