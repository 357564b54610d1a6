#pragma once
// Overflow-checked int64 arithmetic for shape, element-count and byte-count computations.
//
// Sizes reach the kernels from Python, where integers are unbounded: a padding of 2**63 - 1 or a
// product of dimensions past 2**63 would otherwise wrap silently in int64 and give a wrong (even
// negative) output size, a short allocation, or an out-of-bounds write. Every size the bindings
// and shape code derive from user values goes through these helpers; on overflow they throw
// SizeOverflowError, which pybind11 turns into RuntimeError (PyTorch's error type for "Storage
// size calculation overflowed" and "value cannot be converted to type int64_t without overflow").
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>

namespace pydl {

// Not a std::overflow_error on purpose: pybind11 maps that to OverflowError, while PyTorch
// raises RuntimeError for the same conditions. A plain std::runtime_error subclass maps to it.
class SizeOverflowError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace checked_detail {
[[noreturn]] inline void fail(const char* what, const char* op, int64_t a, int64_t b) {
  throw SizeOverflowError(std::string(what) + ": " + std::to_string(a) + " " + op + " " +
                          std::to_string(b) + " overflows int64");
}
}  // namespace checked_detail

inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
#if defined(__GNUC__) || defined(__clang__)
  if (__builtin_add_overflow(a, b, &r)) checked_detail::fail(what, "+", a, b);
#else
  if ((b > 0 && a > std::numeric_limits<int64_t>::max() - b) ||
      (b < 0 && a < std::numeric_limits<int64_t>::min() - b))
    checked_detail::fail(what, "+", a, b);
  r = a + b;
#endif
  return r;
}

inline int64_t checked_sub(int64_t a, int64_t b, const char* what) {
  int64_t r;
#if defined(__GNUC__) || defined(__clang__)
  if (__builtin_sub_overflow(a, b, &r)) checked_detail::fail(what, "-", a, b);
#else
  if ((b < 0 && a > std::numeric_limits<int64_t>::max() + b) ||
      (b > 0 && a < std::numeric_limits<int64_t>::min() + b))
    checked_detail::fail(what, "-", a, b);
  r = a - b;
#endif
  return r;
}

inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
#if defined(__GNUC__) || defined(__clang__)
  if (__builtin_mul_overflow(a, b, &r)) checked_detail::fail(what, "*", a, b);
#else
  if (a != 0 && b != 0) {
    const int64_t hi = std::numeric_limits<int64_t>::max(), lo = std::numeric_limits<int64_t>::min();
    if ((a > 0 && b > 0 && a > hi / b) || (a < 0 && b < 0 && a < hi / b) ||
        (a > 0 && b < 0 && b < lo / a) || (a < 0 && b > 0 && a < lo / b))
      checked_detail::fail(what, "*", a, b);
  }
  r = a * b;
#endif
  return r;
}

// Product of non-negative dimensions; a zero anywhere gives 0 even if the others would overflow
// (as NumPy and PyTorch, an empty array of huge extent is fine).
template <class Range>
int64_t checked_numel(const Range& dims, const char* what) {
  int64_t n = 1;
  bool zero = false;
  for (auto d : dims) {
    if (int64_t(d) < 0)
      throw std::invalid_argument(std::string(what) + ": negative dimension " +
                                  std::to_string(int64_t(d)));
    if (d == 0) zero = true;
  }
  if (zero) return 0;
  for (auto d : dims) n = checked_mul(n, int64_t(d), what);
  return n;
}

inline int64_t checked_numel(std::initializer_list<int64_t> dims, const char* what) {
  return checked_numel<std::initializer_list<int64_t>>(dims, what);
}

// Bytes of `numel` elements of `itemsize` bytes (both non-negative), checked.
inline int64_t checked_bytes(int64_t numel, int64_t itemsize, const char* what) {
  return checked_mul(numel, itemsize, what);
}

// The span of a dilated window, dil * (kernel - 1) + 1, and a padded extent, in + 2 * pad.
inline int64_t checked_window_extent(int64_t kernel, int64_t dil, const char* what) {
  return checked_add(checked_mul(dil, checked_sub(kernel, 1, what), what), 1, what);
}

inline int64_t checked_padded_extent(int64_t in, int64_t pad, const char* what) {
  return checked_add(in, checked_mul(pad, 2, what), what);
}

// An element size the kernels know: 1, 2, 4 or 8 bytes (throws std::invalid_argument otherwise).
inline void check_itemsize(int64_t itemsize, const char* what) {
  if (itemsize != 1 && itemsize != 2 && itemsize != 4 && itemsize != 8)
    throw std::invalid_argument(std::string(what) + ": itemsize must be 1, 2, 4 or 8, got " +
                                std::to_string(itemsize));
}

}  // namespace pydl
