// Bindings for the elementwise engine (csrc/elementwise/): pydl._C.elementwise.<op>(...).
//
// Operands are NumPy arrays of one dtype (float32 or float64; the caller has promoted them) of
// any shape and strides, or Python numbers (read as a 0-d operand of the arrays' dtype, so
// `x * 2.0` broadcasts a scalar instead of materialising an array). The result is a fresh
// C-contiguous array of the broadcast shape, from the caching host allocator when large
// (host_array.h). The GIL is released around large loops only: releasing and retaking it costs
// more than a small op's whole loop.
#include <pybind11/numpy.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "bindings.h"
#include "elementwise/ops.h"
#include "host_array.h"

namespace py = pybind11;

namespace pydl::bind {
namespace {

using ew::OperandRef;

constexpr int64_t kReleaseGilFrom = 1 << 14;

enum class Kind { f32, f64 };

struct Operands {
  std::vector<OperandRef> refs;  // refs[0] is the output, filled in by run()
  std::vector<py::array> keep;   // the input arrays (their data must outlive the loop)
  double scalars[3] = {0, 0, 0};
  float scalars_f[3] = {0, 0, 0};
  bool is_scalar[3] = {false, false, false};
  int dtype = -1;  // 0 float32, 1 float64
};

std::string dtype_name(const py::array& a) { return std::string(py::str(a.dtype())); }

// Reads operand i (array or Python number) into ops; arrays must be float32/float64 and agree.
void add_operand(Operands& ops, py::handle h, int i, const char* name, bool bool_ok = false) {
  auto& api = py::detail::npy_api::get();
  OperandRef ref;
  if (api.PyArray_Check_(h.ptr())) {
    py::array a = py::reinterpret_borrow<py::array>(h);
    if (bool_ok) {
      if (!a.dtype().is(py::dtype::of<bool>()))
        throw py::type_error(std::string(name) + ": condition must be a bool array, got " +
                             dtype_name(a));
    } else {
      int dt;
      if (a.dtype().is(py::dtype::of<float>())) dt = 0;
      else if (a.dtype().is(py::dtype::of<double>())) dt = 1;
      else
        throw py::type_error(std::string(name) + ": expected float32 or float64 arrays, got " +
                             dtype_name(a));
      if (ops.dtype >= 0 && ops.dtype != dt)
        throw py::type_error(std::string(name) + ": operands have different dtypes (float32 and "
                             "float64); promote them first");
      ops.dtype = dt;
    }
    ref.data = static_cast<char*>(const_cast<void*>(a.data()));
    ref.elem_size = a.itemsize();
    ref.shape.assign(a.shape(), a.shape() + a.ndim());
    ref.strides.assign(a.strides(), a.strides() + a.ndim());
    ops.keep.push_back(std::move(a));
  } else if (!bool_ok && (PyFloat_Check(h.ptr()) || PyLong_Check(h.ptr()))) {
    ops.is_scalar[i] = true;
    ops.scalars[i] = PyFloat_AsDouble(h.ptr());
    if (PyErr_Occurred()) throw py::error_already_set();
  } else {
    throw py::type_error(std::string(name) + ": operand " + std::to_string(i) +
                         " must be a NumPy array" + (bool_ok ? "" : " or a Python number") +
                         ", got " + std::string(py::str(py::type::handle_of(h))));
  }
  ops.refs.push_back(std::move(ref));
}

// Points the scalar operands at their value in the arrays' dtype, allocates the output (out_dtype
// -1: the operands' dtype, else 2 for bool) and runs fn.
py::array run(Operands& ops, ew::InnerFn fn, const ew::Params& p, int64_t grain,
              const char* name, bool bool_out = false) {
  if (ops.dtype < 0)
    throw py::type_error(std::string(name) + ": at least one operand must be a float array");
  const bool dbl = ops.dtype == 1;
  for (size_t i = 0; i < ops.refs.size(); ++i) {
    if (!ops.is_scalar[i]) continue;
    ops.scalars_f[i] = float(ops.scalars[i]);
    ops.refs[i].data = dbl ? reinterpret_cast<char*>(&ops.scalars[i])
                           : reinterpret_cast<char*>(&ops.scalars_f[i]);
    ops.refs[i].elem_size = dbl ? 8 : 4;
  }
  std::vector<const std::vector<int64_t>*> shapes;
  for (const auto& r : ops.refs) shapes.push_back(&r.shape);
  std::vector<int64_t> shape;
  try {
    shape = ew::broadcast_shapes(shapes);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string(name) + ": " + e.what());
  }
  py::array out = bool_out ? py::array(empty_array_like_shape<bool>(shape))
                  : dbl    ? py::array(empty_array_like_shape<double>(shape))
                           : py::array(empty_array_like_shape<float>(shape));
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (numel == 0) return out;
  OperandRef o;
  o.data = static_cast<char*>(out.mutable_data());
  o.elem_size = out.itemsize();
  o.shape = shape;
  o.strides.assign(out.strides(), out.strides() + out.ndim());
  std::vector<OperandRef> refs;
  refs.reserve(ops.refs.size() + 1);
  refs.push_back(std::move(o));
  for (auto& r : ops.refs) refs.push_back(r);
  if (numel >= kReleaseGilFrom) {
    py::gil_scoped_release release;
    ew::run_kernel(fn, refs, shape, p, grain);
  } else {
    ew::run_kernel(fn, refs, shape, p, grain);
  }
  return out;
}

py::array unary(ew::Unary op, py::handle x, const ew::Params& p, const char* name) {
  Operands ops;
  add_operand(ops, x, 0, name);
  if (ops.is_scalar[0]) throw py::type_error(std::string(name) + ": expected a NumPy array");
  return run(ops, ew::kernel_table().unary[ops.dtype][int(op)], p, ew::grain_for(op), name);
}

py::array binary(ew::Binary op, py::handle a, py::handle b, const ew::Params& p,
                 const char* name) {
  Operands ops;
  add_operand(ops, a, 0, name);
  add_operand(ops, b, 1, name);
  if (ops.dtype < 0) throw py::type_error(std::string(name) + ": expected a NumPy array operand");
  return run(ops, ew::kernel_table().binary[ops.dtype][int(op)], p, ew::grain_for(op), name);
}

}  // namespace

void bind_elementwise(py::module_& parent) {
  py::module_ m = parent.def_submodule(
      "elementwise",
      "The native elementwise engine (csrc/elementwise/): float32/float64 NumPy arrays of any "
      "strides, broadcasting, Python numbers as scalars; fresh C-contiguous results.");

#define PYDL_UNARY(NAME)                                                                 \
  m.def(#NAME, [](py::handle x) { return unary(ew::Unary::NAME, x, {}, #NAME); }, py::arg("x"));
  PYDL_UNARY(neg) PYDL_UNARY(abs) PYDL_UNARY(sqrt) PYDL_UNARY(rsqrt) PYDL_UNARY(exp)
  PYDL_UNARY(log) PYDL_UNARY(log1p) PYDL_UNARY(expm1) PYDL_UNARY(sin) PYDL_UNARY(cos)
  PYDL_UNARY(tanh) PYDL_UNARY(sigmoid) PYDL_UNARY(erf) PYDL_UNARY(relu) PYDL_UNARY(gelu)
  PYDL_UNARY(gelu_tanh) PYDL_UNARY(silu)
#undef PYDL_UNARY
  m.def("leaky_relu", [](py::handle x, double slope) {
    return unary(ew::Unary::leaky_relu, x, {slope, 0}, "leaky_relu");
  }, py::arg("x"), py::arg("negative_slope"));
  m.def("elu", [](py::handle x, double alpha) {
    return unary(ew::Unary::elu, x, {alpha, 0}, "elu");
  }, py::arg("x"), py::arg("alpha"));
  m.def("softplus", [](py::handle x, double beta, double threshold) {
    if (beta == 0) throw std::invalid_argument("softplus: beta must be nonzero");
    return unary(ew::Unary::softplus, x, {beta, threshold}, "softplus");
  }, py::arg("x"), py::arg("beta"), py::arg("threshold"));
  m.def("hardtanh", [](py::handle x, double lo, double hi) {
    return unary(ew::Unary::hardtanh, x, {lo, hi}, "hardtanh");
  }, py::arg("x"), py::arg("min_val"), py::arg("max_val"));
  m.def("pow_scalar", [](py::handle x, double p) {
    return unary(ew::Unary::pow_scalar, x, {p, 0}, "pow_scalar");
  }, py::arg("x"), py::arg("exponent"));

#define PYDL_BINARY(NAME)                                                                \
  m.def(#NAME, [](py::handle a, py::handle b) {                                          \
    return binary(ew::Binary::NAME, a, b, {}, #NAME);                                    \
  }, py::arg("a"), py::arg("b"));
  PYDL_BINARY(add) PYDL_BINARY(sub) PYDL_BINARY(mul) PYDL_BINARY(div) PYDL_BINARY(maximum)
  PYDL_BINARY(minimum) PYDL_BINARY(pow) PYDL_BINARY(relu_backward)
  PYDL_BINARY(sigmoid_backward) PYDL_BINARY(tanh_backward) PYDL_BINARY(gelu_backward)
  PYDL_BINARY(gelu_tanh_backward) PYDL_BINARY(silu_backward)
#undef PYDL_BINARY
  m.def("leaky_relu_backward", [](py::handle g, py::handle x, double slope) {
    return binary(ew::Binary::leaky_relu_backward, g, x, {slope, 0}, "leaky_relu_backward");
  }, py::arg("grad"), py::arg("x"), py::arg("negative_slope"));
  m.def("elu_backward", [](py::handle g, py::handle y, double alpha) {
    if (!(alpha > 0)) throw std::invalid_argument("elu_backward: alpha must be positive (the "
                                                  "kernel reads the branch from the output)");
    return binary(ew::Binary::elu_backward, g, y, {alpha, 0}, "elu_backward");
  }, py::arg("grad"), py::arg("y"), py::arg("alpha"));
  m.def("hardtanh_backward", [](py::handle g, py::handle y, double lo, double hi) {
    return binary(ew::Binary::hardtanh_backward, g, y, {lo, hi}, "hardtanh_backward");
  }, py::arg("grad"), py::arg("y"), py::arg("min_val"), py::arg("max_val"));
  m.def("softplus_backward", [](py::handle g, py::handle x, double beta, double threshold) {
    return binary(ew::Binary::softplus_backward, g, x, {beta, threshold}, "softplus_backward");
  }, py::arg("grad"), py::arg("x"), py::arg("beta"), py::arg("threshold"));

  static const char* const cmp_names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  for (int i = 0; i < int(ew::Compare::count); ++i) {
    const char* name = cmp_names[i];
    m.def(name, [i, name](py::handle a, py::handle b) {
      Operands ops;
      add_operand(ops, a, 0, name);
      add_operand(ops, b, 1, name);
      if (ops.dtype < 0) throw py::type_error(std::string(name) + ": expected a NumPy array operand");
      return run(ops, ew::kernel_table().compare[ops.dtype][i], {}, int64_t(1) << 15, name, true);
    }, py::arg("a"), py::arg("b"));
  }
  m.def("where", [](py::handle cond, py::handle a, py::handle b) {
    Operands ops;
    add_operand(ops, cond, 0, "where", true);
    add_operand(ops, a, 1, "where");
    add_operand(ops, b, 2, "where");
    if (ops.dtype < 0) throw py::type_error("where: expected a NumPy array operand");
    return run(ops, ew::kernel_table().where[ops.dtype], {}, int64_t(1) << 15, "where");
  }, py::arg("condition"), py::arg("a"), py::arg("b"));
}

}  // namespace pydl::bind
