// Fused optimizer launchers: hyper-parameter checks, host-side bias corrections, one multi-tensor
// launch per call. Device code: optim.cuh.
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "optim.cuh"

namespace pydl::cuda {
namespace {

TensorTable checked_table(const char* name, const MultiTensor& m, int min_lists, int max_lists) {
  if (m.tensors < 1 || m.tensors > 2147483647LL || m.lists < min_lists || m.lists > max_lists ||
      m.chunks < 0)
    throw std::invalid_argument(std::string(name) + ": bad tensor table (tensors " +
                                std::to_string(m.tensors) + ", lists " + std::to_string(m.lists) +
                                ", expected " + std::to_string(min_lists) + ".." +
                                std::to_string(max_lists) + " lists)");
  return TensorTable{m.table, m.table + m.tensors * m.lists,
                     m.table + m.tensors * m.lists + m.tensors, static_cast<int>(m.tensors),
                     static_cast<int>(m.lists), m.chunks};
}

void check_positive(const char* name, const char* what, double v, bool allow_zero = true) {
  if (!(allow_zero ? v >= 0 : v > 0))
    throw std::invalid_argument(std::string(name) + ": invalid " + what + ": " +
                                std::to_string(v));
}

template <class K, class... Args>
void launch_mt(const char* name, K kernel, const TensorTable& t, stream_handle s, Args... args) {
  if (t.chunks == 0) return;
  launch_kernel(name, kernel, dim3(grid_1d(t.chunks)), dim3(mt::kThreads),
                reinterpret_cast<cudaStream_t>(s), t, args...);
}

}  // namespace

int64_t optim_chunk_elements() { return mt::kChunk; }

template <class T>
void sgd_step_cuda(const MultiTensor& m, double lr, double momentum, double dampening,
                   double weight_decay, bool nesterov, bool maximize, bool first_step,
                   stream_handle stream) {
  const char* name = "sgd_step_cuda";
  check_positive(name, "learning rate", lr);
  check_positive(name, "momentum value", momentum);
  check_positive(name, "weight_decay value", weight_decay);
  if (nesterov && (momentum <= 0 || dampening != 0))
    throw std::invalid_argument("sgd_step_cuda: Nesterov momentum requires a momentum and zero "
                                "dampening");
  const TensorTable t = checked_table(name, m, momentum != 0 ? 3 : 2, momentum != 0 ? 3 : 2);
  SgdHyper<T> h{static_cast<T>(lr), static_cast<T>(momentum), static_cast<T>(dampening),
                static_cast<T>(weight_decay), nesterov, maximize, first_step};
  launch_mt(name, sgd_step_kernel<T>, t, stream, h);
}

template <class T>
void adam_step_cuda(const MultiTensor& m, double lr, double beta1, double beta2, double eps,
                    double weight_decay, int64_t step, bool decoupled, bool amsgrad,
                    bool maximize, stream_handle stream) {
  const char* name = decoupled ? "adamw_step_cuda" : "adam_step_cuda";
  check_positive(name, "learning rate", lr);
  check_positive(name, "epsilon value", eps);
  check_positive(name, "weight_decay value", weight_decay);
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
    throw std::invalid_argument(std::string(name) + ": invalid beta parameters: (" +
                                std::to_string(beta1) + ", " + std::to_string(beta2) + ")");
  if (step < 1) throw std::invalid_argument(std::string(name) + ": step must be >= 1");
  const int lists = amsgrad ? 5 : 4;
  const TensorTable t = checked_table(name, m, lists, lists);
  AdamHyper<T> h{static_cast<T>(lr),
                 static_cast<T>(beta1),
                 static_cast<T>(beta2),
                 static_cast<T>(eps),
                 static_cast<T>(weight_decay),
                 static_cast<T>(1.0 - std::pow(beta1, static_cast<double>(step))),
                 static_cast<T>(std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step)))),
                 decoupled,
                 amsgrad,
                 maximize};
  launch_mt(name, adam_step_kernel<T>, t, stream, h);
}

template <class T>
void adagrad_step_cuda(const MultiTensor& m, double lr, double lr_decay, double weight_decay,
                       double eps, int64_t step, bool maximize, stream_handle stream) {
  const char* name = "adagrad_step_cuda";
  check_positive(name, "learning rate", lr);
  check_positive(name, "lr_decay value", lr_decay);
  check_positive(name, "weight_decay value", weight_decay);
  check_positive(name, "epsilon value", eps);
  if (step < 1) throw std::invalid_argument("adagrad_step_cuda: step must be >= 1");
  const TensorTable t = checked_table(name, m, 3, 3);
  AdagradHyper<T> h{static_cast<T>(lr / (1.0 + static_cast<double>(step - 1) * lr_decay)),
                    static_cast<T>(weight_decay), static_cast<T>(eps), maximize};
  launch_mt(name, adagrad_step_kernel<T>, t, stream, h);
}

template <class T>
void rmsprop_step_cuda(const MultiTensor& m, double lr, double alpha, double eps,
                       double weight_decay, double momentum, bool centered, bool maximize,
                       stream_handle stream) {
  const char* name = "rmsprop_step_cuda";
  check_positive(name, "learning rate", lr);
  check_positive(name, "epsilon value", eps);
  check_positive(name, "momentum value", momentum);
  check_positive(name, "weight_decay value", weight_decay);
  check_positive(name, "alpha value", alpha);
  const int lists = 3 + (momentum > 0) + (centered ? 1 : 0);
  const TensorTable t = checked_table(name, m, lists, lists);
  RmspropHyper<T> h{static_cast<T>(lr),           static_cast<T>(alpha),
                    static_cast<T>(eps),          static_cast<T>(weight_decay),
                    static_cast<T>(momentum),     centered,
                    maximize};
  launch_mt(name, rmsprop_step_kernel<T>, t, stream, h);
}

template <class T>
void sum_squares_cuda(const MultiTensor& m, double* out, stream_handle stream) {
  const char* name = "sum_squares_cuda";
  const TensorTable t = checked_table(name, m, 1, 5);
  cudaMemsetAsync(out, 0, sizeof(double), reinterpret_cast<cudaStream_t>(stream));
  check_launch(name);
  launch_mt(name, sum_squares_kernel<T>, t, stream, out);
}

template <class T>
void scale_cuda(const MultiTensor& m, double scale, stream_handle stream) {
  const TensorTable t = checked_table("scale_cuda", m, 1, 5);
  launch_mt("scale_cuda", scale_kernel<T>, t, stream, static_cast<T>(scale));
}

#define PYDL_OPTIM_INSTANTIATE(T)                                                              \
  template void sgd_step_cuda<T>(const MultiTensor&, double, double, double, double, bool,     \
                                 bool, bool, stream_handle);                                   \
  template void adam_step_cuda<T>(const MultiTensor&, double, double, double, double, double,  \
                                  int64_t, bool, bool, bool, stream_handle);                   \
  template void adagrad_step_cuda<T>(const MultiTensor&, double, double, double, double,       \
                                     int64_t, bool, stream_handle);                            \
  template void rmsprop_step_cuda<T>(const MultiTensor&, double, double, double, double,       \
                                     double, bool, bool, stream_handle);                       \
  template void sum_squares_cuda<T>(const MultiTensor&, double*, stream_handle);               \
  template void scale_cuda<T>(const MultiTensor&, double, stream_handle);
PYDL_OPTIM_INSTANTIATE(float)
PYDL_OPTIM_INSTANTIATE(double)
#undef PYDL_OPTIM_INSTANTIATE

}  // namespace pydl::cuda
