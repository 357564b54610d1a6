// pydl._C convolution kernels: argument checks, dtype dispatch (float32/float64), GIL release.
// Shapes and PyTorch-style argument handling live in pydl/ops/conv.py; these functions check
// again what the kernels rely on, so a wrong call raises instead of reading out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <array>
#include <optional>
#include <stdexcept>
#include <string>

#include "bindings.h"
#include "host_array.h"
#include "conv.h"

namespace py = pybind11;

namespace pydl::bind {
namespace {

using Pair = std::array<int64_t, 2>;

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// float32 -> false, float64 -> true; anything else is a TypeError naming the argument.
bool is_double(const py::array& a, const char* what) {
  if (a.dtype().is(py::dtype::of<float>())) return false;
  if (a.dtype().is(py::dtype::of<double>())) return true;
  throw py::type_error(std::string("conv2d: ") + what + " must be float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

void same_dtype(const py::array& a, const py::array& b, const char* an, const char* bn) {
  if (!a.dtype().is(b.dtype()))
    throw py::type_error(std::string("conv2d: ") + an + " (" + std::string(py::str(a.dtype())) +
                         ") and " + bn + " (" + std::string(py::str(b.dtype())) +
                         ") must have the same dtype");
}

void need_ndim(const py::array& a, int nd, const char* what) {
  if (a.ndim() != nd)
    throw std::invalid_argument(std::string("conv2d: ") + what + " must be " +
                                std::to_string(nd) + "-d, got shape " + shape_str(a));
}

Conv2dShape shape_from(int64_t N, int64_t C, int64_t H, int64_t W, const py::array& w, Pair stride,
                       Pair padding, Pair dilation, int64_t groups, int64_t oh = -1,
                       int64_t ow = -1) {
  return make_conv2d_shape(N, C, H, W, w.shape(0), w.shape(1), w.shape(2), w.shape(3), stride[0],
                           stride[1], padding[0], padding[1], dilation[0], dilation[1], groups,
                           oh, ow);
}

template <typename T>
py::array forward_impl(const py::array& x_in, const py::array& w_in,
                       const std::optional<py::array>& b_in, const Conv2dShape& s) {
  CArray<T> x(x_in), w(w_in);
  std::optional<CArray<T>> b;
  if (b_in) b = CArray<T>(*b_in);
  CArray<T> y = empty_array<T, kCStyle>({s.N, s.K, s.OH, s.OW});
  const T* xp = x.data();
  const T* wp = w.data();
  const T* bp = b ? b->data() : nullptr;
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    conv2d_forward_cpu<T>(s, xp, wp, bp, yp);
  }
  return y;
}

py::array conv2d_forward(const py::array& x, const py::array& w, const std::optional<py::array>& b,
                         Pair stride, Pair padding, Pair dilation, int64_t groups) {
  need_ndim(x, 4, "input");
  need_ndim(w, 4, "weight");
  const bool dbl = is_double(x, "input");
  same_dtype(x, w, "input", "weight");
  if (b) {
    same_dtype(x, *b, "input", "bias");
    if (b->ndim() != 1 || b->shape(0) != w.shape(0))
      throw std::invalid_argument("conv2d: bias must have shape (" + std::to_string(w.shape(0)) +
                                  ",), got " + shape_str(*b));
  }
  Conv2dShape s = shape_from(x.shape(0), x.shape(1), x.shape(2), x.shape(3), w, stride, padding,
                             dilation, groups);
  return dbl ? forward_impl<double>(x, w, b, s) : forward_impl<float>(x, w, b, s);
}

template <typename T>
py::array backward_input_impl(const py::array& dy_in, const py::array& w_in, const Conv2dShape& s) {
  CArray<T> dy(dy_in), w(w_in);
  CArray<T> dx = empty_array<T, kCStyle>({s.N, s.C, s.H, s.W});
  const T* dyp = dy.data();
  const T* wp = w.data();
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release release;
    conv2d_backward_input_cpu<T>(s, dyp, wp, dxp);
  }
  return dx;
}

// dx for an input of spatial size input_hw; dy's spatial size may be smaller than the natural
// output size (transposed convolution with output_padding uses that).
py::array conv2d_backward_input(const py::array& dy, const py::array& w, Pair input_hw, Pair stride,
                                Pair padding, Pair dilation, int64_t groups) {
  need_ndim(dy, 4, "grad_output");
  need_ndim(w, 4, "weight");
  const bool dbl = is_double(dy, "grad_output");
  same_dtype(dy, w, "grad_output", "weight");
  if (dy.shape(1) != w.shape(0))
    throw std::invalid_argument("conv2d: grad_output " + shape_str(dy) + " has " +
                                std::to_string(dy.shape(1)) + " channels but weight " +
                                shape_str(w) + " has " + std::to_string(w.shape(0)) + " filters");
  Conv2dShape s = shape_from(dy.shape(0), w.shape(1) * groups, input_hw[0], input_hw[1], w, stride,
                             padding, dilation, groups, dy.shape(2), dy.shape(3));
  return dbl ? backward_input_impl<double>(dy, w, s) : backward_input_impl<float>(dy, w, s);
}

template <typename T>
py::tuple backward_weight_impl(const py::array& x_in, const py::array& dy_in, const Conv2dShape& s,
                               bool bias_grad) {
  CArray<T> x(x_in), dy(dy_in);
  CArray<T> dw({s.K, s.Cg(), s.R, s.S});
  std::optional<CArray<T>> db;
  if (bias_grad) db = CArray<T>({s.K});
  const T* xp = x.data();
  const T* dyp = dy.data();
  T* dwp = dw.mutable_data();
  T* dbp = db ? db->mutable_data() : nullptr;
  {
    py::gil_scoped_release release;
    conv2d_backward_weight_cpu<T>(s, xp, dyp, dwp, dbp);
  }
  return py::make_tuple(dw, db ? py::object(*db) : py::object(py::none()));
}

py::tuple conv2d_backward_weight(const py::array& x, const py::array& dy, Pair kernel_size,
                                 Pair stride, Pair padding, Pair dilation, int64_t groups,
                                 bool bias_grad) {
  need_ndim(x, 4, "input");
  need_ndim(dy, 4, "grad_output");
  const bool dbl = is_double(x, "input");
  same_dtype(x, dy, "input", "grad_output");
  if (dy.shape(0) != x.shape(0))
    throw std::invalid_argument("conv2d: grad_output " + shape_str(dy) + " and input " +
                                shape_str(x) + " have different batch sizes");
  if (groups < 1 || x.shape(1) % groups != 0)
    throw std::invalid_argument("conv2d: in_channels (" + std::to_string(x.shape(1)) +
                                ") must be divisible by groups (" + std::to_string(groups) + ")");
  Conv2dShape s = make_conv2d_shape(x.shape(0), x.shape(1), x.shape(2), x.shape(3), dy.shape(1),
                                    x.shape(1) / groups, kernel_size[0], kernel_size[1], stride[0],
                                    stride[1], padding[0], padding[1], dilation[0], dilation[1],
                                    groups, dy.shape(2), dy.shape(3));
  return dbl ? backward_weight_impl<double>(x, dy, s, bias_grad)
             : backward_weight_impl<float>(x, dy, s, bias_grad);
}

template <typename T>
py::tuple backward_impl(const py::array& x_in, const py::array& dy_in, const py::array& w_in,
                        const Conv2dShape& s, bool bias_grad) {
  CArray<T> x(x_in), dy(dy_in), w(w_in);
  CArray<T> dx = empty_array<T, kCStyle>({s.N, s.C, s.H, s.W});
  CArray<T> dw({s.K, s.Cg(), s.R, s.S});
  std::optional<CArray<T>> db;
  if (bias_grad) db = CArray<T>({s.K});
  const T* xp = x.data();
  const T* dyp = dy.data();
  const T* wp = w.data();
  T* dxp = dx.mutable_data();
  T* dwp = dw.mutable_data();
  T* dbp = db ? db->mutable_data() : nullptr;
  {
    py::gil_scoped_release release;
    conv2d_backward_cpu<T>(s, xp, dyp, wp, dxp, dwp, dbp);
  }
  return py::make_tuple(dx, dw, db ? py::object(*db) : py::object(py::none()));
}

// dx, dw and (when bias_grad) db of one conv2d in one call: (dx, dw, db or None).
py::tuple conv2d_backward(const py::array& x, const py::array& dy, const py::array& w,
                          Pair stride, Pair padding, Pair dilation, int64_t groups,
                          bool bias_grad) {
  need_ndim(x, 4, "input");
  need_ndim(dy, 4, "grad_output");
  need_ndim(w, 4, "weight");
  const bool dbl = is_double(x, "input");
  same_dtype(x, dy, "input", "grad_output");
  same_dtype(x, w, "input", "weight");
  if (dy.shape(0) != x.shape(0) || dy.shape(1) != w.shape(0))
    throw std::invalid_argument("conv2d: grad_output " + shape_str(dy) + " does not match input " +
                                shape_str(x) + " and weight " + shape_str(w));
  Conv2dShape s = shape_from(x.shape(0), x.shape(1), x.shape(2), x.shape(3), w, stride, padding,
                             dilation, groups, dy.shape(2), dy.shape(3));
  return dbl ? backward_impl<double>(x, dy, w, s, bias_grad)
             : backward_impl<float>(x, dy, w, s, bias_grad);
}

int64_t conv2d_column_buffer_bytes_py(std::array<int64_t, 4> x_shape,
                                      std::array<int64_t, 4> w_shape, Pair stride, Pair padding,
                                      Pair dilation, int64_t groups, int64_t itemsize) {
  Conv2dShape s = make_conv2d_shape(x_shape[0], x_shape[1], x_shape[2], x_shape[3], w_shape[0],
                                    w_shape[1], w_shape[2], w_shape[3], stride[0], stride[1],
                                    padding[0], padding[1], dilation[0], dilation[1], groups);
  return conv2d_column_buffer_bytes(s, itemsize);
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d_forward", &conv2d_forward, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        "Cross-correlation y = conv(x (N,C,H,W), w (K,C/groups,R,S)) + bias; returns (N,K,OH,OW)");
  m.def("conv2d_backward_input", &conv2d_backward_input, py::arg("grad_output"), py::arg("weight"),
        py::arg("input_hw"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), "Gradient of conv2d with respect to its input, shape (N, C, *input_hw)");
  m.def("conv2d_backward_weight", &conv2d_backward_weight, py::arg("input"),
        py::arg("grad_output"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("groups"), py::arg("bias_grad"),
        "Gradients of conv2d with respect to weight and (when bias_grad) bias: (dw, db or None)");
  m.def("conv2d_backward", &conv2d_backward, py::arg("input"), py::arg("grad_output"),
        py::arg("weight"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("bias_grad"),
        "Gradients of conv2d with respect to input, weight and (when bias_grad) bias in one call: "
        "(dx, dw, db or None)");
  m.def("conv2d_column_buffer_bytes", &conv2d_column_buffer_bytes_py, py::arg("input_shape"),
        py::arg("weight_shape"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("itemsize"),
        "Most bytes of column buffer one conv2d kernel call allocates (all threads together)");
}

}  // namespace pydl::bind
