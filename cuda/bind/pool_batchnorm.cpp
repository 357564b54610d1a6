// Bindings of the CUDA pooling and batch-norm kernels.
#include <string>

#include "bindings.h"
#include "kernels.h"

namespace py = pybind11;

namespace pydl::cuda::bind {
namespace {

using u = std::uintptr_t;

Pool2dParams pool_params(int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
                         int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                         int64_t dh, int64_t dw) {
  return Pool2dParams{planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw};
}

#define PYDL_POOL_ARGS                                                                         \
  py::arg("planes"), py::arg("height"), py::arg("width"), py::arg("out_height"),              \
      py::arg("out_width"), py::arg("kernel_h"), py::arg("kernel_w"), py::arg("stride_h"),     \
      py::arg("stride_w"), py::arg("pad_h"), py::arg("pad_w")

template <class T>
void bind_dtype(py::module_& m, const std::string& sfx) {
  m.def(("max_pool2d_forward_" + sfx).c_str(),
        [](u x, u y, u idx, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
           int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
           int64_t dw, u stream) {
          py::gil_scoped_release release;
          max_pool2d_forward_cuda(pool_params(planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw),
                                  ptr<const T>(x), ptr<T>(y), ptr<int64_t>(idx), stream);
        },
        py::arg("x"), py::arg("y"), py::arg("indices"), PYDL_POOL_ARGS, py::arg("dilation_h"),
        py::arg("dilation_w"), py::arg("stream"));
  m.def(("max_pool2d_backward_" + sfx).c_str(),
        [](u dy, u idx, u dx, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow,
           int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
           int64_t dw, u stream) {
          py::gil_scoped_release release;
          max_pool2d_backward_cuda(
              pool_params(planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw), ptr<const T>(dy),
              ptr<const int64_t>(idx), ptr<T>(dx), stream);
        },
        py::arg("grad_output"), py::arg("indices"), py::arg("grad_input"), PYDL_POOL_ARGS,
        py::arg("dilation_h"), py::arg("dilation_w"), py::arg("stream"));
  m.def(("avg_pool2d_forward_" + sfx).c_str(),
        [](u x, u y, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t kh,
           int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, bool include_pad,
           int64_t divisor, u stream) {
          py::gil_scoped_release release;
          avg_pool2d_forward_cuda(pool_params(planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, 1, 1),
                                  ptr<const T>(x), ptr<T>(y), include_pad, divisor, stream);
        },
        py::arg("x"), py::arg("y"), PYDL_POOL_ARGS, py::arg("count_include_pad"),
        py::arg("divisor_override"), py::arg("stream"));
  m.def(("avg_pool2d_backward_" + sfx).c_str(),
        [](u dy, u dx, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow, int64_t kh,
           int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, bool include_pad,
           int64_t divisor, u stream) {
          py::gil_scoped_release release;
          avg_pool2d_backward_cuda(pool_params(planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, 1, 1),
                                   ptr<const T>(dy), ptr<T>(dx), include_pad, divisor, stream);
        },
        py::arg("grad_output"), py::arg("grad_input"), PYDL_POOL_ARGS,
        py::arg("count_include_pad"), py::arg("divisor_override"), py::arg("stream"));

  m.def(("batch_norm_forward_train_" + sfx).c_str(),
        [](u x, u y, u w, u b, u rm, u rv, u sm, u si, int64_t batch, int64_t channels,
           int64_t hw, double eps, double momentum, u stream) {
          py::gil_scoped_release release;
          batch_norm_forward_train_cuda(ptr<const T>(x), ptr<T>(y), ptr<const T>(w),
                                        ptr<const T>(b), ptr<T>(rm), ptr<T>(rv), ptr<T>(sm),
                                        ptr<T>(si), batch, channels, hw, eps, momentum, stream);
        },
        py::arg("x"), py::arg("y"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"),
        py::arg("running_var"), py::arg("save_mean"), py::arg("save_invstd"), py::arg("batch"),
        py::arg("channels"), py::arg("hw"), py::arg("eps"), py::arg("momentum"),
        py::arg("stream"), "Training batch norm: statistics, running update and normalise");
  m.def(("batch_norm_forward_eval_" + sfx).c_str(),
        [](u x, u y, u w, u b, u rm, u rv, int64_t batch, int64_t channels, int64_t hw,
           double eps, u stream) {
          py::gil_scoped_release release;
          batch_norm_forward_eval_cuda(ptr<const T>(x), ptr<T>(y), ptr<const T>(w),
                                       ptr<const T>(b), ptr<const T>(rm), ptr<const T>(rv),
                                       batch, channels, hw, eps, stream);
        },
        py::arg("x"), py::arg("y"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"),
        py::arg("running_var"), py::arg("batch"), py::arg("channels"), py::arg("hw"),
        py::arg("eps"), py::arg("stream"));
  m.def(("batch_norm_backward_train_" + sfx).c_str(),
        [](u x, u dy, u w, u sm, u si, u dx, u dw, u db, int64_t batch, int64_t channels,
           int64_t hw, u stream) {
          py::gil_scoped_release release;
          batch_norm_backward_train_cuda(ptr<const T>(x), ptr<const T>(dy), ptr<const T>(w),
                                         ptr<const T>(sm), ptr<const T>(si), ptr<T>(dx),
                                         ptr<T>(dw), ptr<T>(db), batch, channels, hw, stream);
        },
        py::arg("x"), py::arg("grad_output"), py::arg("weight"), py::arg("save_mean"),
        py::arg("save_invstd"), py::arg("grad_input"), py::arg("grad_weight"),
        py::arg("grad_bias"), py::arg("batch"), py::arg("channels"), py::arg("hw"),
        py::arg("stream"));
}

}  // namespace

void bind_pool_batchnorm(py::module_& m) {
  bind_dtype<float>(m, "f32");
  bind_dtype<double>(m, "f64");
}

}  // namespace pydl::cuda::bind
