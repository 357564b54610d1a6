// Batch-norm launchers: one block per channel for the statistics passes, a grid-stride launch
// for evaluation. Device code: batchnorm.cuh.
#include <stdexcept>
#include <string>

#include "batchnorm.cuh"
#include "kernels.h"

namespace pydl::cuda {
namespace {

void check_sizes(const char* name, int64_t batch, int64_t channels, int64_t hw) {
  if (batch < 0 || channels < 0 || hw < 0 || channels > 2147483647LL)
    throw std::invalid_argument(std::string(name) + ": bad sizes (batch " +
                                std::to_string(batch) + ", channels " + std::to_string(channels) +
                                ", spatial " + std::to_string(hw) + ")");
}

template <class T>
void forward_train(const T* x, T* y, const T* w, const T* b, T* rm, T* rv, T* sm, T* si,
                   int64_t batch, int64_t channels, int64_t hw, double eps, double momentum,
                   stream_handle st) {
  const char* name = "batch_norm_forward_train_cuda";
  check_sizes(name, batch, channels, hw);
  if (channels == 0) return;
  launch_kernel(name, batch_norm_forward_train_kernel<T>, dim3(static_cast<unsigned>(channels)),
                dim3(bn::kThreads), reinterpret_cast<cudaStream_t>(st), x, y, w, b, rm, rv, sm,
                si, batch, channels, hw, static_cast<T>(eps), static_cast<T>(momentum));
}

template <class T>
void forward_eval(const T* x, T* y, const T* w, const T* b, const T* rm, const T* rv,
                  int64_t batch, int64_t channels, int64_t hw, double eps, stream_handle st) {
  const char* name = "batch_norm_forward_eval_cuda";
  check_sizes(name, batch, channels, hw);
  const index_t total = batch * channels * hw;
  if (total == 0) return;
  launch_kernel(name, batch_norm_forward_eval_kernel<T>, dim3(grid_1d(ceil_div(total, 256))),
                dim3(256), reinterpret_cast<cudaStream_t>(st), x, y, w, b, rm, rv, total,
                channels, hw, static_cast<T>(eps));
}

template <class T>
void backward_train(const T* x, const T* dy, const T* w, const T* sm, const T* si, T* dx, T* dw,
                    T* db, int64_t batch, int64_t channels, int64_t hw, stream_handle st) {
  const char* name = "batch_norm_backward_train_cuda";
  check_sizes(name, batch, channels, hw);
  if (channels == 0) return;
  launch_kernel(name, batch_norm_backward_train_kernel<T>, dim3(static_cast<unsigned>(channels)),
                dim3(bn::kThreads), reinterpret_cast<cudaStream_t>(st), x, dy, w, sm, si, dx, dw,
                db, batch, channels, hw);
}

}  // namespace

#define PYDL_BN_INSTANTIATE(T)                                                                 \
  void batch_norm_forward_train_cuda(const T* x, T* y, const T* w, const T* b, T* rm, T* rv,  \
                                     T* sm, T* si, int64_t batch, int64_t channels, int64_t hw, \
                                     double eps, double momentum, stream_handle st) {          \
    forward_train(x, y, w, b, rm, rv, sm, si, batch, channels, hw, eps, momentum, st);         \
  }                                                                                            \
  void batch_norm_forward_eval_cuda(const T* x, T* y, const T* w, const T* b, const T* rm,    \
                                    const T* rv, int64_t batch, int64_t channels, int64_t hw,  \
                                    double eps, stream_handle st) {                            \
    forward_eval(x, y, w, b, rm, rv, batch, channels, hw, eps, st);                            \
  }                                                                                            \
  void batch_norm_backward_train_cuda(const T* x, const T* dy, const T* w, const T* sm,       \
                                      const T* si, T* dx, T* dw, T* db, int64_t batch,         \
                                      int64_t channels, int64_t hw, stream_handle st) {        \
    backward_train(x, dy, w, sm, si, dx, dw, db, batch, channels, hw, st);                     \
  }
PYDL_BN_INSTANTIATE(float)
PYDL_BN_INSTANTIATE(double)
#undef PYDL_BN_INSTANTIATE

}  // namespace pydl::cuda
