// Exact GELU forward and backward with the C library's erf (correctly rounded to ~1 ulp).
#include "activation.h"

#include <cmath>

#include "parallel.h"

namespace pydl {
namespace {

// Below this many elements a thread hand-off costs more than the work.
constexpr int64_t kGrain = 1 << 14;

template <typename T>
void gelu_forward(const T* x, T* y, int64_t n) {
  const T inv_sqrt2 = T(0.70710678118654752440);
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T v = x[i];
      y[i] = v * T(0.5) * (T(1) + std::erf(v * inv_sqrt2));
    }
  });
}

template <typename T>
void gelu_backward(const T* grad, const T* x, T* dx, int64_t n) {
  const T inv_sqrt2 = T(0.70710678118654752440);
  const T inv_sqrt_2pi = T(0.39894228040143267794);
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const T v = x[i];
      const T cdf = T(0.5) * (T(1) + std::erf(v * inv_sqrt2));
      const T pdf = std::exp(T(-0.5) * v * v) * inv_sqrt_2pi;
      dx[i] = grad[i] * (cdf + v * pdf);
    }
  });
}

}  // namespace

void gelu_forward_cpu(const float* x, float* y, int64_t n) { gelu_forward(x, y, n); }
void gelu_forward_cpu(const double* x, double* y, int64_t n) { gelu_forward(x, y, n); }
void gelu_backward_cpu(const float* grad, const float* x, float* dx, int64_t n) {
  gelu_backward(grad, x, dx, n);
}
void gelu_backward_cpu(const double* grad, const double* x, double* dx, int64_t n) {
  gelu_backward(grad, x, dx, n);
}

}  // namespace pydl
