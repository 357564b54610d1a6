// pydl._C batch normalization kernels: argument checks, dtype dispatch, GIL release.
// Input is (N, C, *spatial), C-contiguous; it is viewed as (N, C, L) with L the spatial product.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>

#include "batchnorm.h"
#include "bindings.h"
#include "host_array.h"

namespace py = pybind11;

namespace pydl::bind {
namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;
using OptArray = std::optional<py::array>;

struct NCL {
  int64_t N, C, L;
};

NCL ncl_of(const py::array& x) {
  if (x.ndim() < 2)
    throw std::invalid_argument("batch_norm: input must have at least 2 dimensions (N, C, ...), got " +
                                std::to_string(x.ndim()));
  int64_t L = 1;
  for (py::ssize_t i = 2; i < x.ndim(); ++i) L *= x.shape(i);
  return {x.shape(0), x.shape(1), L};
}

bool is_double(const py::array& a) {
  if (a.dtype().is(py::dtype::of<float>())) return false;
  if (a.dtype().is(py::dtype::of<double>())) return true;
  throw py::type_error("batch_norm: input must be float32 or float64, got " +
                       std::string(py::str(a.dtype())));
}

// A per-channel vector: None stays absent; otherwise it must be (C,) with x's dtype.
template <typename T>
std::optional<CArray<T>> channel_vector(const OptArray& a, const py::array& x, int64_t C,
                                        const char* what) {
  if (!a) return std::nullopt;
  if (!a->dtype().is(x.dtype()))
    throw py::type_error(std::string("batch_norm: ") + what + " dtype " +
                         std::string(py::str(a->dtype())) + " differs from input dtype " +
                         std::string(py::str(x.dtype())));
  if (a->ndim() != 1 || a->shape(0) != C)
    throw std::invalid_argument(std::string("batch_norm: ") + what + " must have shape (" +
                                std::to_string(C) + ",) to match the input's channels, got " +
                                std::to_string(a->ndim()) + "-d with " +
                                std::to_string(a->ndim() ? a->shape(0) : 1) + " elements");
  return CArray<T>(*a);
}

template <typename T>
const T* ptr(const std::optional<CArray<T>>& a) {
  return a ? a->data() : nullptr;
}

template <typename T>
py::tuple forward_train_impl(const py::array& x_in, const OptArray& g_in, const OptArray& b_in,
                             double eps) {
  const NCL d = ncl_of(x_in);
  CArray<T> x(x_in);
  auto g = channel_vector<T>(g_in, x_in, d.C, "weight");
  auto b = channel_vector<T>(b_in, x_in, d.C, "bias");
  CArray<T> y = empty_array<T, kCStyle>(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  CArray<T> mean({d.C}), var({d.C}), invstd({d.C});
  const T* xp = x.data();
  const T* gp = ptr(g);
  const T* bp = ptr(b);
  T *yp = y.mutable_data(), *mp = mean.mutable_data(), *vp = var.mutable_data(),
    *ip = invstd.mutable_data();
  {
    py::gil_scoped_release release;
    batch_norm_forward_train_cpu<T>(d.N, d.C, d.L, xp, gp, bp, eps, yp, mp, vp, ip);
  }
  return py::make_tuple(y, mean, var, invstd);
}

py::tuple batch_norm_forward_train(const py::array& x, const OptArray& weight,
                                   const OptArray& bias, double eps) {
  ncl_of(x);
  return is_double(x) ? forward_train_impl<double>(x, weight, bias, eps)
                      : forward_train_impl<float>(x, weight, bias, eps);
}

template <typename T>
py::array forward_eval_impl(const py::array& x_in, const py::array& m_in, const py::array& v_in,
                            const OptArray& g_in, const OptArray& b_in, double eps) {
  const NCL d = ncl_of(x_in);
  CArray<T> x(x_in);
  auto m = channel_vector<T>(m_in, x_in, d.C, "running_mean");
  auto v = channel_vector<T>(v_in, x_in, d.C, "running_var");
  auto g = channel_vector<T>(g_in, x_in, d.C, "weight");
  auto b = channel_vector<T>(b_in, x_in, d.C, "bias");
  CArray<T> y = empty_array<T, kCStyle>(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  const T *xp = x.data(), *mp = ptr(m), *vp = ptr(v), *gp = ptr(g), *bp = ptr(b);
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    batch_norm_forward_eval_cpu<T>(d.N, d.C, d.L, xp, mp, vp, gp, bp, eps, yp);
  }
  return y;
}

py::array batch_norm_forward_eval(const py::array& x, const py::array& mean, const py::array& var,
                                  const OptArray& weight, const OptArray& bias, double eps) {
  ncl_of(x);
  return is_double(x) ? forward_eval_impl<double>(x, mean, var, weight, bias, eps)
                      : forward_eval_impl<float>(x, mean, var, weight, bias, eps);
}

template <typename T>
py::tuple backward_impl(const py::array& dy_in, const py::array& x_in, const py::array& m_in,
                        const py::array& is_in, const OptArray& g_in, bool training, bool need_dx,
                        bool need_dgamma, bool need_dbeta) {
  const NCL d = ncl_of(x_in);
  CArray<T> dy(dy_in), x(x_in);
  auto m = channel_vector<T>(m_in, x_in, d.C, "mean");
  auto is = channel_vector<T>(is_in, x_in, d.C, "invstd");
  auto g = channel_vector<T>(g_in, x_in, d.C, "weight");
  std::optional<CArray<T>> dx, dg, db;
  if (need_dx)
    dx = empty_array<T, kCStyle>(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
  if (need_dgamma) dg = CArray<T>({d.C});
  if (need_dbeta) db = CArray<T>({d.C});
  const T *dyp = dy.data(), *xp = x.data(), *mp = ptr(m), *isp = ptr(is), *gp = ptr(g);
  T* dxp = dx ? dx->mutable_data() : nullptr;
  T* dgp = dg ? dg->mutable_data() : nullptr;
  T* dbp = db ? db->mutable_data() : nullptr;
  {
    py::gil_scoped_release release;
    batch_norm_backward_cpu<T>(d.N, d.C, d.L, dyp, xp, mp, isp, gp, training, dxp, dgp, dbp);
  }
  auto obj = [](const std::optional<CArray<T>>& a) {
    return a ? py::object(*a) : py::object(py::none());
  };
  return py::make_tuple(obj(dx), obj(dg), obj(db));
}

py::tuple batch_norm_backward(const py::array& dy, const py::array& x, const py::array& mean,
                              const py::array& invstd, const OptArray& weight, bool training,
                              bool need_dx, bool need_dweight, bool need_dbias) {
  ncl_of(x);
  if (dy.ndim() != x.ndim() || !std::equal(x.shape(), x.shape() + x.ndim(), dy.shape()))
    throw std::invalid_argument("batch_norm_backward: grad_output and input shapes differ");
  if (!dy.dtype().is(x.dtype()))
    throw py::type_error("batch_norm_backward: grad_output and input dtypes differ");
  return is_double(x) ? backward_impl<double>(dy, x, mean, invstd, weight, training, need_dx,
                                              need_dweight, need_dbias)
                      : backward_impl<float>(dy, x, mean, invstd, weight, training, need_dx,
                                             need_dweight, need_dbias);
}

}  // namespace

void bind_batchnorm(py::module_& m) {
  m.def("batch_norm_forward_train", &batch_norm_forward_train, py::arg("input"),
        py::arg("weight"), py::arg("bias"), py::arg("eps"),
        "Batch statistics and normalised output: (y, mean, biased var, invstd)");
  m.def("batch_norm_forward_eval", &batch_norm_forward_eval, py::arg("input"),
        py::arg("running_mean"), py::arg("running_var"), py::arg("weight"), py::arg("bias"),
        py::arg("eps"), "Normalise with given statistics");
  m.def("batch_norm_backward", &batch_norm_backward, py::arg("grad_output"), py::arg("input"),
        py::arg("mean"), py::arg("invstd"), py::arg("weight"), py::arg("training"),
        py::arg("need_input_grad"), py::arg("need_weight_grad"), py::arg("need_bias_grad"),
        "Fused batch-norm backward: (dx, dweight, dbias), None where not requested");
}

}  // namespace pydl::bind
