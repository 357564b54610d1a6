// Convolution launchers: geometry checks, the implicit-GEMM problem for each pass, grid shape
// and (backward-weight) the split of K over blockIdx.z. Device code: conv.cuh.
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "conv.cuh"
#include "kernels.h"

namespace pydl::cuda {
namespace {

// Blocks that keep an H100 (132 SMs, 2+ resident blocks each) busy; split-K aims for this.
constexpr index_t kTargetBlocks = 264;

Conv2dShape checked_shape(const char* name, const Conv2dParams& p) {
  auto bad = [&](const std::string& what) {
    throw std::invalid_argument(
        std::string(name) + ": " + what + " (x " + std::to_string(p.batch) + "x" +
        std::to_string(p.cin) + "x" + std::to_string(p.h) + "x" + std::to_string(p.w) +
        ", weight " + std::to_string(p.cout) + "x" +
        std::to_string(p.groups > 0 ? p.cin / p.groups : 0) + "x" + std::to_string(p.kh) + "x" +
        std::to_string(p.kw) + ", stride " + std::to_string(p.sh) + "x" + std::to_string(p.sw) +
        ", padding " + std::to_string(p.ph) + "x" + std::to_string(p.pw) + ", dilation " +
        std::to_string(p.dh) + "x" + std::to_string(p.dw) + ", groups " +
        std::to_string(p.groups) + ")");
  };
  if (p.batch < 0 || p.cin < 1 || p.h < 0 || p.w < 0 || p.cout < 1 || p.kh < 1 || p.kw < 1)
    bad("sizes must be positive");
  if (p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 || p.ph < 0 || p.pw < 0)
    bad("stride and dilation must be >= 1, padding >= 0");
  if (p.groups < 1 || p.groups > 65535 || p.cin % p.groups || p.cout % p.groups)
    bad("in_channels and out_channels must be divisible by groups (1..65535)");
  const int64_t int_max = std::numeric_limits<int>::max();
  if (p.h + 2 * p.ph > int_max / 2 || p.w + 2 * p.pw > int_max / 2 || p.kh * p.kw > int_max ||
      (p.cin / p.groups) * p.kh * p.kw > int_max || (p.cout / p.groups) * p.kh * p.kw > int_max)
    bad("spatial sizes and the reduction length per group must stay below 2^31");
  if (p.out_h() < 1 || p.out_w() < 1) bad("the kernel (dilated) is larger than the padded input");
  Conv2dShape s;
  s.batch = p.batch;
  s.cin = p.cin;
  s.h = p.h;
  s.w = p.w;
  s.cout = p.cout;
  s.oh = p.out_h();
  s.ow = p.out_w();
  s.kh = static_cast<int>(p.kh);
  s.kw = static_cast<int>(p.kw);
  s.sh = static_cast<int>(p.sh);
  s.sw = static_cast<int>(p.sw);
  s.ph = static_cast<int>(p.ph);
  s.pw = static_cast<int>(p.pw);
  s.dh = static_cast<int>(p.dh);
  s.dw = static_cast<int>(p.dw);
  s.groups = static_cast<int>(p.groups);
  return s;
}

template <class P>
void launch_igemm(const char* name, const P& prob, index_t splits, stream_handle stream) {
  const dim3 grid(static_cast<unsigned>(ceil_div(prob.N, igemm::BN)),
                  static_cast<unsigned>(ceil_div(prob.M, igemm::BM)),
                  static_cast<unsigned>(prob.s.groups * splits));
  launch_kernel(name, implicit_gemm_kernel<P>, grid, dim3(igemm::kThreads),
                reinterpret_cast<cudaStream_t>(stream), prob);
}

template <class T>
void forward(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y,
             stream_handle stream) {
  const char* name = "conv2d_forward_cuda";
  const Conv2dShape s = checked_shape(name, p);
  Conv2dForwardProblem<T> prob{x, w, bias, y, s, s.cout / s.groups, s.batch * s.oh * s.ow,
                               static_cast<int>(s.cin / s.groups * s.kh * s.kw), 0};
  prob.k_per_split = prob.K;
  if (prob.N == 0) return;
  launch_igemm(name, prob, 1, stream);
}

template <class T>
void backward_data(const Conv2dParams& p, const T* dy, const T* w, T* dx, stream_handle stream) {
  const char* name = "conv2d_backward_data_cuda";
  const Conv2dShape s = checked_shape(name, p);
  Conv2dBackwardDataProblem<T> prob{dy, w, dx, s, s.cin / s.groups, s.batch * s.h * s.w,
                                    static_cast<int>(s.cout / s.groups * s.kh * s.kw), 0};
  prob.k_per_split = prob.K;
  if (prob.N == 0) return;
  launch_igemm(name, prob, 1, stream);
}

template <class T>
void backward_weight(const Conv2dParams& p, const T* x, const T* dy, T* dw,
                     stream_handle stream) {
  const char* name = "conv2d_backward_weight_cuda";
  const Conv2dShape s = checked_shape(name, p);
  Conv2dBackwardWeightProblem<T> prob{x, dy, dw, s, s.cout / s.groups,
                                      s.cin / s.groups * s.kh * s.kw, s.batch * s.oh * s.ow,
                                      0, false};
  const index_t weight_elems = s.cout * prob.N;
  const cudaStream_t st = reinterpret_cast<cudaStream_t>(stream);
  if (prob.K == 0) {  // empty batch: the gradient is zero
    cudaMemsetAsync(dw, 0, weight_elems * sizeof(T), st);
    check_launch(name);
    return;
  }
  // The reduction (batch * OH * OW) is long and the output small: split it over blockIdx.z so
  // that enough blocks run, each slice at least 32 BK-steps long.
  const index_t tiles = ceil_div(prob.M, igemm::BM) * ceil_div(prob.N, igemm::BN) * s.groups;
  index_t splits = std::max<index_t>(1, ceil_div(kTargetBlocks, tiles));
  splits = std::min<index_t>(splits, std::max<index_t>(1, prob.K / (32 * igemm::BK)));
  splits = std::min<index_t>(splits, 65535 / s.groups);
  prob.k_per_split = ceil_div(ceil_div(prob.K, splits), igemm::BK) * igemm::BK;
  splits = ceil_div(prob.K, prob.k_per_split);
  prob.accumulate = splits > 1;
  if (prob.accumulate) {
    cudaMemsetAsync(dw, 0, weight_elems * sizeof(T), st);
    check_launch(name);
  }
  launch_igemm(name, prob, splits, stream);
}

}  // namespace

void conv2d_forward_cuda(const Conv2dParams& p, const float* x, const float* weight,
                         const float* bias, float* y, stream_handle stream) {
  forward(p, x, weight, bias, y, stream);
}
void conv2d_forward_cuda(const Conv2dParams& p, const double* x, const double* weight,
                         const double* bias, double* y, stream_handle stream) {
  forward(p, x, weight, bias, y, stream);
}
void conv2d_backward_data_cuda(const Conv2dParams& p, const float* grad_output,
                               const float* weight, float* grad_input, stream_handle stream) {
  backward_data(p, grad_output, weight, grad_input, stream);
}
void conv2d_backward_data_cuda(const Conv2dParams& p, const double* grad_output,
                               const double* weight, double* grad_input, stream_handle stream) {
  backward_data(p, grad_output, weight, grad_input, stream);
}
void conv2d_backward_weight_cuda(const Conv2dParams& p, const float* x, const float* grad_output,
                                 float* grad_weight, stream_handle stream) {
  backward_weight(p, x, grad_output, grad_weight, stream);
}
void conv2d_backward_weight_cuda(const Conv2dParams& p, const double* x,
                                 const double* grad_output, double* grad_weight,
                                 stream_handle stream) {
  backward_weight(p, x, grad_output, grad_weight, stream);
}

}  // namespace pydl::cuda
