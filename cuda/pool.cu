// Pooling launchers: geometry checks and 1-D grid-stride launches. Device code: pool.cuh.
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "pool.cuh"

namespace pydl::cuda {
namespace {

constexpr int kPoolThreads = 256;

Pool2dShape checked(const char* name, const Pool2dParams& p, bool check_dilated_pad) {
  auto bad = [&](const std::string& what) {
    throw std::invalid_argument(
        std::string(name) + ": " + what + " (input " + std::to_string(p.planes) + " planes of " +
        std::to_string(p.h) + "x" + std::to_string(p.w) + ", output " + std::to_string(p.oh) +
        "x" + std::to_string(p.ow) + ", kernel " + std::to_string(p.kh) + "x" +
        std::to_string(p.kw) + ", stride " + std::to_string(p.sh) + "x" + std::to_string(p.sw) +
        ", padding " + std::to_string(p.ph) + "x" + std::to_string(p.pw) + ")");
  };
  const int64_t int_max = std::numeric_limits<int>::max() / 4;
  if (p.planes < 0 || p.h < 1 || p.w < 1 || p.oh < 1 || p.ow < 1) bad("empty spatial size");
  if (p.kh < 1 || p.kw < 1 || p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1)
    bad("kernel size, stride and dilation must be >= 1");
  if (p.ph < 0 || p.pw < 0 || 2 * p.ph > p.kh || 2 * p.pw > p.kw)
    bad("padding must be between 0 and half the kernel size");
  if (p.h > int_max || p.w > int_max || p.oh > int_max || p.ow > int_max ||
      p.kh * p.dh > int_max || p.kw * p.dw > int_max)
    bad("spatial sizes must stay below 2^29");
  // Every window must start inside the input or its left padding (PyTorch's output size rule).
  if ((p.oh - 1) * p.sh - p.ph >= p.h || (p.ow - 1) * p.sw - p.pw >= p.w)
    bad("output size too large: its last window starts past the input");
  (void)check_dilated_pad;
  return Pool2dShape{p.planes,
                     static_cast<int>(p.h),  static_cast<int>(p.w),  static_cast<int>(p.oh),
                     static_cast<int>(p.ow), static_cast<int>(p.kh), static_cast<int>(p.kw),
                     static_cast<int>(p.sh), static_cast<int>(p.sw), static_cast<int>(p.ph),
                     static_cast<int>(p.pw), static_cast<int>(p.dh), static_cast<int>(p.dw)};
}

dim3 grid_for(index_t total) { return dim3(grid_1d(ceil_div(total, kPoolThreads))); }

cudaStream_t as_stream(stream_handle s) { return reinterpret_cast<cudaStream_t>(s); }

template <class T>
void max_forward(const Pool2dParams& p, const T* x, T* y, int64_t* idx, stream_handle st) {
  const char* name = "max_pool2d_forward_cuda";
  const Pool2dShape s = checked(name, p, true);
  const index_t total = s.planes * s.oh * s.ow;
  if (total == 0) return;
  launch_kernel(name, max_pool2d_forward_kernel<T>, grid_for(total), dim3(kPoolThreads),
                as_stream(st), x, y, idx, s);
}

template <class T>
void max_backward(const Pool2dParams& p, const T* dy, const int64_t* idx, T* dx,
                  stream_handle st) {
  const char* name = "max_pool2d_backward_cuda";
  const Pool2dShape s = checked(name, p, true);
  const index_t total = s.planes * s.h * s.w;
  if (total == 0) return;
  launch_kernel(name, max_pool2d_backward_kernel<T>, grid_for(total), dim3(kPoolThreads),
                as_stream(st), dy, idx, dx, s);
}

int checked_divisor(const char* name, int64_t d) {
  if (d < 0 || d > std::numeric_limits<int>::max())
    throw std::invalid_argument(std::string(name) + ": divisor_override must be positive, got " +
                                std::to_string(d));
  return static_cast<int>(d);
}

template <class T>
void avg_forward(const Pool2dParams& p, const T* x, T* y, bool include_pad, int64_t divisor,
                 stream_handle st) {
  const char* name = "avg_pool2d_forward_cuda";
  Pool2dParams q = p;
  q.dh = q.dw = 1;
  const Pool2dShape s = checked(name, q, false);
  const int d = checked_divisor(name, divisor);
  const index_t total = s.planes * s.oh * s.ow;
  if (total == 0) return;
  launch_kernel(name, avg_pool2d_forward_kernel<T>, grid_for(total), dim3(kPoolThreads),
                as_stream(st), x, y, s, include_pad, d);
}

template <class T>
void avg_backward(const Pool2dParams& p, const T* dy, T* dx, bool include_pad, int64_t divisor,
                  stream_handle st) {
  const char* name = "avg_pool2d_backward_cuda";
  Pool2dParams q = p;
  q.dh = q.dw = 1;
  const Pool2dShape s = checked(name, q, false);
  const int d = checked_divisor(name, divisor);
  const index_t total = s.planes * s.h * s.w;
  if (total == 0) return;
  launch_kernel(name, avg_pool2d_backward_kernel<T>, grid_for(total), dim3(kPoolThreads),
                as_stream(st), dy, dx, s, include_pad, d);
}

}  // namespace

void max_pool2d_forward_cuda(const Pool2dParams& p, const float* x, float* y, int64_t* indices,
                             stream_handle stream) {
  max_forward(p, x, y, indices, stream);
}
void max_pool2d_forward_cuda(const Pool2dParams& p, const double* x, double* y, int64_t* indices,
                             stream_handle stream) {
  max_forward(p, x, y, indices, stream);
}
void max_pool2d_backward_cuda(const Pool2dParams& p, const float* dy, const int64_t* indices,
                              float* dx, stream_handle stream) {
  max_backward(p, dy, indices, dx, stream);
}
void max_pool2d_backward_cuda(const Pool2dParams& p, const double* dy, const int64_t* indices,
                              double* dx, stream_handle stream) {
  max_backward(p, dy, indices, dx, stream);
}
void avg_pool2d_forward_cuda(const Pool2dParams& p, const float* x, float* y,
                             bool count_include_pad, int64_t divisor_override,
                             stream_handle stream) {
  avg_forward(p, x, y, count_include_pad, divisor_override, stream);
}
void avg_pool2d_forward_cuda(const Pool2dParams& p, const double* x, double* y,
                             bool count_include_pad, int64_t divisor_override,
                             stream_handle stream) {
  avg_forward(p, x, y, count_include_pad, divisor_override, stream);
}
void avg_pool2d_backward_cuda(const Pool2dParams& p, const float* dy, float* dx,
                              bool count_include_pad, int64_t divisor_override,
                              stream_handle stream) {
  avg_backward(p, dy, dx, count_include_pad, divisor_override, stream);
}
void avg_pool2d_backward_cuda(const Pool2dParams& p, const double* dy, double* dx,
                              bool count_include_pad, int64_t divisor_override,
                              stream_handle stream) {
  avg_backward(p, dy, dx, count_include_pad, divisor_override, stream);
}

}  // namespace pydl::cuda
