// Bindings of the CUDA convolution passes (forward, backward-data, backward-weight).
#include "bindings.h"
#include "kernels.h"

namespace py = pybind11;

namespace pydl::cuda::bind {
namespace {

Conv2dParams params(int64_t batch, int64_t cin, int64_t h, int64_t w, int64_t cout, int64_t kh,
                    int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                    int64_t dw, int64_t groups) {
  return Conv2dParams{batch, cin, h, w, cout, kh, kw, sh, sw, ph, pw, dh, dw, groups};
}

// Python signature shared by the three passes: buffers first, then the geometry.
#define PYDL_CONV_GEOMETRY_ARGS                                                               \
  py::arg("batch"), py::arg("in_channels"), py::arg("height"), py::arg("width"),              \
      py::arg("out_channels"), py::arg("kernel_h"), py::arg("kernel_w"), py::arg("stride_h"), \
      py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w"), py::arg("dilation_h"),         \
      py::arg("dilation_w"), py::arg("groups"), py::arg("stream")

template <class T>
void bind_dtype(py::module_& m, const char* suffix) {
  using std::string;
  m.def(
      (string("conv2d_forward_") + suffix).c_str(),
      [](std::uintptr_t x, std::uintptr_t w, std::uintptr_t bias, std::uintptr_t y, int64_t n,
         int64_t ci, int64_t h, int64_t wd, int64_t co, int64_t kh, int64_t kw, int64_t sh,
         int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t g,
         std::uintptr_t stream) {
        py::gil_scoped_release release;
        conv2d_forward_cuda(params(n, ci, h, wd, co, kh, kw, sh, sw, ph, pw, dh, dw, g),
                            ptr<const T>(x), ptr<const T>(w), ptr<const T>(bias), ptr<T>(y),
                            stream);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("y"), PYDL_CONV_GEOMETRY_ARGS,
      "y = conv2d(x, weight) + bias (bias 0 = none), NCHW, implicit GEMM");
  m.def(
      (string("conv2d_backward_data_") + suffix).c_str(),
      [](std::uintptr_t dy, std::uintptr_t w, std::uintptr_t dx, int64_t n, int64_t ci, int64_t h,
         int64_t wd, int64_t co, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
         int64_t pw, int64_t dh, int64_t dw, int64_t g, std::uintptr_t stream) {
        py::gil_scoped_release release;
        conv2d_backward_data_cuda(params(n, ci, h, wd, co, kh, kw, sh, sw, ph, pw, dh, dw, g),
                                  ptr<const T>(dy), ptr<const T>(w), ptr<T>(dx), stream);
      },
      py::arg("grad_output"), py::arg("weight"), py::arg("grad_input"), PYDL_CONV_GEOMETRY_ARGS,
      "grad_input of conv2d (overwritten), implicit GEMM");
  m.def(
      (string("conv2d_backward_weight_") + suffix).c_str(),
      [](std::uintptr_t x, std::uintptr_t dy, std::uintptr_t dw_out, int64_t n, int64_t ci,
         int64_t h, int64_t wd, int64_t co, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
         int64_t ph, int64_t pw, int64_t dh, int64_t dw, int64_t g, std::uintptr_t stream) {
        py::gil_scoped_release release;
        conv2d_backward_weight_cuda(params(n, ci, h, wd, co, kh, kw, sh, sw, ph, pw, dh, dw, g),
                                    ptr<const T>(x), ptr<const T>(dy), ptr<T>(dw_out), stream);
      },
      py::arg("x"), py::arg("grad_output"), py::arg("grad_weight"), PYDL_CONV_GEOMETRY_ARGS,
      "grad_weight of conv2d (overwritten), implicit GEMM with split K");
}

}  // namespace

void bind_conv(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}

}  // namespace pydl::cuda::bind
