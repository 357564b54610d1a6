// pydl._C.gemm and pydl._C.matmul: NumPy arrays in, csrc/gemm.h out.
//
// A matrix operand is passed to the kernel without copying whenever one of its two strides is
// one element: unit column stride reads it row-major with the row stride as leading dimension;
// unit row stride (a transposed view) reads it as the transpose of a row-major matrix, which
// flips the kernel's trans flag. Anything else (both strides > 1, negative or misaligned) is
// copied to C order first. Batch dimensions may have any element stride; broadcast ones get 0.
#include <pybind11/numpy.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "bindings.h"
#include "host_array.h"
#include "gemm.h"

namespace py = pybind11;

namespace pydl::bind {
namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::vector<int64_t> shape_of(const py::array& x) {
  return std::vector<int64_t>(x.shape(), x.shape() + x.ndim());
}

std::string dtype_str(const py::array& x) { return py::str(x.dtype()).cast<std::string>(); }

enum class DType { f32, f64 };

// a and b (and c when given) must be float32 or float64 ndarrays of one dtype.
py::array as_array(const py::object& obj, const char* fn, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(fn) + ": " + name + " must be a numpy.ndarray, got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  return py::reinterpret_borrow<py::array>(obj);
}

DType check_dtypes(const char* fn, const py::array& a, const py::array& b, const py::array* c) {
  const bool a32 = py::array_t<float>::check_(a), a64 = py::array_t<double>::check_(a);
  const bool b32 = py::array_t<float>::check_(b), b64 = py::array_t<double>::check_(b);
  bool ok = (a32 && b32) || (a64 && b64);
  if (ok && c != nullptr)
    ok = a32 ? py::array_t<float>::check_(*c) : py::array_t<double>::check_(*c);
  if (!ok) {
    std::string msg = std::string(fn) +
                      ": arrays must all be float32 or all float64 (native byte order), got "
                      "a.dtype=" + dtype_str(a) + ", b.dtype=" + dtype_str(b);
    if (c != nullptr) msg += ", c.dtype=" + dtype_str(*c);
    throw py::type_error(msg);
  }
  return a32 ? DType::f32 : DType::f64;
}

// How the kernel reads the last two dimensions (rows x cols) of an array.
struct MatrixLayout {
  bool direct = false;  // readable without a copy
  bool flip = false;    // stored as the transpose of a row-major matrix
  int64_t ld = 1;       // leading dimension in elements
};

MatrixLayout matrix_layout(const py::array& x) {
  const int64_t nd = x.ndim(), item = x.itemsize();
  const int64_t rows = x.shape(nd - 2), cols = x.shape(nd - 1);
  const int64_t s_row = x.strides(nd - 2), s_col = x.strides(nd - 1);
  MatrixLayout out;
  if (x.size() == 0) {  // nothing is read (and NumPy may give empty arrays any strides)
    out.direct = true;
    out.ld = std::max<int64_t>(cols, 1);
    return out;
  }
  if (reinterpret_cast<uintptr_t>(x.data()) % item != 0) return out;
  auto usable = [&](int64_t s) { return s >= 0 && s % item == 0; };
  // A dimension of size <= 1 is never stepped along, so its stride does not matter.
  if (cols <= 1 || s_col == item) {
    if (rows <= 1) {
      out.direct = true;
      out.ld = std::max<int64_t>(cols, 1);
      return out;
    }
    if (usable(s_row)) {
      out.direct = true;
      out.ld = s_row / item;
      return out;
    }
  }
  if (rows <= 1 || s_row == item) {
    if (usable(s_col)) {
      out.direct = true;
      out.flip = true;
      out.ld = s_col / item;
    }
  }
  return out;
}

// Batch dimensions must be whole elements apart (any sign) for the kernel's element strides.
bool batch_strides_usable(const py::array& x) {
  for (int64_t d = 0; d + 2 < x.ndim(); ++d)
    if (x.shape(d) > 1 && x.strides(d) % x.itemsize() != 0) return false;
  return true;
}

// The operand itself, or a C-ordered copy (fresh, so also aligned) when its layout cannot be
// read directly.
py::array readable(py::array x, MatrixLayout& layout) {
  layout = matrix_layout(x);
  if (layout.direct && batch_strides_usable(x)) return x;
  py::array copy = x.attr("copy")("C").cast<py::array>();
  layout = matrix_layout(copy);
  if (!layout.direct) throw std::runtime_error("gemm: internal error, a C-ordered copy is unreadable");
  return copy;
}

// Byte range [lo, hi) spanned by an array's elements (empty arrays span nothing).
struct Extent {
  uintptr_t lo = 0, hi = 0;
};

Extent extent_of(const py::array& x) {
  Extent e;
  for (int64_t d = 0; d < x.ndim(); ++d)
    if (x.shape(d) == 0) return e;
  intptr_t lo = 0, hi = 0;
  for (int64_t d = 0; d < x.ndim(); ++d) {
    intptr_t span = static_cast<intptr_t>(x.shape(d) - 1) * x.strides(d);
    (span < 0 ? lo : hi) += span;
  }
  auto base = reinterpret_cast<intptr_t>(x.data());
  e.lo = static_cast<uintptr_t>(base + lo);
  e.hi = static_cast<uintptr_t>(base + hi + x.itemsize());
  return e;
}

bool overlaps(const py::array& x, const py::array& y) {
  Extent ex = extent_of(x), ey = extent_of(y);
  return ex.lo < ex.hi && ey.lo < ey.hi && ex.lo < ey.hi && ey.lo < ex.hi;
}

template <typename T>
void call_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
               int64_t lda, const void* b, int64_t ldb, double beta, void* c, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>) {
    sgemm(ta, tb, m, n, k, static_cast<float>(alpha), static_cast<const float*>(a), lda,
          static_cast<const float*>(b), ldb, static_cast<float>(beta), static_cast<float*>(c),
          ldc);
  } else {
    dgemm(ta, tb, m, n, k, alpha, static_cast<const double*>(a), lda,
          static_cast<const double*>(b), ldb, beta, static_cast<double*>(c), ldc);
  }
}

py::array gemm_py(const py::object& a_obj, const py::object& b_obj, const py::object& c_obj,
                  double alpha, double beta, bool trans_a, bool trans_b) {
  py::array a = as_array(a_obj, "gemm", "a");
  py::array b = as_array(b_obj, "gemm", "b");
  const bool have_c = !c_obj.is_none();
  py::array c = have_c ? as_array(c_obj, "gemm", "c") : py::array();
  const DType dtype = check_dtypes("gemm", a, b, have_c ? &c : nullptr);
  if (a.ndim() != 2 || b.ndim() != 2)
    throw py::value_error("gemm: a and b must be 2-D, got shapes " + shape_str(shape_of(a)) +
                          " and " + shape_str(shape_of(b)) + " (use matmul for batches)");
  const int64_t m = trans_a ? a.shape(1) : a.shape(0), k = trans_a ? a.shape(0) : a.shape(1);
  const int64_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
  if (k != kb)
    throw py::value_error("gemm: op(a) is " + shape_str({m, k}) + " but op(b) is " +
                          shape_str({kb, n}) + ": inner dimensions " + std::to_string(k) +
                          " and " + std::to_string(kb) + " differ");

  int64_t ldc = std::max<int64_t>(n, 1);
  if (have_c) {
    if (c.ndim() != 2 || c.shape(0) != m || c.shape(1) != n)
      throw py::value_error("gemm: c has shape " + shape_str(shape_of(c)) + " but op(a) @ op(b) is " +
                            shape_str({m, n}));
    if (!c.writeable()) throw py::value_error("gemm: c is read-only");
    const int64_t item = c.itemsize();
    if (reinterpret_cast<uintptr_t>(c.data()) % item != 0)
      throw py::value_error("gemm: c is not aligned to its element size (" +
                            std::to_string(item) + " bytes)");
    // (An empty c is never written, and NumPy may give it any strides.)
    const bool unit_cols = c.size() == 0 || n <= 1 || c.strides(1) == item;
    const bool rows_ok = c.size() == 0 || m <= 1 ||
                         (c.strides(0) % item == 0 && c.strides(0) >= n * item);
    if (!unit_cols || !rows_ok)
      throw py::value_error("gemm: c must have unit stride along its last dimension and rows that "
                            "do not overlap (like a C-contiguous array or a row slice of one); "
                            "got strides (" + std::to_string(c.strides(0)) + ", " +
                            std::to_string(c.strides(1)) + ")");
    if (m > 1 && c.size() > 0) ldc = c.strides(0) / item;
    // C is written while A and B are read: never let them share memory.
    if (overlaps(a, c)) a = a.attr("copy")().cast<py::array>();
    if (overlaps(b, c)) b = b.attr("copy")().cast<py::array>();
  } else {
    c = dtype == DType::f32 ? py::array(empty_array<float>({m, n}))
                            : py::array(empty_array<double>({m, n}));
    beta = 0.0;
  }

  MatrixLayout la, lb;
  a = readable(a, la);
  b = readable(b, lb);
  const bool ta = trans_a != la.flip, tb = trans_b != lb.flip;
  const void* a_ptr = a.data();
  const void* b_ptr = b.data();
  void* c_ptr = c.mutable_data();
  {
    py::gil_scoped_release release;
    if (dtype == DType::f32)
      call_gemm<float>(ta, tb, m, n, k, alpha, a_ptr, la.ld, b_ptr, lb.ld, beta, c_ptr, ldc);
    else
      call_gemm<double>(ta, tb, m, n, k, alpha, a_ptr, la.ld, b_ptr, lb.ld, beta, c_ptr, ldc);
  }
  return c;
}

py::array matmul_py(const py::object& a_obj, const py::object& b_obj, bool trans_a,
                    bool trans_b) {
  py::array a = as_array(a_obj, "matmul", "a");
  py::array b = as_array(b_obj, "matmul", "b");
  const DType dtype = check_dtypes("matmul", a, b, nullptr);
  if (a.ndim() < 2 || b.ndim() < 2)
    throw py::value_error("matmul: a and b must have at least 2 dimensions, got shapes " +
                          shape_str(shape_of(a)) + " and " + shape_str(shape_of(b)));
  const int64_t na = a.ndim(), nb = b.ndim();
  const int64_t m = trans_a ? a.shape(na - 1) : a.shape(na - 2);
  const int64_t k = trans_a ? a.shape(na - 2) : a.shape(na - 1);
  const int64_t kb = trans_b ? b.shape(nb - 1) : b.shape(nb - 2);
  const int64_t n = trans_b ? b.shape(nb - 2) : b.shape(nb - 1);
  if (k != kb)
    throw py::value_error("matmul: a has shape " + shape_str(shape_of(a)) + " and b has shape " +
                          shape_str(shape_of(b)) + " (trans_a=" + (trans_a ? "True" : "False") +
                          ", trans_b=" + (trans_b ? "True" : "False") + "): inner dimensions " +
                          std::to_string(k) + " and " + std::to_string(kb) + " differ");

  MatrixLayout la, lb;
  a = readable(a, la);
  b = readable(b, lb);

  // Broadcast the batch dimensions, aligned from the right as NumPy does.
  const int64_t batch_nd = std::max(na, nb) - 2;
  std::vector<int64_t> batch_shape(batch_nd), a_strides(batch_nd), b_strides(batch_nd);
  for (int64_t d = 0; d < batch_nd; ++d) {
    const int64_t da = d - (batch_nd - (na - 2)), db = d - (batch_nd - (nb - 2));
    const int64_t sa = da >= 0 ? a.shape(da) : 1, sb = db >= 0 ? b.shape(db) : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      std::vector<int64_t> ba(a.shape(), a.shape() + na - 2), bb(b.shape(), b.shape() + nb - 2);
      throw py::value_error("matmul: batch dimensions " + shape_str(ba) + " of a and " +
                            shape_str(bb) + " of b cannot be broadcast together");
    }
    batch_shape[d] = sa == 1 ? sb : sa;
    a_strides[d] = sa == 1 ? 0 : a.strides(da) / a.itemsize();
    b_strides[d] = sb == 1 ? 0 : b.strides(db) / b.itemsize();
  }

  std::vector<int64_t> out_shape = batch_shape;
  out_shape.push_back(m);
  out_shape.push_back(n);
  py::array c = dtype == DType::f32 ? py::array(empty_array_like_shape<float>(out_shape))
                                    : py::array(empty_array_like_shape<double>(out_shape));
  std::vector<int64_t> c_strides(batch_nd);
  for (int64_t d = 0; d < batch_nd; ++d) c_strides[d] = c.strides(d) / c.itemsize();
  const int64_t ldc = std::max<int64_t>(n, 1);
  const bool ta = trans_a != la.flip, tb = trans_b != lb.flip;
  const void* a_ptr = a.data();
  const void* b_ptr = b.data();
  void* c_ptr = c.mutable_data();
  {
    py::gil_scoped_release release;
    if (dtype == DType::f32) {
      sgemm_batched(ta, tb, m, n, k, 1.0f, static_cast<const float*>(a_ptr), la.ld,
                    static_cast<const float*>(b_ptr), lb.ld, 0.0f, static_cast<float*>(c_ptr),
                    ldc, batch_nd, batch_shape.data(), a_strides.data(), b_strides.data(),
                    c_strides.data());
    } else {
      dgemm_batched(ta, tb, m, n, k, 1.0, static_cast<const double*>(a_ptr), la.ld,
                    static_cast<const double*>(b_ptr), lb.ld, 0.0, static_cast<double*>(c_ptr),
                    ldc, batch_nd, batch_shape.data(), a_strides.data(), b_strides.data(),
                    c_strides.data());
    }
  }
  return c;
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("gemm", &gemm_py, py::arg("a"), py::arg("b"), py::arg("c") = py::none(),
        py::arg("alpha") = 1.0, py::arg("beta") = 0.0, py::arg("trans_a") = false,
        py::arg("trans_b") = false,
        "C = alpha * op(a) @ op(b) + beta * c for 2-D float32/float64 arrays, op = identity or "
        "transpose (trans_a, trans_b). With c given (writable, shape (m, n), unit stride along "
        "its rows) it is updated in place and returned; with c=None a new (m, n) array is "
        "returned and beta is ignored. Strided and transposed views are read without copying.");
  m.def("matmul", &matmul_py, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false,
        "Batched op(a) @ op(b) for (..., m, k) @ (..., k, n) with NumPy broadcasting of the "
        "batch dimensions; trans_a / trans_b transpose the last two dimensions of a / b. "
        "Inputs need ndim >= 2. Returns a new C-contiguous array.");
}

}  // namespace pydl::bind
