// Bindings for csrc/loss.h: check dtypes and shapes, release the GIL, call the kernels.
#include <pybind11/numpy.h>

#include <stdexcept>
#include <string>

#include "bindings.h"
#include "host_array.h"
#include "loss.h"

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

bool is_double(const py::array& x, const char* what) {
  if (x.dtype().is(py::dtype::of<double>())) return true;
  if (x.dtype().is(py::dtype::of<float>())) return false;
  throw py::type_error(std::string(what) + ": expected a float32 or float64 array, got dtype " +
                       std::string(py::str(x.dtype())));
}

struct Checked {
  int64_t m, c;
};

// Shapes shared by forward and backward: z (m, c), target (m,) integer, weight None or (c,)
// of z's dtype.
Checked check_common(const char* op, const py::array& z, const py::array& target,
                     const py::object& weight) {
  if (z.ndim() != 2) {
    throw std::invalid_argument(std::string(op) + ": logits must be 2-D (rows, classes), got " +
                                shape_str(z));
  }
  const int64_t m = z.shape(0), c = z.shape(1);
  if (target.ndim() != 1 || target.shape(0) != m) {
    throw std::invalid_argument(std::string(op) + ": target shape " + shape_str(target) +
                                " must be (" + std::to_string(m) + ",) for logits " +
                                shape_str(z));
  }
  if (target.dtype().kind() != 'i' && target.dtype().kind() != 'u') {
    throw py::type_error(std::string(op) + ": target must hold integer class indices, got dtype " +
                         std::string(py::str(target.dtype())));
  }
  // The kernels read int64 indices; a uint64 above 2**63 - 1 would wrap to a negative index
  // (2**64 - 100 to -100, the usual ignore_index) and silently drop its row.
  if (target.dtype().kind() == 'u' && target.dtype().itemsize() == 8) {
    throw py::type_error(std::string(op) + ": target must not be uint64 (indices above 2**63 - 1 "
                         "would wrap to negative ones such as ignore_index); convert to int64");
  }
  if (!weight.is_none()) {
    py::array w = py::array::ensure(weight);
    if (!w || w.ndim() != 1 || w.shape(0) != c) {
      throw std::invalid_argument(std::string(op) + ": weight must have shape (" +
                                  std::to_string(c) + ",), one value per class");
    }
    if (!w.dtype().is(z.dtype())) {
      throw py::type_error(std::string(op) + ": weight dtype " + std::string(py::str(w.dtype())) +
                           " differs from logits dtype " + std::string(py::str(z.dtype())));
    }
  }
  return {m, c};
}

void check_eps(const char* op, double eps) {
  if (!(eps >= 0.0 && eps <= 1.0)) {
    throw std::invalid_argument(std::string(op) + ": label_smoothing must be in [0, 1], got " +
                                std::to_string(eps));
  }
}

template <typename T>
py::tuple forward_t(const py::array& za, const py::array& ta, const py::object& wo,
                    int64_t ignore_index, double eps, int64_t m, int64_t c) {
  carray<T> z = carray<T>::ensure(za);
  carray<int64_t> t = carray<int64_t>::ensure(ta);
  carray<T> w;
  if (!wo.is_none()) w = carray<T>::ensure(wo);
  carray<T> loss(m);
  carray<double> stats({m, int64_t(2)});
  const T* pz = z.data();
  const int64_t* pt = t.data();
  const T* pw = wo.is_none() ? nullptr : w.data();
  T* pl = loss.mutable_data();
  double* pe = stats.mutable_data();
  CrossEntropyTotals totals;
  {
    py::gil_scoped_release release;
    totals = cross_entropy_forward_cpu(pz, pt, pw, m, c, ignore_index, eps, pl, pe);
  }
  return py::make_tuple(loss, stats, totals.loss_sum, totals.weight_sum);
}

template <typename T>
py::array backward_t(const py::array& za, const py::array& la, const py::array& ta,
                     const py::object& wo, int64_t ignore_index, double eps,
                     const py::array& ca, int64_t m, int64_t c) {
  carray<T> z = carray<T>::ensure(za);
  carray<double> stats = carray<double>::ensure(la);
  carray<int64_t> t = carray<int64_t>::ensure(ta);
  carray<T> coef = carray<T>::ensure(ca);
  carray<T> w;
  if (!wo.is_none()) w = carray<T>::ensure(wo);
  if (!stats || stats.ndim() != 2 || stats.shape(0) != m || stats.shape(1) != 2) {
    throw std::invalid_argument("cross_entropy_backward: stats shape " +
                                (stats ? shape_str(stats) : std::string("?")) + " must be (" +
                                std::to_string(m) + ", 2), as returned by the forward");
  }
  const int64_t n_coef = coef.size();
  if (n_coef != 1 && n_coef != m) {
    throw std::invalid_argument("cross_entropy_backward: coef must have 1 or " +
                                std::to_string(m) + " elements, got shape " + shape_str(coef));
  }
  carray<T> dz = empty_array<T, kCStyle>({m, c});
  const T* pz = z.data();
  const double* pe = stats.data();
  const int64_t* pt = t.data();
  const T* pw = wo.is_none() ? nullptr : w.data();
  const T* pc = coef.data();
  T* pd = dz.mutable_data();
  const int64_t stride = (n_coef == 1) ? 0 : 1;
  {
    py::gil_scoped_release release;
    cross_entropy_backward_cpu(pz, pe, pt, pw, m, c, ignore_index, eps, pc, stride, pd);
  }
  return std::move(dz);
}

py::tuple cross_entropy_forward(const py::array& z, const py::array& target,
                                const py::object& weight, int64_t ignore_index, double eps) {
  const bool dbl = is_double(z, "cross_entropy_forward");
  const Checked s = check_common("cross_entropy_forward", z, target, weight);
  check_eps("cross_entropy_forward", eps);
  return dbl ? forward_t<double>(z, target, weight, ignore_index, eps, s.m, s.c)
             : forward_t<float>(z, target, weight, ignore_index, eps, s.m, s.c);
}

py::array cross_entropy_backward(const py::array& z, const py::array& stats,
                                 const py::array& target, const py::object& weight,
                                 int64_t ignore_index, double eps, const py::array& coef) {
  const bool dbl = is_double(z, "cross_entropy_backward");
  const Checked s = check_common("cross_entropy_backward", z, target, weight);
  check_eps("cross_entropy_backward", eps);
  return dbl ? backward_t<double>(z, stats, target, weight, ignore_index, eps, coef, s.m, s.c)
             : backward_t<float>(z, stats, target, weight, ignore_index, eps, coef, s.m, s.c);
}

}  // namespace

void bind_loss(py::module_& m) {
  m.def("cross_entropy_forward", &cross_entropy_forward, py::arg("logits"), py::arg("target"),
        py::arg("weight"), py::arg("ignore_index"), py::arg("label_smoothing"),
        "Fused log-softmax + NLL over rows of (m, c) logits: returns (per-row loss, per-row "
        "(max, log-sum-exp of the shifted row) as float64 (m, 2), sum of losses, sum of counted "
        "target weights)");
  m.def("cross_entropy_backward", &cross_entropy_backward, py::arg("logits"), py::arg("stats"),
        py::arg("target"), py::arg("weight"), py::arg("ignore_index"),
        py::arg("label_smoothing"), py::arg("coef"),
        "Gradient of the per-row losses w.r.t. the logits, scaled by coef (1 or m values)");
}

}  // namespace pydl::bind
