// pydl._C pooling kernels: argument checks, dtype dispatch (float32/float64), GIL release.
// Arrays are (..., H, W): every leading dimension is a plane. Output sizes (PyTorch's formulas
// with ceil_mode) are computed in pydl/ops/pool.py and passed in.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.h"
#include "host_array.h"
#include "pool.h"

namespace py = pybind11;

namespace pydl::bind {
namespace {

using Pair = std::array<int64_t, 2>;

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;
using Index = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using Taps = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

bool is_double(const py::array& a, const char* op) {
  if (a.dtype().is(py::dtype::of<float>())) return false;
  if (a.dtype().is(py::dtype::of<double>())) return true;
  throw py::type_error(std::string(op) + ": input must be float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

// Leading dimensions of a (..., H, W) array with the last two replaced by hw.
std::vector<py::ssize_t> with_hw(const py::array& a, Pair hw, const char* op) {
  if (a.ndim() < 2)
    throw std::invalid_argument(std::string(op) + ": expected an array with at least 2 dimensions");
  std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
  shape[a.ndim() - 2] = hw[0];
  shape[a.ndim() - 1] = hw[1];
  return shape;
}

int64_t planes_of(const py::array& a) {
  int64_t p = 1;
  for (py::ssize_t i = 0; i + 2 < a.ndim(); ++i) p *= a.shape(i);
  return p;
}

Pool2dShape make_shape(const py::array& in, const py::array& out, Pair kernel, Pair stride,
                       Pair padding, Pair dilation) {
  Pool2dShape s;
  s.planes = planes_of(in);
  s.H = in.shape(in.ndim() - 2), s.W = in.shape(in.ndim() - 1);
  s.OH = out.shape(out.ndim() - 2), s.OW = out.shape(out.ndim() - 1);
  s.kernel_h = kernel[0], s.kernel_w = kernel[1];
  s.stride_h = stride[0], s.stride_w = stride[1];
  s.pad_h = padding[0], s.pad_w = padding[1];
  s.dil_h = dilation[0], s.dil_w = dilation[1];
  check_pool2d_shape(s);
  return s;
}

void same_planes(const py::array& a, const py::array& b, const char* op) {
  if (a.ndim() != b.ndim() || planes_of(a) != planes_of(b))
    throw std::invalid_argument(std::string(op) + ": gradient and input have different leading "
                                "dimensions");
}

// What max_pool2d_forward returns next to the values: PyTorch's int64 flat indices, the one-byte
// window taps that max_pool2d_backward_taps takes, or nothing (forward only).
enum class Argmax { kInt64, kTaps, kNone };

Argmax parse_argmax(const std::string& kind) {
  if (kind == "int64") return Argmax::kInt64;
  if (kind == "taps") return Argmax::kTaps;
  if (kind == "none") return Argmax::kNone;
  throw std::invalid_argument("max_pool2d: indices must be 'int64', 'taps' or 'none', got '" +
                              kind + "'");
}

template <typename T>
py::tuple max_forward_impl(const py::array& x_in, Pair out_hw, Pair k, Pair st, Pair pad, Pair dil,
                           Argmax kind) {
  CArray<T> x(x_in);
  CArray<T> y = empty_array<T, kCStyle>(with_hw(x, out_hw, "max_pool2d"));
  Pool2dShape s = make_shape(x, y, k, st, pad, dil);
  const T* xp = x.data();
  T* yp = y.mutable_data();
  if (kind == Argmax::kInt64) {
    Index idx = empty_array<int64_t, kCStyle>(with_hw(x, out_hw, "max_pool2d"));
    int64_t* ip = idx.mutable_data();
    {
      py::gil_scoped_release release;
      max_pool2d_forward_cpu<T>(s, xp, yp, ip);
    }
    return py::make_tuple(y, idx);
  }
  if (kind == Argmax::kTaps) {
    if (k[0] * k[1] > kMaxPoolTapWindow)
      throw std::invalid_argument("max_pool2d: taps need a window of at most " +
                                  std::to_string(kMaxPoolTapWindow) + " elements");
    Taps taps = empty_array<uint8_t, kCStyle>(with_hw(x, out_hw, "max_pool2d"));
    uint8_t* tp = taps.mutable_data();
    {
      py::gil_scoped_release release;
      max_pool2d_forward_taps_cpu<T>(s, xp, yp, tp);
    }
    return py::make_tuple(y, taps);
  }
  {
    py::gil_scoped_release release;
    max_pool2d_forward_cpu<T>(s, xp, yp, nullptr);
  }
  return py::make_tuple(y, py::none());
}

py::tuple max_pool2d_forward(const py::array& x, Pair kernel, Pair stride, Pair padding,
                             Pair dilation, Pair out_hw, const std::string& indices) {
  with_hw(x, out_hw, "max_pool2d");
  const Argmax kind = parse_argmax(indices);
  return is_double(x, "max_pool2d")
             ? max_forward_impl<double>(x, out_hw, kernel, stride, padding, dilation, kind)
             : max_forward_impl<float>(x, out_hw, kernel, stride, padding, dilation, kind);
}

template <typename T>
py::array max_backward_impl(const py::array& dy_in, const py::array& idx_in, Pair input_hw) {
  CArray<T> dy(dy_in);
  Index idx(idx_in);
  CArray<T> dx = empty_array<T, kCStyle>(with_hw(dy, input_hw, "max_pool2d_backward"));
  Pool2dShape s = make_shape(dx, dy, {1, 1}, {1, 1}, {0, 0}, {1, 1});
  const T* dyp = dy.data();
  const int64_t* ip = idx.data();
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release release;
    max_pool2d_backward_cpu<T>(s, dyp, ip, dxp);
  }
  return dx;
}

py::array max_pool2d_backward(const py::array& dy, const py::array& indices, Pair input_hw) {
  with_hw(dy, input_hw, "max_pool2d_backward");
  // Indices are converted, never cast: float indices would be truncated to wrong positions and
  // uint64 ones could wrap (PyTorch: "expected scalar type Long").
  if (!indices.dtype().is(py::dtype::of<int64_t>()))
    throw py::type_error("max_pool2d_backward: indices must be int64, got " +
                         std::string(py::str(indices.dtype())));
  if (indices.ndim() != dy.ndim() ||
      !std::equal(dy.shape(), dy.shape() + dy.ndim(), indices.shape()))
    throw std::invalid_argument("max_pool2d_backward: indices and grad_output shapes differ");
  return is_double(dy, "max_pool2d_backward") ? max_backward_impl<double>(dy, indices, input_hw)
                                              : max_backward_impl<float>(dy, indices, input_hw);
}

template <typename T>
py::array max_backward_taps_impl(const py::array& dy_in, const py::array& taps_in, Pair input_hw,
                                 Pair k, Pair st, Pair pad, Pair dil) {
  CArray<T> dy(dy_in);
  Taps taps(taps_in);
  CArray<T> dx = empty_array<T, kCStyle>(with_hw(dy, input_hw, "max_pool2d_backward"));
  Pool2dShape s = make_shape(dx, dy, k, st, pad, dil);
  const T* dyp = dy.data();
  const uint8_t* tp = taps.data();
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release release;
    max_pool2d_backward_taps_cpu<T>(s, dyp, tp, dxp);
  }
  return dx;
}

py::array max_pool2d_backward_taps(const py::array& dy, const py::array& taps, Pair input_hw,
                                   Pair kernel, Pair stride, Pair padding, Pair dilation) {
  with_hw(dy, input_hw, "max_pool2d_backward");
  if (!taps.dtype().is(py::dtype::of<uint8_t>()))
    throw py::type_error("max_pool2d_backward: taps must be uint8, got " +
                         std::string(py::str(taps.dtype())));
  if (taps.ndim() != dy.ndim() || !std::equal(dy.shape(), dy.shape() + dy.ndim(), taps.shape()))
    throw std::invalid_argument("max_pool2d_backward: taps and grad_output shapes differ");
  return is_double(dy, "max_pool2d_backward")
             ? max_backward_taps_impl<double>(dy, taps, input_hw, kernel, stride, padding, dilation)
             : max_backward_taps_impl<float>(dy, taps, input_hw, kernel, stride, padding, dilation);
}

template <typename T>
py::array avg_forward_impl(const py::array& x_in, Pair out_hw, Pair k, Pair st, Pair pad,
                           bool count_include_pad, int64_t divisor_override) {
  CArray<T> x(x_in);
  CArray<T> y = empty_array<T, kCStyle>(with_hw(x, out_hw, "avg_pool2d"));
  Pool2dShape s = make_shape(x, y, k, st, pad, {1, 1});
  const T* xp = x.data();
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    avg_pool2d_forward_cpu<T>(s, count_include_pad, divisor_override, xp, yp);
  }
  return y;
}

py::array avg_pool2d_forward(const py::array& x, Pair kernel, Pair stride, Pair padding,
                             Pair out_hw, bool count_include_pad, int64_t divisor_override) {
  with_hw(x, out_hw, "avg_pool2d");
  return is_double(x, "avg_pool2d")
             ? avg_forward_impl<double>(x, out_hw, kernel, stride, padding, count_include_pad, divisor_override)
             : avg_forward_impl<float>(x, out_hw, kernel, stride, padding, count_include_pad, divisor_override);
}

template <typename T>
py::array avg_backward_impl(const py::array& dy_in, Pair input_hw, Pair k, Pair st, Pair pad,
                            bool count_include_pad, int64_t divisor_override) {
  CArray<T> dy(dy_in);
  CArray<T> dx = empty_array<T, kCStyle>(with_hw(dy, input_hw, "avg_pool2d_backward"));
  Pool2dShape s = make_shape(dx, dy, k, st, pad, {1, 1});
  const T* dyp = dy.data();
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release release;
    avg_pool2d_backward_cpu<T>(s, count_include_pad, divisor_override, dyp, dxp);
  }
  return dx;
}

py::array avg_pool2d_backward(const py::array& dy, Pair input_hw, Pair kernel, Pair stride,
                              Pair padding, bool count_include_pad, int64_t divisor_override) {
  with_hw(dy, input_hw, "avg_pool2d_backward");
  return is_double(dy, "avg_pool2d_backward")
             ? avg_backward_impl<double>(dy, input_hw, kernel, stride, padding, count_include_pad, divisor_override)
             : avg_backward_impl<float>(dy, input_hw, kernel, stride, padding, count_include_pad, divisor_override);
}

template <typename T>
py::array adaptive_forward_impl(const py::array& x_in, Pair out_hw) {
  CArray<T> x(x_in);
  CArray<T> y = empty_array<T, kCStyle>(with_hw(x, out_hw, "adaptive_avg_pool2d"));
  Pool2dShape s = make_shape(x, y, {1, 1}, {1, 1}, {0, 0}, {1, 1});
  const T* xp = x.data();
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    adaptive_avg_pool2d_forward_cpu<T>(s, xp, yp);
  }
  return y;
}

py::array adaptive_avg_pool2d_forward(const py::array& x, Pair out_hw) {
  with_hw(x, out_hw, "adaptive_avg_pool2d");
  if (out_hw[0] < 0 || out_hw[1] < 0)
    throw std::invalid_argument("adaptive_avg_pool2d: output_size must be non-negative");
  return is_double(x, "adaptive_avg_pool2d") ? adaptive_forward_impl<double>(x, out_hw)
                                             : adaptive_forward_impl<float>(x, out_hw);
}

template <typename T>
py::array adaptive_backward_impl(const py::array& dy_in, Pair input_hw) {
  CArray<T> dy(dy_in);
  CArray<T> dx = empty_array<T, kCStyle>(with_hw(dy, input_hw, "adaptive_avg_pool2d_backward"));
  Pool2dShape s = make_shape(dx, dy, {1, 1}, {1, 1}, {0, 0}, {1, 1});
  const T* dyp = dy.data();
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release release;
    adaptive_avg_pool2d_backward_cpu<T>(s, dyp, dxp);
  }
  return dx;
}

py::array adaptive_avg_pool2d_backward(const py::array& dy, Pair input_hw) {
  with_hw(dy, input_hw, "adaptive_avg_pool2d_backward");
  if (input_hw[0] < 0 || input_hw[1] < 0)
    throw std::invalid_argument("adaptive_avg_pool2d_backward: input size must be non-negative");
  return is_double(dy, "adaptive_avg_pool2d_backward") ? adaptive_backward_impl<double>(dy, input_hw)
                                                       : adaptive_backward_impl<float>(dy, input_hw);
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def("max_pool2d_forward", &max_pool2d_forward, py::arg("input"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("output_hw"),
        py::arg("indices") = "int64",
        "Max pooling over the last two axes: returns (output, argmax), the argmax as int64 flat "
        "indices ih*W+iw (indices='int64'), uint8 window taps r*kW+t for max_pool2d_backward_taps "
        "(indices='taps', 255 = empty window) or None (indices='none')");
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("grad_output"), py::arg("indices"),
        py::arg("input_hw"), "Scatter grad_output to the saved argmax indices");
  m.def("max_pool2d_backward_taps", &max_pool2d_backward_taps, py::arg("grad_output"),
        py::arg("taps"), py::arg("input_hw"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"),
        "Gradient of max pooling from the uint8 window taps of max_pool2d_forward");
  m.def("avg_pool2d_forward", &avg_pool2d_forward, py::arg("input"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("output_hw"), py::arg("count_include_pad"),
        py::arg("divisor_override"), "Average pooling over the last two axes");
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("grad_output"), py::arg("input_hw"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("count_include_pad"), py::arg("divisor_override"),
        "Gradient of avg_pool2d with respect to its input");
  m.def("adaptive_avg_pool2d_forward", &adaptive_avg_pool2d_forward, py::arg("input"),
        py::arg("output_hw"), "Adaptive average pooling over the last two axes");
  m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward, py::arg("grad_output"),
        py::arg("input_hw"), "Gradient of adaptive_avg_pool2d with respect to its input");
}

}  // namespace pydl::bind
