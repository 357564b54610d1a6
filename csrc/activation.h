#pragma once
// Elementwise activations whose math NumPy lacks (erf for the exact GELU).
//
// gelu(x) = x * Phi(x), Phi(x) = (1 + erf(x / sqrt(2))) / 2 the standard normal CDF;
// gelu'(x) = Phi(x) + x * phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
// Contiguous buffers of n elements; y / dx may not alias the inputs. Threads: parallel_for.
#include <cstdint>

namespace pydl {

void gelu_forward_cpu(const float* x, float* y, int64_t n);
void gelu_forward_cpu(const double* x, double* y, int64_t n);
void gelu_backward_cpu(const float* grad, const float* x, float* dx, int64_t n);
void gelu_backward_cpu(const double* grad, const double* x, double* dx, int64_t n);

}  // namespace pydl
