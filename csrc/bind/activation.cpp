// Bindings for csrc/activation.h: check dtypes and shapes, release the GIL, call the kernel.
#include <pybind11/numpy.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "activation.h"
#include "bindings.h"
#include "host_array.h"

namespace py = pybind11;

namespace pydl::bind {
namespace {

template <typename T>
using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

std::vector<py::ssize_t> shape_of(const py::array& a) {
  return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

// The element type the kernel runs in: the input's own (float32 or float64), never a silent cast.
bool is_double(const py::array& x, const char* op) {
  if (x.dtype().is(py::dtype::of<double>())) return true;
  if (x.dtype().is(py::dtype::of<float>())) return false;
  throw py::type_error(std::string(op) + ": expected a float32 or float64 array, got dtype " +
                       std::string(py::str(x.dtype())));
}

template <typename T>
py::array gelu_forward_t(const py::array& xa) {
  carray<T> x = carray<T>::ensure(xa);
  carray<T> y = empty_array<T, kCStyle>(shape_of(x));
  const T* px = x.data();
  T* py_ = y.mutable_data();
  const int64_t n = x.size();
  {
    py::gil_scoped_release release;
    gelu_forward_cpu(px, py_, n);
  }
  return std::move(y);
}

template <typename T>
py::array gelu_backward_t(const py::array& ga, const py::array& xa) {
  carray<T> g = carray<T>::ensure(ga);
  carray<T> x = carray<T>::ensure(xa);
  carray<T> dx = empty_array<T, kCStyle>(shape_of(x));
  const T* pg = g.data();
  const T* px = x.data();
  T* pd = dx.mutable_data();
  const int64_t n = x.size();
  {
    py::gil_scoped_release release;
    gelu_backward_cpu(pg, px, pd, n);
  }
  return std::move(dx);
}

py::array gelu_forward(const py::array& x) {
  return is_double(x, "gelu_forward") ? gelu_forward_t<double>(x) : gelu_forward_t<float>(x);
}

py::array gelu_backward(const py::array& grad, const py::array& x) {
  const bool dbl = is_double(x, "gelu_backward");
  if (!grad.dtype().is(x.dtype())) {
    throw py::type_error("gelu_backward: grad dtype " + std::string(py::str(grad.dtype())) +
                         " differs from input dtype " + std::string(py::str(x.dtype())));
  }
  if (grad.ndim() != x.ndim() || !std::equal(x.shape(), x.shape() + x.ndim(), grad.shape())) {
    throw std::invalid_argument("gelu_backward: grad shape " + shape_str(grad) +
                                " differs from input shape " + shape_str(x));
  }
  return dbl ? gelu_backward_t<double>(grad, x) : gelu_backward_t<float>(grad, x);
}

}  // namespace

void bind_activation(py::module_& m) {
  m.def("gelu_forward", &gelu_forward, py::arg("x"),
        "Exact GELU x * Phi(x) of a float32/float64 array (new contiguous array, same shape)");
  m.def("gelu_backward", &gelu_backward, py::arg("grad"), py::arg("x"),
        "grad * (Phi(x) + x phi(x)), the exact GELU's input gradient");
}

}  // namespace pydl::bind
