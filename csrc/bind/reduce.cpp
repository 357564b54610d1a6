// Bindings of csrc/reduce/: reductions over any axes of strided arrays, softmax rows, and the
// strided (transposing) copy. Arrays come as NumPy views with their strides: no copy is made
// here; negative strides are refused (the op layer passes such views through np.ascontiguousarray).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.h"
#include "reduce/reduce.h"

namespace py = pybind11;

namespace pydl::bind {

namespace {

View view_of(const py::array& x, const char* op) {
  View v;
  for (py::ssize_t i = 0; i < x.ndim(); ++i) {
    if (x.strides(i) < 0 || x.strides(i) % x.itemsize() != 0)
      throw std::invalid_argument(std::string(op) + ": strides must be non-negative multiples "
                                  "of the item size");
    v.shape.push_back(x.shape(i));
    v.strides.push_back(x.strides(i) / x.itemsize());
  }
  return v;
}

std::vector<bool> reduced_axes(const py::array& x, const std::vector<int64_t>& axes,
                               const char* op) {
  std::vector<bool> reduced(x.ndim(), false);
  for (int64_t a : axes) {
    if (a < -x.ndim() || a >= x.ndim())
      throw std::invalid_argument(std::string(op) + ": axis " + std::to_string(a) +
                                  " out of range for " + std::to_string(x.ndim()) + " dims");
    reduced[a < 0 ? a + x.ndim() : a] = true;
  }
  return reduced;
}

std::vector<py::ssize_t> kept_shape(const py::array& x, const std::vector<bool>& reduced) {
  std::vector<py::ssize_t> shape;
  for (py::ssize_t i = 0; i < x.ndim(); ++i)
    if (!reduced[i]) shape.push_back(x.shape(i));
  return shape;
}

template <typename T>
py::array sum_typed(const py::array& x, const std::vector<int64_t>& axes, int op,
                    const py::object& centre) {
  const View v = view_of(x, "reduce_sum");
  const std::vector<bool> reduced = reduced_axes(x, axes, "reduce_sum");
  py::array_t<T> out(kept_shape(x, reduced));
  const T* c = nullptr;
  py::array_t<T, py::array::c_style | py::array::forcecast> carr;
  if (!centre.is_none()) {
    carr = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(centre);
    if (!carr || carr.size() != out.size())
      throw std::invalid_argument("reduce_sum: centre must have one value per output");
    c = carr.data();
  }
  const T* xp = static_cast<const T*>(x.data());
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    reduce_sum_cpu<T>(xp, v, reduced, static_cast<SumOp>(op), c, o);
  }
  return out;
}

template <typename T>
py::tuple ext_typed(const py::array& x, const std::vector<int64_t>& axes, int op, bool index) {
  const View v = view_of(x, "reduce_ext");
  const std::vector<bool> reduced = reduced_axes(x, axes, "reduce_ext");
  const auto shape = kept_shape(x, reduced);
  py::array_t<T> out(shape);
  py::object idx = py::none();
  int64_t* ip = nullptr;
  if (index) {
    py::array_t<int64_t> ia(shape);
    ip = ia.mutable_data();
    idx = ia;
  }
  const T* xp = static_cast<const T*>(x.data());
  T* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    reduce_ext_cpu<T>(xp, v, reduced, static_cast<ExtOp>(op), o, ip);
  }
  return py::make_tuple(out, idx);
}

bool is_f32(const py::array& x) { return x.dtype().is(py::dtype::of<float>()); }
bool is_f64(const py::array& x) { return x.dtype().is(py::dtype::of<double>()); }

void check_float(const py::array& x, const char* op) {
  if (!is_f32(x) && !is_f64(x))
    throw std::invalid_argument(std::string(op) + ": x must be float32 or float64, got " +
                                std::string(py::str(x.dtype())));
}

template <typename T>
py::array softmax_typed(const py::array& x, bool log) {
  auto xc = py::array_t<T, py::array::c_style>::ensure(x);
  if (!xc) throw std::invalid_argument("softmax_rows: x must be C-contiguous");
  std::vector<py::ssize_t> shape(xc.shape(), xc.shape() + xc.ndim());
  py::array_t<T> y(shape);
  const int64_t n = xc.ndim() ? xc.shape(xc.ndim() - 1) : 1;
  const int64_t rows = n ? xc.size() / n : 0;
  const T* xp = xc.data();
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    softmax_rows_cpu<T>(xp, rows, n, log, yp);
  }
  return y;
}

}  // namespace

void bind_reduce(py::module_& m) {
  m.def(
      "reduce_sum",
      [](const py::array& x, const std::vector<int64_t>& axes, int op, const py::object& centre) {
        check_float(x, "reduce_sum");
        if (op < 0 || op > 3) throw std::invalid_argument("reduce_sum: op must be 0..3");
        return is_f32(x) ? sum_typed<float>(x, axes, op, centre)
                         : sum_typed<double>(x, axes, op, centre);
      },
      py::arg("x"), py::arg("axes"), py::arg("op") = 0, py::arg("centre") = py::none(),
      "Sum over `axes` of a strided float array of x (op 0), (x - centre)^2 (1), |x| (2) or "
      "exp(x - centre) (3); centre holds one value per output. Bitwise the same for any "
      "thread count.");
  m.def(
      "reduce_ext",
      [](const py::array& x, const std::vector<int64_t>& axes, int op, bool index) {
        check_float(x, "reduce_ext");
        if (op < 0 || op > 2) throw std::invalid_argument("reduce_ext: op must be 0..2");
        return is_f32(x) ? ext_typed<float>(x, axes, op, index)
                         : ext_typed<double>(x, axes, op, index);
      },
      py::arg("x"), py::arg("axes"), py::arg("op") = 0, py::arg("index") = false,
      "(values, indices or None): max (op 0), min (1) or max |x| (2) over `axes`, NaN "
      "propagating; indices of the first extreme along the reduced axes (row-major for a "
      "C-contiguous x).");
  m.def(
      "softmax_rows",
      [](const py::array& x, bool log) {
        check_float(x, "softmax_rows");
        return is_f32(x) ? softmax_typed<float>(x, log) : softmax_typed<double>(x, log);
      },
      py::arg("x"), py::arg("log") = false,
      "softmax (log_softmax when log) along the last axis of a C-contiguous float array");
  m.def(
      "copy_strided",
      [](const py::array& x) {
        const View v = view_of(x, "copy_strided");
        std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
        py::array y(x.dtype(), shape);
        const int64_t size = x.itemsize();
        const void* xp = x.data();
        void* yp = y.mutable_data();
        {
          py::gil_scoped_release release;
          copy_strided_cpu(xp, v, size, yp);
        }
        return y;
      },
      py::arg("x"),
      "A C-contiguous copy of a strided array (item size 1, 4 or 8), transposing through "
      "cache-sized tiles");
}

}  // namespace pydl::bind
