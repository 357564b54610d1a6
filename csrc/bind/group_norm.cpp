// pydl._C.group_norm_forward / group_norm_backward: layer and group normalization over an input
// viewed as (N, G, K, L) (csrc/norm/group_norm.h). Argument checks, dtype dispatch, GIL release.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>

#include "../norm/group_norm.h"
#include "bindings.h"

namespace py = pybind11;

namespace pydl::bind {
namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;
using OptArray = std::optional<py::array>;

void check_dims(const char* op, const py::array& x, int64_t N, int64_t G, int64_t K, int64_t L) {
  if (N < 0 || G < 1 || K < 0 || L < 0)
    throw std::invalid_argument(std::string(op) + ": bad view (N, G, K, L) = (" +
                                std::to_string(N) + ", " + std::to_string(G) + ", " +
                                std::to_string(K) + ", " + std::to_string(L) + ")");
  if (static_cast<int64_t>(x.size()) != N * G * K * L)
    throw std::invalid_argument(std::string(op) + ": input has " + std::to_string(x.size()) +
                                " elements, not N * G * K * L = " +
                                std::to_string(N * G * K * L));
}

template <typename T>
std::optional<CArray<T>> affine(const char* op, const OptArray& a, int64_t n, const char* what) {
  if (!a) return std::nullopt;
  CArray<T> c(*a);
  if (static_cast<int64_t>(c.size()) != n)
    throw std::invalid_argument(std::string(op) + ": " + what + " has " +
                                std::to_string(c.size()) + " elements, expected G * K = " +
                                std::to_string(n));
  return c;
}

template <typename T>
py::tuple forward_t(const py::array& x_in, const OptArray& w_in, const OptArray& b_in, int64_t N,
                    int64_t G, int64_t K, int64_t L, double eps) {
  CArray<T> x(x_in);
  auto w = affine<T>("group_norm_forward", w_in, G * K, "weight");
  auto b = affine<T>("group_norm_forward", b_in, G * K, "bias");
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
  CArray<T> y(shape), mean(std::vector<py::ssize_t>{N * G}), rstd(std::vector<py::ssize_t>{N * G});
  const T* xp = x.data();
  const T* wp = w ? w->data() : nullptr;
  const T* bp = b ? b->data() : nullptr;
  T* yp = y.mutable_data();
  T* mp = mean.mutable_data();
  T* rp = rstd.mutable_data();
  {
    py::gil_scoped_release release;
    group_norm_forward_cpu<T>(xp, wp, bp, yp, mp, rp, N, G, K, L, eps);
  }
  return py::make_tuple(y, mean, rstd);
}

template <typename T>
py::tuple backward_t(const py::array& dy_in, const py::array& x_in, const py::array& mean_in,
                     const py::array& rstd_in, const OptArray& w_in, int64_t N, int64_t G,
                     int64_t K, int64_t L, bool need_dx, bool need_dw, bool need_db) {
  CArray<T> dy(dy_in), x(x_in), mean(mean_in), rstd(rstd_in);
  if (dy.size() != x.size())
    throw std::invalid_argument("group_norm_backward: grad_output has " +
                                std::to_string(dy.size()) + " elements but input has " +
                                std::to_string(x.size()));
  if (static_cast<int64_t>(mean.size()) != N * G || static_cast<int64_t>(rstd.size()) != N * G)
    throw std::invalid_argument("group_norm_backward: mean and rstd must have N * G = " +
                                std::to_string(N * G) + " elements");
  auto w = affine<T>("group_norm_backward", w_in, G * K, "weight");
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
  py::object dx = py::none(), dw = py::none(), db = py::none();
  T *dxp = nullptr, *dwp = nullptr, *dbp = nullptr;
  if (need_dx) {
    CArray<T> a(shape);
    dxp = a.mutable_data();
    dx = a;
  }
  if (need_dw) {
    CArray<T> a(std::vector<py::ssize_t>{G * K});
    dwp = a.mutable_data();
    dw = a;
  }
  if (need_db) {
    CArray<T> a(std::vector<py::ssize_t>{G * K});
    dbp = a.mutable_data();
    db = a;
  }
  const T* dyp = dy.data();
  const T* xp = x.data();
  const T* mp = mean.data();
  const T* rp = rstd.data();
  const T* wp = w ? w->data() : nullptr;
  {
    py::gil_scoped_release release;
    group_norm_backward_cpu<T>(dyp, xp, mp, rp, wp, dxp, dwp, dbp, N, G, K, L);
  }
  return py::make_tuple(dx, dw, db);
}

bool is_double(const char* op, const py::array& a) {
  if (a.dtype().is(py::dtype::of<float>())) return false;
  if (a.dtype().is(py::dtype::of<double>())) return true;
  throw py::type_error(std::string(op) + ": input must be float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

}  // namespace

void bind_group_norm(py::module_& m) {
  m.def(
      "group_norm_forward",
      [](const py::array& x, const OptArray& weight, const OptArray& bias, int64_t N, int64_t G,
         int64_t K, int64_t L, double eps) {
        check_dims("group_norm_forward", x, N, G, K, L);
        if (!(eps > 0)) throw std::invalid_argument("group_norm_forward: eps must be positive");
        return is_double("group_norm_forward", x)
                   ? forward_t<double>(x, weight, bias, N, G, K, L, eps)
                   : forward_t<float>(x, weight, bias, N, G, K, L, eps);
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("N"), py::arg("G"), py::arg("K"),
      py::arg("L"), py::arg("eps"),
      "(y, mean, rstd) of layer/group norm over x viewed as (N, G, K, L); weight/bias (G*K,)");
  m.def(
      "group_norm_backward",
      [](const py::array& dy, const py::array& x, const py::array& mean, const py::array& rstd,
         const OptArray& weight, int64_t N, int64_t G, int64_t K, int64_t L, bool need_dx,
         bool need_dw, bool need_db) {
        check_dims("group_norm_backward", x, N, G, K, L);
        return is_double("group_norm_backward", x)
                   ? backward_t<double>(dy, x, mean, rstd, weight, N, G, K, L, need_dx, need_dw,
                                        need_db)
                   : backward_t<float>(dy, x, mean, rstd, weight, N, G, K, L, need_dx, need_dw,
                                       need_db);
      },
      py::arg("grad_output"), py::arg("x"), py::arg("mean"), py::arg("rstd"), py::arg("weight"),
      py::arg("N"), py::arg("G"), py::arg("K"), py::arg("L"), py::arg("need_dx"),
      py::arg("need_dweight"), py::arg("need_dbias"),
      "(dx, dweight, dbias) of layer/group norm; None where not needed");
}

}  // namespace pydl::bind
