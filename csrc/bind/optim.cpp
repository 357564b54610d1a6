// Fused optimizer steps and gradient utilities:
// pydl._C.{sgd,adagrad,rmsprop,adam,adadelta,adamax,nadam,radam}_step,
// tensor_norms, scale_, clamp_, lerp_.
//
// Every function takes lists of NumPy arrays (one entry per parameter) and updates them in
// place, so the arrays are never converted or copied: each must already be float32 or float64
// (one dtype per call), C-contiguous and aligned, writable when it is written, and of the same
// shape as its parameter. A violation raises TypeError/ValueError naming the list, the index
// and the shapes, before any array is touched. The GIL is released during the update.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "bindings.h"
#include "optim.h"

namespace py = pybind11;

namespace pydl::bind {
namespace {

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s << (d ? ", " : "") << a.shape(d);
  if (a.ndim() == 1) s << ",";
  s << ")";
  return s.str();
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

enum class Dtype { kFloat32, kFloat64 };

// The arrays of one list argument, checked, with the Python objects kept alive.
struct ArrayList {
  std::vector<py::array> arrays;
};

py::array as_array(const char* op, const char* name, size_t i, const py::handle& item) {
  if (!py::isinstance<py::array>(item))
    throw py::type_error(std::string(op) + ": " + name + "[" + std::to_string(i) +
                         "] must be a NumPy array, got " +
                         py::str(py::type::handle_of(item).attr("__name__")).cast<std::string>());
  return py::reinterpret_borrow<py::array>(item);
}

// "op: name[i]", for error messages only: built when a check fails, never on the good path
// (one string per array per call cost ~1 us of a 200-tensor step's ~5 us per tensor).
std::string where_of(const char* op, const char* name, size_t i) {
  return std::string(op) + ": " + name + "[" + std::to_string(i) + "]";
}

void check_layout(const char* op, const char* name, size_t i, const py::array& a, bool writable) {
  const int flags = a.flags();
  constexpr int kNeed = py::array::c_style | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if ((flags & kNeed) == kNeed &&
      (!writable || (flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_)))
    return;
  const std::string where = where_of(op, name, i);
  if (!(flags & py::array::c_style))
    throw py::value_error(where + " (shape " + shape_str(a) +
                          ") must be C-contiguous; the kernel updates it in place");
  if (!(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error(where + " (shape " + shape_str(a) + ") is not aligned");
  throw py::value_error(where + " (shape " + shape_str(a) + ") is read-only");
}

Dtype dtype_of(const char* op, const char* name, const py::array& a) {
  if (py::isinstance<py::array_t<float>>(a)) return Dtype::kFloat32;
  if (py::isinstance<py::array_t<double>>(a)) return Dtype::kFloat64;
  throw py::type_error(std::string(op) + ": " + name +
                       "[0] must be float32 or float64, got " + dtype_str(a));
}

// The leading list: defines the count, the dtype and each entry's shape.
ArrayList leading_list(const char* op, const char* name, const py::sequence& seq, bool writable,
                       Dtype* dtype) {
  ArrayList out;
  const size_t n = seq.size();
  out.arrays.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    py::array a = as_array(op, name, i, seq[i]);
    if (i == 0) *dtype = dtype_of(op, name, a);
    out.arrays.push_back(a);
  }
  for (size_t i = 0; i < n; ++i) {
    const py::array& a = out.arrays[i];
    if (i > 0 && !a.dtype().equal(out.arrays[0].dtype()))
      throw py::type_error(std::string(op) + ": " + name + "[" + std::to_string(i) +
                           "] has dtype " + dtype_str(a) + " but " + name + "[0] has dtype " +
                           dtype_str(out.arrays[0]));
    check_layout(op, name, i, a, writable);
  }
  return out;
}

// A list that must match the leading one entry by entry (count, dtype, shape).
ArrayList matching_list(const char* op, const char* name, const py::sequence& seq,
                        const char* lead_name, const ArrayList& lead, bool writable) {
  const size_t n = lead.arrays.size();
  if (seq.size() != n)
    throw py::value_error(std::string(op) + ": " + name + " has " + std::to_string(seq.size()) +
                          " arrays but " + lead_name + " has " + std::to_string(n));
  ArrayList out;
  out.arrays.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    py::array a = as_array(op, name, i, seq[i]);
    const py::array& ref = lead.arrays[i];
    if (!a.dtype().equal(ref.dtype()))
      throw py::type_error(where_of(op, name, i) + " has dtype " + dtype_str(a) + " but " +
                           lead_name + "[" + std::to_string(i) + "] has dtype " + dtype_str(ref));
    bool same_shape = a.ndim() == ref.ndim();
    for (py::ssize_t d = 0; same_shape && d < a.ndim(); ++d)
      same_shape = a.shape(d) == ref.shape(d);
    if (!same_shape)
      throw py::value_error(where_of(op, name, i) + " has shape " + shape_str(a) + " but " +
                            lead_name + "[" + std::to_string(i) + "] has shape " +
                            shape_str(ref));
    check_layout(op, name, i, a, writable);
    out.arrays.push_back(a);
  }
  return out;
}

// One list of a call for the overlap check: its name and whether the kernel writes it.
struct Role {
  const char* name;
  const ArrayList* list;
  bool written;
};

// Refuses arrays that share memory where the kernel writes: two parameters over one storage (or
// one array listed twice) would be updated by two threads at once and lose updates, and a state
// buffer aliasing a parameter would be corrupted. Read-only arrays may overlap each other, and a
// read array may be exactly a written one (elementwise in place: each element reads then writes
// itself). The arrays are C-contiguous (checked before), so each is one byte interval; sorting
// them costs O(n log n) per call, nothing next to the update itself.
void check_no_overlap(const char* op, std::initializer_list<Role> roles) {
  struct Span {
    uintptr_t lo, hi;
    const char* name;
    size_t index;
    bool written;
  };
  std::vector<Span> written, read;
  for (const Role& r : roles) {
    for (size_t i = 0; i < r.list->arrays.size(); ++i) {
      const py::array& a = r.list->arrays[i];
      if (a.nbytes() == 0) continue;
      const auto lo = reinterpret_cast<uintptr_t>(a.data());
      (r.written ? written : read).push_back({lo, lo + uintptr_t(a.nbytes()), r.name, i, r.written});
    }
  }
  auto fail = [&](const Span& a, const Span& b) {
    throw py::value_error(std::string(op) + ": " + a.name + "[" + std::to_string(a.index) +
                          "] and " + b.name + "[" + std::to_string(b.index) +
                          "] share memory (the same array twice, or two parameters over one "
                          "storage); their in-place updates would race and lose updates. Pass "
                          "each storage once");
  };
  auto by_start = [](const Span& a, const Span& b) { return a.lo < b.lo; };
  std::sort(written.begin(), written.end(), by_start);
  for (size_t i = 1; i < written.size(); ++i)
    if (written[i].lo < written[i - 1].hi) fail(written[i - 1], written[i]);
  // Written spans are now disjoint and sorted: each read span can meet at most its neighbours.
  for (const Span& r : read) {
    auto it = std::upper_bound(written.begin(), written.end(), r, by_start);
    if (it != written.end() && it->lo < r.hi) fail(*it, r);
    if (it != written.begin()) {
      const Span& w = *(it - 1);
      if (w.hi > r.lo && !(w.lo == r.lo && w.hi == r.hi)) fail(w, r);
    }
  }
}

std::vector<int64_t> sizes_of(const ArrayList& l) {
  std::vector<int64_t> sizes;
  sizes.reserve(l.arrays.size());
  for (const auto& a : l.arrays) sizes.push_back(static_cast<int64_t>(a.size()));
  return sizes;
}

template <typename T>
std::vector<T*> mutable_ptrs(const ArrayList& l) {
  std::vector<T*> p;
  p.reserve(l.arrays.size());
  for (const auto& a : l.arrays) p.push_back(static_cast<T*>(const_cast<void*>(a.data())));
  return p;
}

template <typename T>
std::vector<const T*> const_ptrs(const ArrayList& l) {
  std::vector<const T*> p;
  p.reserve(l.arrays.size());
  for (const auto& a : l.arrays) p.push_back(static_cast<const T*>(a.data()));
  return p;
}

std::vector<double> float_list(const char* op, const char* name, const py::sequence& seq,
                               size_t n) {
  if (seq.size() != n)
    throw py::value_error(std::string(op) + ": " + name + " has " + std::to_string(seq.size()) +
                          " entries but params has " + std::to_string(n));
  std::vector<double> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(seq[i].cast<double>());
  return out;
}

// ---- the steps --------------------------------------------------------------------------------

void sgd_step(const py::sequence& params, const py::sequence& grads,
              const py::sequence& momentum_buffers, const py::sequence& init_buffer, double lr,
              double momentum, double dampening, double weight_decay, bool nesterov,
              bool maximize) {
  const char* op = "sgd_step";
  Dtype dt = Dtype::kFloat32;
  ArrayList p = leading_list(op, "params", params, true, &dt);
  ArrayList g = matching_list(op, "grads", grads, "params", p, false);
  ArrayList buf;
  std::vector<uint8_t> init;
  if (momentum != 0) {
    buf = matching_list(op, "momentum_buffers", momentum_buffers, "params", p, true);
    if (init_buffer.size() != p.arrays.size())
      throw py::value_error(std::string(op) + ": init_buffer has " +
                            std::to_string(init_buffer.size()) + " entries but params has " +
                            std::to_string(p.arrays.size()));
    for (size_t i = 0; i < init_buffer.size(); ++i) init.push_back(init_buffer[i].cast<bool>());
  }
  check_no_overlap(op, {{"params", &p, true}, {"grads", &g, false}, {"momentum_buffers", &buf, true}});
  SgdOptions opt;
  opt.lr = lr;
  opt.momentum = momentum;
  opt.dampening = dampening;
  opt.weight_decay = weight_decay;
  opt.nesterov = nesterov;
  opt.maximize = maximize;
  const std::vector<int64_t> sizes = sizes_of(p);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto pp = mutable_ptrs<T>(p);
    auto gp = const_ptrs<T>(g);
    auto bp = mutable_ptrs<T>(buf);
    py::gil_scoped_release release;
    sgd_step_cpu<T>(pp, gp, bp, init, sizes, opt);
  };
  if (dt == Dtype::kFloat32) run(float{});
  else run(double{});
}

void adagrad_step(const py::sequence& params, const py::sequence& grads,
                  const py::sequence& state_sums, const py::sequence& steps, double lr,
                  double lr_decay, double weight_decay, double eps, bool maximize) {
  const char* op = "adagrad_step";
  Dtype dt = Dtype::kFloat32;
  ArrayList p = leading_list(op, "params", params, true, &dt);
  ArrayList g = matching_list(op, "grads", grads, "params", p, false);
  ArrayList s = matching_list(op, "state_sums", state_sums, "params", p, true);
  check_no_overlap(op, {{"params", &p, true}, {"grads", &g, false}, {"state_sums", &s, true}});
  std::vector<double> st = float_list(op, "steps", steps, p.arrays.size());
  AdagradOptions opt;
  opt.lr = lr;
  opt.lr_decay = lr_decay;
  opt.weight_decay = weight_decay;
  opt.eps = eps;
  opt.maximize = maximize;
  const std::vector<int64_t> sizes = sizes_of(p);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto pp = mutable_ptrs<T>(p);
    auto gp = const_ptrs<T>(g);
    auto sp = mutable_ptrs<T>(s);
    py::gil_scoped_release release;
    adagrad_step_cpu<T>(pp, gp, sp, st, sizes, opt);
  };
  if (dt == Dtype::kFloat32) run(float{});
  else run(double{});
}

void rmsprop_step(const py::sequence& params, const py::sequence& grads,
                  const py::sequence& square_avgs, const py::sequence& grad_avgs,
                  const py::sequence& momentum_buffers, double lr, double alpha, double eps,
                  double weight_decay, double momentum, bool centered, bool maximize) {
  const char* op = "rmsprop_step";
  Dtype dt = Dtype::kFloat32;
  ArrayList p = leading_list(op, "params", params, true, &dt);
  ArrayList g = matching_list(op, "grads", grads, "params", p, false);
  ArrayList sq = matching_list(op, "square_avgs", square_avgs, "params", p, true);
  ArrayList ga, buf;
  if (centered) ga = matching_list(op, "grad_avgs", grad_avgs, "params", p, true);
  if (momentum > 0) buf = matching_list(op, "momentum_buffers", momentum_buffers, "params", p, true);
  check_no_overlap(op, {{"params", &p, true}, {"grads", &g, false}, {"square_avgs", &sq, true},
                       {"grad_avgs", &ga, true}, {"momentum_buffers", &buf, true}});
  RmspropOptions opt;
  opt.lr = lr;
  opt.alpha = alpha;
  opt.eps = eps;
  opt.weight_decay = weight_decay;
  opt.momentum = momentum;
  opt.centered = centered;
  opt.maximize = maximize;
  const std::vector<int64_t> sizes = sizes_of(p);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto pp = mutable_ptrs<T>(p);
    auto gp = const_ptrs<T>(g);
    auto sqp = mutable_ptrs<T>(sq);
    auto gap = mutable_ptrs<T>(ga);
    auto bp = mutable_ptrs<T>(buf);
    py::gil_scoped_release release;
    rmsprop_step_cpu<T>(pp, gp, sqp, gap, bp, sizes, opt);
  };
  if (dt == Dtype::kFloat32) run(float{});
  else run(double{});
}

void adam_step(const py::sequence& params, const py::sequence& grads,
               const py::sequence& exp_avgs, const py::sequence& exp_avg_sqs,
               const py::sequence& max_exp_avg_sqs, const py::sequence& steps, double lr,
               double beta1, double beta2, double eps, double weight_decay, bool amsgrad,
               bool maximize, bool decoupled_weight_decay) {
  const char* op = "adam_step";
  Dtype dt = Dtype::kFloat32;
  ArrayList p = leading_list(op, "params", params, true, &dt);
  ArrayList g = matching_list(op, "grads", grads, "params", p, false);
  ArrayList m = matching_list(op, "exp_avgs", exp_avgs, "params", p, true);
  ArrayList v = matching_list(op, "exp_avg_sqs", exp_avg_sqs, "params", p, true);
  ArrayList vmax;
  if (amsgrad) vmax = matching_list(op, "max_exp_avg_sqs", max_exp_avg_sqs, "params", p, true);
  check_no_overlap(op, {{"params", &p, true}, {"grads", &g, false}, {"exp_avgs", &m, true},
                       {"exp_avg_sqs", &v, true}, {"max_exp_avg_sqs", &vmax, true}});
  std::vector<double> st = float_list(op, "steps", steps, p.arrays.size());
  AdamOptions opt;
  opt.lr = lr;
  opt.beta1 = beta1;
  opt.beta2 = beta2;
  opt.eps = eps;
  opt.weight_decay = weight_decay;
  opt.amsgrad = amsgrad;
  opt.maximize = maximize;
  opt.decoupled_weight_decay = decoupled_weight_decay;
  const std::vector<int64_t> sizes = sizes_of(p);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto pp = mutable_ptrs<T>(p);
    auto gp = const_ptrs<T>(g);
    auto mp = mutable_ptrs<T>(m);
    auto vp = mutable_ptrs<T>(v);
    auto vmp = mutable_ptrs<T>(vmax);
    py::gil_scoped_release release;
    adam_step_cpu<T>(pp, gp, mp, vp, vmp, st, sizes, opt);
  };
  if (dt == Dtype::kFloat32) run(float{});
  else run(double{});
}

void adadelta_step(const py::sequence& params, const py::sequence& grads,
                   const py::sequence& square_avgs, const py::sequence& acc_deltas, double lr,
                   double rho, double eps, double weight_decay, bool maximize) {
  const char* op = "adadelta_step";
  Dtype dt = Dtype::kFloat32;
  ArrayList p = leading_list(op, "params", params, true, &dt);
  ArrayList g = matching_list(op, "grads", grads, "params", p, false);
  ArrayList sq = matching_list(op, "square_avgs", square_avgs, "params", p, true);
  ArrayList acc = matching_list(op, "acc_deltas", acc_deltas, "params", p, true);
  check_no_overlap(op, {{"params", &p, true}, {"grads", &g, false}, {"square_avgs", &sq, true},
                       {"acc_deltas", &acc, true}});
  AdadeltaOptions opt;
  opt.lr = lr;
  opt.rho = rho;
  opt.eps = eps;
  opt.weight_decay = weight_decay;
  opt.maximize = maximize;
  const std::vector<int64_t> sizes = sizes_of(p);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto pp = mutable_ptrs<T>(p);
    auto gp = const_ptrs<T>(g);
    auto sqp = mutable_ptrs<T>(sq);
    auto ap = mutable_ptrs<T>(acc);
    py::gil_scoped_release release;
    adadelta_step_cpu<T>(pp, gp, sqp, ap, sizes, opt);
  };
  if (dt == Dtype::kFloat32) run(float{});
  else run(double{});
}

void adamax_step(const py::sequence& params, const py::sequence& grads,
                 const py::sequence& exp_avgs, const py::sequence& exp_infs,
                 const py::sequence& steps, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool maximize) {
  const char* op = "adamax_step";
  Dtype dt = Dtype::kFloat32;
  ArrayList p = leading_list(op, "params", params, true, &dt);
  ArrayList g = matching_list(op, "grads", grads, "params", p, false);
  ArrayList m = matching_list(op, "exp_avgs", exp_avgs, "params", p, true);
  ArrayList u = matching_list(op, "exp_infs", exp_infs, "params", p, true);
  check_no_overlap(op, {{"params", &p, true}, {"grads", &g, false}, {"exp_avgs", &m, true},
                       {"exp_infs", &u, true}});
  std::vector<double> st = float_list(op, "steps", steps, p.arrays.size());
  AdamaxOptions opt;
  opt.lr = lr;
  opt.beta1 = beta1;
  opt.beta2 = beta2;
  opt.eps = eps;
  opt.weight_decay = weight_decay;
  opt.maximize = maximize;
  const std::vector<int64_t> sizes = sizes_of(p);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto pp = mutable_ptrs<T>(p);
    auto gp = const_ptrs<T>(g);
    auto mp = mutable_ptrs<T>(m);
    auto up = mutable_ptrs<T>(u);
    py::gil_scoped_release release;
    adamax_step_cpu<T>(pp, gp, mp, up, st, sizes, opt);
  };
  if (dt == Dtype::kFloat32) run(float{});
  else run(double{});
}

// NAdam (mu_products given) and RAdam share their arguments but for mu_products.
void nadam_radam_step(bool nadam, const py::sequence& params, const py::sequence& grads,
                      const py::sequence& exp_avgs, const py::sequence& exp_avg_sqs,
                      const py::sequence& steps, const py::sequence* mu_products, double lr,
                      double beta1, double beta2, double eps, double weight_decay,
                      double momentum_decay, bool maximize, bool decoupled_weight_decay) {
  const char* op = nadam ? "nadam_step" : "radam_step";
  Dtype dt = Dtype::kFloat32;
  ArrayList p = leading_list(op, "params", params, true, &dt);
  ArrayList g = matching_list(op, "grads", grads, "params", p, false);
  ArrayList m = matching_list(op, "exp_avgs", exp_avgs, "params", p, true);
  ArrayList v = matching_list(op, "exp_avg_sqs", exp_avg_sqs, "params", p, true);
  std::vector<double> st = float_list(op, "steps", steps, p.arrays.size());
  std::vector<double> mus;
  check_no_overlap(op, {{"params", &p, true}, {"grads", &g, false}, {"exp_avgs", &m, true},
                       {"exp_avg_sqs", &v, true}});
  if (nadam) mus = float_list(op, "mu_products", *mu_products, p.arrays.size());
  const std::vector<int64_t> sizes = sizes_of(p);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto pp = mutable_ptrs<T>(p);
    auto gp = const_ptrs<T>(g);
    auto mp = mutable_ptrs<T>(m);
    auto vp = mutable_ptrs<T>(v);
    py::gil_scoped_release release;
    if (nadam) {
      NadamOptions opt;
      opt.lr = lr;
      opt.beta1 = beta1;
      opt.beta2 = beta2;
      opt.eps = eps;
      opt.weight_decay = weight_decay;
      opt.momentum_decay = momentum_decay;
      opt.maximize = maximize;
      opt.decoupled_weight_decay = decoupled_weight_decay;
      nadam_step_cpu<T>(pp, gp, mp, vp, st, mus, sizes, opt);
    } else {
      RadamOptions opt;
      opt.lr = lr;
      opt.beta1 = beta1;
      opt.beta2 = beta2;
      opt.eps = eps;
      opt.weight_decay = weight_decay;
      opt.maximize = maximize;
      opt.decoupled_weight_decay = decoupled_weight_decay;
      radam_step_cpu<T>(pp, gp, mp, vp, st, sizes, opt);
    }
  };
  if (dt == Dtype::kFloat32) run(float{});
  else run(double{});
}

void nadam_step(const py::sequence& params, const py::sequence& grads,
                const py::sequence& exp_avgs, const py::sequence& exp_avg_sqs,
                const py::sequence& steps, const py::sequence& mu_products, double lr,
                double beta1, double beta2, double eps, double weight_decay,
                double momentum_decay, bool maximize, bool decoupled_weight_decay) {
  nadam_radam_step(true, params, grads, exp_avgs, exp_avg_sqs, steps, &mu_products, lr, beta1,
                   beta2, eps, weight_decay, momentum_decay, maximize, decoupled_weight_decay);
}

void radam_step(const py::sequence& params, const py::sequence& grads,
                const py::sequence& exp_avgs, const py::sequence& exp_avg_sqs,
                const py::sequence& steps, double lr, double beta1, double beta2, double eps,
                double weight_decay, bool maximize, bool decoupled_weight_decay) {
  nadam_radam_step(false, params, grads, exp_avgs, exp_avg_sqs, steps, nullptr, lr, beta1, beta2,
                   eps, weight_decay, 0.0, maximize, decoupled_weight_decay);
}

// ---- gradient utilities ------------------------------------------------------------------------

std::vector<double> tensor_norms(const py::sequence& tensors, double norm_type) {
  Dtype dt = Dtype::kFloat32;
  ArrayList x = leading_list("tensor_norms", "tensors", tensors, false, &dt);
  const std::vector<int64_t> sizes = sizes_of(x);
  if (dt == Dtype::kFloat32) {
    auto xp = const_ptrs<float>(x);
    py::gil_scoped_release release;
    return tensor_norms_cpu<float>(xp, sizes, norm_type);
  }
  auto xp = const_ptrs<double>(x);
  py::gil_scoped_release release;
  return tensor_norms_cpu<double>(xp, sizes, norm_type);
}

void scale_(const py::sequence& tensors, double factor) {
  Dtype dt = Dtype::kFloat32;
  ArrayList x = leading_list("scale_", "tensors", tensors, true, &dt);
  check_no_overlap("scale_", {{"tensors", &x, true}});
  const std::vector<int64_t> sizes = sizes_of(x);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto xp = mutable_ptrs<T>(x);
    py::gil_scoped_release release;
    scale_cpu<T>(xp, sizes, factor);
  };
  if (dt == Dtype::kFloat32) run(float{});
  else run(double{});
}

void clamp_(const py::sequence& tensors, double lo, double hi) {
  Dtype dt = Dtype::kFloat32;
  ArrayList x = leading_list("clamp_", "tensors", tensors, true, &dt);
  check_no_overlap("clamp_", {{"tensors", &x, true}});
  const std::vector<int64_t> sizes = sizes_of(x);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto xp = mutable_ptrs<T>(x);
    py::gil_scoped_release release;
    clamp_cpu<T>(xp, sizes, lo, hi);
  };
  if (dt == Dtype::kFloat32) run(float{});
  else run(double{});
}

void lerp_(const py::sequence& targets, const py::sequence& sources, double weight) {
  Dtype dt = Dtype::kFloat32;
  ArrayList a = leading_list("lerp_", "targets", targets, true, &dt);
  ArrayList b = matching_list("lerp_", "sources", sources, "targets", a, false);
  check_no_overlap("lerp_", {{"targets", &a, true}, {"sources", &b, false}});
  const std::vector<int64_t> sizes = sizes_of(a);
  auto run = [&](auto tag) {
    using T = decltype(tag);
    auto ap = mutable_ptrs<T>(a);
    auto bp = const_ptrs<T>(b);
    py::gil_scoped_release release;
    lerp_cpu<T>(ap, bp, sizes, weight);
  };
  if (dt == Dtype::kFloat32) run(float{});
  else run(double{});
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_step", &sgd_step, py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"),
        py::arg("init_buffer"), py::kw_only(), py::arg("lr"), py::arg("momentum"),
        py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("maximize"),
        "Fused SGD step over lists of arrays, in place. init_buffer[i]: the momentum buffer i "
        "is new and takes the gradient (PyTorch's first momentum step).");
  m.def("adagrad_step", &adagrad_step, py::arg("params"), py::arg("grads"),
        py::arg("state_sums"), py::arg("steps"), py::kw_only(), py::arg("lr"),
        py::arg("lr_decay"), py::arg("weight_decay"), py::arg("eps"), py::arg("maximize"),
        "Fused AdaGrad step; steps[i] is parameter i's step count after this step.");
  m.def("rmsprop_step", &rmsprop_step, py::arg("params"), py::arg("grads"),
        py::arg("square_avgs"), py::arg("grad_avgs"), py::arg("momentum_buffers"),
        py::kw_only(), py::arg("lr"), py::arg("alpha"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("momentum"), py::arg("centered"), py::arg("maximize"),
        "Fused RMSprop step; grad_avgs used when centered, momentum_buffers when momentum > 0.");
  m.def("adam_step", &adam_step, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"), py::arg("steps"), py::kw_only(),
        py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("amsgrad"), py::arg("maximize"),
        py::arg("decoupled_weight_decay"),
        "Fused Adam/AdamW step; steps[i] is parameter i's step count after this step.");
  m.def("adadelta_step", &adadelta_step, py::arg("params"), py::arg("grads"),
        py::arg("square_avgs"), py::arg("acc_deltas"), py::kw_only(), py::arg("lr"),
        py::arg("rho"), py::arg("eps"), py::arg("weight_decay"), py::arg("maximize"),
        "Fused Adadelta step over lists of arrays, in place.");
  m.def("adamax_step", &adamax_step, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_infs"), py::arg("steps"), py::kw_only(), py::arg("lr"), py::arg("beta1"),
        py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("maximize"),
        "Fused Adamax step; steps[i] is parameter i's step count after this step.");
  m.def("nadam_step", &nadam_step, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_avg_sqs"), py::arg("steps"), py::arg("mu_products"), py::kw_only(),
        py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
        py::arg("weight_decay"), py::arg("momentum_decay"), py::arg("maximize"),
        py::arg("decoupled_weight_decay"),
        "Fused NAdam step; mu_products[i] is mu_1...mu_t including this step's mu_t.");
  m.def("radam_step", &radam_step, py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_avg_sqs"), py::arg("steps"), py::kw_only(), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
        py::arg("maximize"), py::arg("decoupled_weight_decay"),
        "Fused RAdam step; steps[i] is parameter i's step count after this step.");
  m.def("tensor_norms", &tensor_norms, py::arg("tensors"), py::arg("norm_type"),
        "Per-array vector norms (double accumulation) as a list of floats.");
  m.def("scale_", &scale_, py::arg("tensors"), py::arg("factor"), "x *= factor for every array");
  m.def("clamp_", &clamp_, py::arg("tensors"), py::arg("min"), py::arg("max"),
        "x = min(max(x, min), max) for every array, NaN kept");
  m.def("lerp_", &lerp_, py::arg("targets"), py::arg("sources"), py::arg("weight"),
        "a = a + weight * (b - a) for every pair (PyTorch's lerp)");
}

}  // namespace pydl::bind
