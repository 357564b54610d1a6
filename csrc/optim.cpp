// Fused multi-tensor optimizer steps: the drivers. They check the lists, compute the per-tensor
// scalars in double, split all elements of all tensors over the threads, and run the element
// kernels of csrc/optim_kernels.h (AVX2+FMA when use_avx2(), else the portable path).
//
// Napkin math (Adam, float32): each parameter reads p, g, m, v and writes p, m, v: 28 bytes and
// ~15 flops with one sqrt and two divisions, so at 30-45 GB/s a step is memory-bound once the
// tensors leave cache (10M parameters: 280 MB, ~7 ms). The AVX2 path keeps the arithmetic
// (about 2 cycles per element with 8-wide sqrt/div) well under the memory time.
#include "optim.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "cpu_features.h"
#include "optim_kernels.h"
#include "parallel.h"

namespace pydl {
namespace {

using optim_kernels::AdadeltaCoeffs;
using optim_kernels::AdagradCoeffs;
using optim_kernels::AdamaxCoeffs;
using optim_kernels::AdamCoeffs;
using optim_kernels::NadamCoeffs;
using optim_kernels::RadamCoeffs;
using optim_kernels::LerpCoeffs;
using optim_kernels::RmspropCoeffs;
using optim_kernels::Scalar;
using optim_kernels::SgdCoeffs;

// Elements per thread at the least: below ~32K elements (128 KiB of float32) a wake-up of the
// pool costs more than the arithmetic it would split.
constexpr int64_t kGrain = 1 << 15;

bool simd_enabled() {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  return use_avx2();
#else
  return false;
#endif
}

void check_list(const char* op, const char* name, size_t got, size_t n_tensors) {
  if (got != n_tensors)
    throw std::invalid_argument(std::string(op) + ": " + name + " has " + std::to_string(got) +
                                " entries but there are " + std::to_string(n_tensors) +
                                " tensors");
}

void check_sizes(const char* op, const std::vector<int64_t>& sizes) {
  for (size_t i = 0; i < sizes.size(); ++i)
    if (sizes[i] < 0)
      throw std::invalid_argument(std::string(op) + ": sizes[" + std::to_string(i) +
                                  "] is negative (" + std::to_string(sizes[i]) + ")");
}

template <typename P>
P* at(P* ptr, int64_t offset) {
  return ptr == nullptr ? nullptr : ptr + offset;
}

std::vector<int64_t> prefix_offsets(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> offsets(sizes.size() + 1, 0);
  for (size_t t = 0; t < sizes.size(); ++t) offsets[t + 1] = offsets[t] + sizes[t];
  return offsets;
}

// Calls fn(t, begin, end) for each piece [begin, end) of tensor t inside [lo, hi) of the
// concatenation of all tensors.
template <typename Fn>
void visit_range(const std::vector<int64_t>& offsets, int64_t lo, int64_t hi, const Fn& fn) {
  const int64_t n_tensors = static_cast<int64_t>(offsets.size()) - 1;
  int64_t t = std::upper_bound(offsets.begin(), offsets.end(), lo) - offsets.begin() - 1;
  for (; t < n_tensors && offsets[t] < hi; ++t) {
    int64_t begin = std::max(lo, offsets[t]) - offsets[t];
    int64_t end = std::min(hi, offsets[t + 1]) - offsets[t];
    if (begin < end) fn(t, begin, end);
  }
}

// Splits all elements of all tensors evenly over the threads (across tensor boundaries) and
// calls fn(t, begin, end) on every piece.
// Each split point is moved up to a multiple of kSegmentAlign elements from the start of the
// tensor it falls in, so every piece of a tensor starts where a SIMD block would start anyway:
// the blocks and the scalar tail (whose rounding differs from the vector body's, e.g. FMA or
// not) are the same for every thread count, and so are the bits of the result.
constexpr int64_t kSegmentAlign = 16;

template <typename Fn>
void for_each_segment(const std::vector<int64_t>& sizes, const Fn& fn) {
  std::vector<int64_t> offsets = prefix_offsets(sizes);
  const int64_t total = offsets.back();
  auto aligned = [&](int64_t x) {
    if (x >= total) return total;
    const int64_t t = std::upper_bound(offsets.begin(), offsets.end(), x) - offsets.begin() - 1;
    const int64_t local = (x - offsets[t] + kSegmentAlign - 1) / kSegmentAlign * kSegmentAlign;
    return offsets[t] + std::min(local, offsets[t + 1] - offsets[t]);
  };
  parallel_for(total, kGrain, [&](int64_t lo, int64_t hi) {
    visit_range(offsets, aligned(lo), aligned(hi), fn);
  });
}

template <typename T>
LerpCoeffs<T> lerp_coeffs(double weight) {
  LerpCoeffs<T> c;
  c.weight = static_cast<T>(weight);
  c.one_minus_weight = T(1) - c.weight;
  c.small = std::abs(weight) < 0.5;
  return c;
}

// ---- portable / AVX2 dispatch of one segment ----------------------------------------------

template <typename T>
void sgd_segment(bool simd, const SgdCoeffs<T>& c, T* p, const T* g, T* buf, int64_t n) {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (simd) return optim_avx2::sgd_segment(c, p, g, buf, n);
#endif
  optim_kernels::sgd_segment<Scalar<T>>(c, p, g, buf, n);
}

template <typename T>
void adagrad_segment(bool simd, const AdagradCoeffs<T>& c, T* p, const T* g, T* sum, int64_t n) {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (simd) return optim_avx2::adagrad_segment(c, p, g, sum, n);
#endif
  optim_kernels::adagrad_segment<Scalar<T>>(c, p, g, sum, n);
}

template <typename T>
void rmsprop_segment(bool simd, const RmspropCoeffs<T>& c, T* p, const T* g, T* sq, T* ga,
                     T* buf, int64_t n) {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (simd) return optim_avx2::rmsprop_segment(c, p, g, sq, ga, buf, n);
#endif
  optim_kernels::rmsprop_segment<Scalar<T>>(c, p, g, sq, ga, buf, n);
}

template <typename T>
void adam_segment(bool simd, const AdamCoeffs<T>& c, T* p, const T* g, T* m, T* v, T* vmax,
                  int64_t n) {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (simd) return optim_avx2::adam_segment(c, p, g, m, v, vmax, n);
#endif
  optim_kernels::adam_segment<Scalar<T>>(c, p, g, m, v, vmax, n);
}

template <typename T>
void adadelta_segment(bool simd, const AdadeltaCoeffs<T>& c, T* p, const T* g, T* sq, T* acc,
                      int64_t n) {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (simd) return optim_avx2::adadelta_segment(c, p, g, sq, acc, n);
#endif
  optim_kernels::adadelta_segment<Scalar<T>>(c, p, g, sq, acc, n);
}

template <typename T>
void adamax_segment(bool simd, const AdamaxCoeffs<T>& c, T* p, const T* g, T* m, T* u,
                    int64_t n) {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (simd) return optim_avx2::adamax_segment(c, p, g, m, u, n);
#endif
  optim_kernels::adamax_segment<Scalar<T>>(c, p, g, m, u, n);
}

template <typename T>
void nadam_segment(bool simd, const NadamCoeffs<T>& c, T* p, const T* g, T* m, T* v, int64_t n) {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (simd) return optim_avx2::nadam_segment(c, p, g, m, v, n);
#endif
  optim_kernels::nadam_segment<Scalar<T>>(c, p, g, m, v, n);
}

template <typename T>
void radam_segment(bool simd, const RadamCoeffs<T>& c, T* p, const T* g, T* m, T* v, int64_t n) {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (simd) return optim_avx2::radam_segment(c, p, g, m, v, n);
#endif
  optim_kernels::radam_segment<Scalar<T>>(c, p, g, m, v, n);
}

template <typename T>
void scale_segment(bool simd, T factor, T* x, int64_t n) {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (simd) return optim_avx2::scale_segment(factor, x, n);
#endif
  optim_kernels::scale_segment<Scalar<T>>(factor, x, n);
}

template <typename T>
void lerp_segment(bool simd, const LerpCoeffs<T>& c, T* a, const T* b, int64_t n) {
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (simd) return optim_avx2::lerp_segment(c, a, b, n);
#endif
  optim_kernels::lerp_segment<Scalar<T>>(c, a, b, n);
}

// ---- norms -------------------------------------------------------------------------------

enum class NormKind { kTwo, kOne, kInf, kNegInf, kZero, kPower };

NormKind norm_kind(double p) {
  if (std::isnan(p)) throw std::invalid_argument("tensor_norms: norm_type is NaN");
  if (p == 2.0) return NormKind::kTwo;
  if (p == 1.0) return NormKind::kOne;
  if (p == std::numeric_limits<double>::infinity()) return NormKind::kInf;
  if (p == -std::numeric_limits<double>::infinity()) return NormKind::kNegInf;
  if (p == 0.0) return NormKind::kZero;
  if (p < 0.0)
    throw std::invalid_argument("tensor_norms: norm_type must be >= 0 or +-inf, got " +
                                std::to_string(p));
  return NormKind::kPower;
}

// Four accumulators so the portable sum is not one long dependency chain.
template <bool kSquare, typename T>
double portable_sum(const T* x, int64_t n) {
  double acc[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) {
      double v = static_cast<double>(x[i + k]);
      acc[k] += kSquare ? v * v : std::abs(v);
    }
  for (; i < n; ++i) {
    double v = static_cast<double>(x[i]);
    acc[0] += kSquare ? v * v : std::abs(v);
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Folds x[0..n) into acc: a sum (|x|^2, |x|, |x|^p, x != 0) or an extreme (max/min |x|, with
// NaN winning so that a NaN gradient shows in the norm).
template <typename T>
void accumulate_norm(bool simd, NormKind kind, double p, const T* x, int64_t n, double& acc) {
  switch (kind) {
    case NormKind::kTwo:
#if defined(PYDL_HAVE_AVX2_KERNELS)
      if (simd) {
        acc += optim_avx2::sum_squares(x, n);
        return;
      }
#endif
      acc += portable_sum<true>(x, n);
      return;
    case NormKind::kOne:
#if defined(PYDL_HAVE_AVX2_KERNELS)
      if (simd) {
        acc += optim_avx2::sum_abs(x, n);
        return;
      }
#endif
      acc += portable_sum<false>(x, n);
      return;
    case NormKind::kInf:
      for (int64_t i = 0; i < n; ++i) {
        double a = std::abs(static_cast<double>(x[i]));
        if (a > acc || std::isnan(a)) acc = a;
      }
      return;
    case NormKind::kNegInf:
      for (int64_t i = 0; i < n; ++i) {
        double a = std::abs(static_cast<double>(x[i]));
        if (a < acc || std::isnan(a)) acc = a;
      }
      return;
    case NormKind::kZero: {
      int64_t count = 0;
      for (int64_t i = 0; i < n; ++i) count += x[i] != T(0);
      acc += static_cast<double>(count);
      return;
    }
    case NormKind::kPower:
      for (int64_t i = 0; i < n; ++i) acc += std::pow(std::abs(static_cast<double>(x[i])), p);
      return;
  }
}

double combine_norm(NormKind kind, double a, double b) {
  if (kind == NormKind::kInf) return (b > a || std::isnan(b)) ? b : a;
  if (kind == NormKind::kNegInf) return (b < a || std::isnan(b)) ? b : a;
  return a + b;
}

}  // namespace

// ---- optimizer steps ------------------------------------------------------------------------

template <typename T>
void sgd_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                  const std::vector<T*>& momentum_buffers, const std::vector<uint8_t>& init_buffer,
                  const std::vector<int64_t>& sizes, const SgdOptions& opt) {
  const size_t n = sizes.size();
  check_sizes("sgd_step", sizes);
  check_list("sgd_step", "params", params.size(), n);
  check_list("sgd_step", "grads", grads.size(), n);
  const bool has_momentum = opt.momentum != 0;
  if (has_momentum) {
    check_list("sgd_step", "momentum_buffers", momentum_buffers.size(), n);
    check_list("sgd_step", "init_buffer", init_buffer.size(), n);
  }
  SgdCoeffs<T> base;
  base.sign = opt.maximize ? T(-1) : T(1);
  base.weight_decay = static_cast<T>(opt.weight_decay);
  base.momentum = static_cast<T>(opt.momentum);
  base.one_minus_dampening = static_cast<T>(1 - opt.dampening);
  base.neg_lr = static_cast<T>(-opt.lr);
  base.has_weight_decay = opt.weight_decay != 0;
  base.has_momentum = has_momentum;
  base.init_buffer = false;
  base.nesterov = opt.nesterov;
  const bool simd = simd_enabled();
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    SgdCoeffs<T> c = base;
    T* buf = nullptr;
    if (has_momentum) {
      c.init_buffer = init_buffer[t] != 0;
      buf = momentum_buffers[t] + b;
    }
    sgd_segment(simd, c, params[t] + b, grads[t] + b, buf, e - b);
  });
}

template <typename T>
void adagrad_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                      const std::vector<T*>& state_sums, const std::vector<double>& steps,
                      const std::vector<int64_t>& sizes, const AdagradOptions& opt) {
  const size_t n = sizes.size();
  check_sizes("adagrad_step", sizes);
  check_list("adagrad_step", "params", params.size(), n);
  check_list("adagrad_step", "grads", grads.size(), n);
  check_list("adagrad_step", "state_sums", state_sums.size(), n);
  check_list("adagrad_step", "steps", steps.size(), n);
  AdagradCoeffs<T> base;
  base.sign = opt.maximize ? T(-1) : T(1);
  base.weight_decay = static_cast<T>(opt.weight_decay);
  base.eps = static_cast<T>(opt.eps);
  base.has_weight_decay = opt.weight_decay != 0;
  const bool simd = simd_enabled();
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    AdagradCoeffs<T> c = base;
    const double clr = opt.lr / (1 + (steps[t] - 1) * opt.lr_decay);
    c.neg_clr = static_cast<T>(-clr);
    adagrad_segment(simd, c, params[t] + b, grads[t] + b, state_sums[t] + b, e - b);
  });
}

template <typename T>
void rmsprop_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                      const std::vector<T*>& square_avgs, const std::vector<T*>& grad_avgs,
                      const std::vector<T*>& momentum_buffers, const std::vector<int64_t>& sizes,
                      const RmspropOptions& opt) {
  const size_t n = sizes.size();
  check_sizes("rmsprop_step", sizes);
  check_list("rmsprop_step", "params", params.size(), n);
  check_list("rmsprop_step", "grads", grads.size(), n);
  check_list("rmsprop_step", "square_avgs", square_avgs.size(), n);
  const bool has_momentum = opt.momentum > 0;
  if (opt.centered) check_list("rmsprop_step", "grad_avgs", grad_avgs.size(), n);
  if (has_momentum) check_list("rmsprop_step", "momentum_buffers", momentum_buffers.size(), n);
  RmspropCoeffs<T> c;
  c.sign = opt.maximize ? T(-1) : T(1);
  c.weight_decay = static_cast<T>(opt.weight_decay);
  c.alpha = static_cast<T>(opt.alpha);
  c.one_minus_alpha = static_cast<T>(1 - opt.alpha);
  c.eps = static_cast<T>(opt.eps);
  c.momentum = static_cast<T>(opt.momentum);
  c.neg_lr = static_cast<T>(-opt.lr);
  c.grad_avg_lerp = lerp_coeffs<T>(1 - opt.alpha);
  c.has_weight_decay = opt.weight_decay != 0;
  c.centered = opt.centered;
  c.has_momentum = has_momentum;
  const bool simd = simd_enabled();
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    T* ga = opt.centered ? grad_avgs[t] + b : nullptr;
    T* buf = has_momentum ? momentum_buffers[t] + b : nullptr;
    rmsprop_segment(simd, c, params[t] + b, grads[t] + b, square_avgs[t] + b, ga, buf, e - b);
  });
}

template <typename T>
void adam_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                   const std::vector<T*>& exp_avgs, const std::vector<T*>& exp_avg_sqs,
                   const std::vector<T*>& max_exp_avg_sqs, const std::vector<double>& steps,
                   const std::vector<int64_t>& sizes, const AdamOptions& opt) {
  const size_t n = sizes.size();
  check_sizes("adam_step", sizes);
  check_list("adam_step", "params", params.size(), n);
  check_list("adam_step", "grads", grads.size(), n);
  check_list("adam_step", "exp_avgs", exp_avgs.size(), n);
  check_list("adam_step", "exp_avg_sqs", exp_avg_sqs.size(), n);
  check_list("adam_step", "steps", steps.size(), n);
  if (opt.amsgrad) check_list("adam_step", "max_exp_avg_sqs", max_exp_avg_sqs.size(), n);
  for (size_t t = 0; t < n; ++t)
    if (!(steps[t] >= 1))
      throw std::invalid_argument("adam_step: steps[" + std::to_string(t) + "] is " +
                                  std::to_string(steps[t]) +
                                  "; the bias corrections need a step count >= 1");
  AdamCoeffs<T> base;
  base.sign = opt.maximize ? T(-1) : T(1);
  base.weight_decay = static_cast<T>(opt.weight_decay);
  base.decay_factor = static_cast<T>(1 - opt.lr * opt.weight_decay);
  base.beta2 = static_cast<T>(opt.beta2);
  base.one_minus_beta2 = static_cast<T>(1 - opt.beta2);
  base.eps = static_cast<T>(opt.eps);
  base.exp_avg_lerp = lerp_coeffs<T>(1 - opt.beta1);
  base.has_weight_decay = opt.weight_decay != 0;
  base.decoupled = opt.decoupled_weight_decay;
  base.amsgrad = opt.amsgrad;
  const bool simd = simd_enabled();
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    AdamCoeffs<T> c = base;
    const double bias_correction1 = 1 - std::pow(opt.beta1, steps[t]);
    const double bias_correction2 = 1 - std::pow(opt.beta2, steps[t]);
    c.neg_step_size = static_cast<T>(-(opt.lr / bias_correction1));
    c.inv_bias_correction2_sqrt = static_cast<T>(1.0 / std::sqrt(bias_correction2));
    T* vmax = opt.amsgrad ? max_exp_avg_sqs[t] + b : nullptr;
    adam_segment(simd, c, params[t] + b, grads[t] + b, exp_avgs[t] + b, exp_avg_sqs[t] + b, vmax,
                 e - b);
  });
}

void check_steps(const char* op, const std::vector<double>& steps) {
  for (size_t t = 0; t < steps.size(); ++t)
    if (!(steps[t] >= 1))
      throw std::invalid_argument(std::string(op) + ": steps[" + std::to_string(t) + "] is " +
                                  std::to_string(steps[t]) +
                                  "; the bias corrections need a step count >= 1");
}

template <typename T>
void adadelta_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                       const std::vector<T*>& square_avgs, const std::vector<T*>& acc_deltas,
                       const std::vector<int64_t>& sizes, const AdadeltaOptions& opt) {
  const size_t n = sizes.size();
  check_sizes("adadelta_step", sizes);
  check_list("adadelta_step", "params", params.size(), n);
  check_list("adadelta_step", "grads", grads.size(), n);
  check_list("adadelta_step", "square_avgs", square_avgs.size(), n);
  check_list("adadelta_step", "acc_deltas", acc_deltas.size(), n);
  AdadeltaCoeffs<T> c;
  c.sign = opt.maximize ? T(-1) : T(1);
  c.weight_decay = static_cast<T>(opt.weight_decay);
  c.rho = static_cast<T>(opt.rho);
  c.one_minus_rho = static_cast<T>(1 - opt.rho);
  c.eps = static_cast<T>(opt.eps);
  c.neg_lr = static_cast<T>(-opt.lr);
  c.has_weight_decay = opt.weight_decay != 0;
  const bool simd = simd_enabled();
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    adadelta_segment(simd, c, params[t] + b, grads[t] + b, square_avgs[t] + b,
                     acc_deltas[t] + b, e - b);
  });
}

template <typename T>
void adamax_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                     const std::vector<T*>& exp_avgs, const std::vector<T*>& exp_infs,
                     const std::vector<double>& steps, const std::vector<int64_t>& sizes,
                     const AdamaxOptions& opt) {
  const size_t n = sizes.size();
  check_sizes("adamax_step", sizes);
  check_list("adamax_step", "params", params.size(), n);
  check_list("adamax_step", "grads", grads.size(), n);
  check_list("adamax_step", "exp_avgs", exp_avgs.size(), n);
  check_list("adamax_step", "exp_infs", exp_infs.size(), n);
  check_list("adamax_step", "steps", steps.size(), n);
  check_steps("adamax_step", steps);
  AdamaxCoeffs<T> base;
  base.sign = opt.maximize ? T(-1) : T(1);
  base.weight_decay = static_cast<T>(opt.weight_decay);
  base.beta2 = static_cast<T>(opt.beta2);
  base.eps = static_cast<T>(opt.eps);
  base.exp_avg_lerp = lerp_coeffs<T>(1 - opt.beta1);
  base.has_weight_decay = opt.weight_decay != 0;
  const bool simd = simd_enabled();
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    AdamaxCoeffs<T> c = base;
    c.neg_clr = static_cast<T>(-(opt.lr / (1 - std::pow(opt.beta1, steps[t]))));
    adamax_segment(simd, c, params[t] + b, grads[t] + b, exp_avgs[t] + b, exp_infs[t] + b, e - b);
  });
}

template <typename T>
void nadam_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                    const std::vector<T*>& exp_avgs, const std::vector<T*>& exp_avg_sqs,
                    const std::vector<double>& steps, const std::vector<double>& mu_products,
                    const std::vector<int64_t>& sizes, const NadamOptions& opt) {
  const size_t n = sizes.size();
  check_sizes("nadam_step", sizes);
  check_list("nadam_step", "params", params.size(), n);
  check_list("nadam_step", "grads", grads.size(), n);
  check_list("nadam_step", "exp_avgs", exp_avgs.size(), n);
  check_list("nadam_step", "exp_avg_sqs", exp_avg_sqs.size(), n);
  check_list("nadam_step", "steps", steps.size(), n);
  check_list("nadam_step", "mu_products", mu_products.size(), n);
  check_steps("nadam_step", steps);
  NadamCoeffs<T> base;
  base.sign = opt.maximize ? T(-1) : T(1);
  base.weight_decay = static_cast<T>(opt.weight_decay);
  base.decay_factor = static_cast<T>(1 - opt.lr * opt.weight_decay);
  base.beta2 = static_cast<T>(opt.beta2);
  base.one_minus_beta2 = static_cast<T>(1 - opt.beta2);
  base.eps = static_cast<T>(opt.eps);
  base.exp_avg_lerp = lerp_coeffs<T>(1 - opt.beta1);
  base.has_weight_decay = opt.weight_decay != 0;
  base.decoupled = opt.decoupled_weight_decay;
  const bool simd = simd_enabled();
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    NadamCoeffs<T> c = base;
    const double step = steps[t];
    const double mu = opt.beta1 * (1 - 0.5 * std::pow(0.96, step * opt.momentum_decay));
    const double mu_next =
        opt.beta1 * (1 - 0.5 * std::pow(0.96, (step + 1) * opt.momentum_decay));
    const double mu_product = mu_products[t];
    c.inv_bias_correction2 = static_cast<T>(1.0 / (1 - std::pow(opt.beta2, step)));
    c.neg_grad_factor = static_cast<T>(-opt.lr * (1 - mu) / (1 - mu_product));
    c.neg_avg_factor = static_cast<T>(-opt.lr * mu_next / (1 - mu_product * mu_next));
    nadam_segment(simd, c, params[t] + b, grads[t] + b, exp_avgs[t] + b, exp_avg_sqs[t] + b,
                  e - b);
  });
}

template <typename T>
void radam_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                    const std::vector<T*>& exp_avgs, const std::vector<T*>& exp_avg_sqs,
                    const std::vector<double>& steps, const std::vector<int64_t>& sizes,
                    const RadamOptions& opt) {
  const size_t n = sizes.size();
  check_sizes("radam_step", sizes);
  check_list("radam_step", "params", params.size(), n);
  check_list("radam_step", "grads", grads.size(), n);
  check_list("radam_step", "exp_avgs", exp_avgs.size(), n);
  check_list("radam_step", "exp_avg_sqs", exp_avg_sqs.size(), n);
  check_list("radam_step", "steps", steps.size(), n);
  check_steps("radam_step", steps);
  RadamCoeffs<T> base;
  base.sign = opt.maximize ? T(-1) : T(1);
  base.weight_decay = static_cast<T>(opt.weight_decay);
  base.decay_factor = static_cast<T>(1 - opt.lr * opt.weight_decay);
  base.beta2 = static_cast<T>(opt.beta2);
  base.one_minus_beta2 = static_cast<T>(1 - opt.beta2);
  base.eps = static_cast<T>(opt.eps);
  base.exp_avg_lerp = lerp_coeffs<T>(1 - opt.beta1);
  base.has_weight_decay = opt.weight_decay != 0;
  base.decoupled = opt.decoupled_weight_decay;
  const bool simd = simd_enabled();
  const double rho_inf = 2 / (1 - opt.beta2) - 1;
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    RadamCoeffs<T> c = base;
    const double step = steps[t];
    const double bias_correction1 = 1 - std::pow(opt.beta1, step);
    const double bias_correction2 = 1 - std::pow(opt.beta2, step);
    const double rho_t = rho_inf - 2 * step * std::pow(opt.beta2, step) / bias_correction2;
    c.lr_over_bc1 = static_cast<T>(opt.lr / bias_correction1);
    c.rectify = rho_t > 5.0;
    c.sqrt_bc2 = static_cast<T>(std::sqrt(bias_correction2));
    const double rect = c.rectify ? std::sqrt((rho_t - 4) * (rho_t - 2) * rho_inf /
                                              ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                                  : 1.0;
    c.neg_rect = static_cast<T>(-rect);
    radam_segment(simd, c, params[t] + b, grads[t] + b, exp_avgs[t] + b, exp_avg_sqs[t] + b,
                  e - b);
  });
}

// ---- gradient utilities ---------------------------------------------------------------------

template <typename T>
std::vector<double> tensor_norms_cpu(const std::vector<const T*>& tensors,
                                     const std::vector<int64_t>& sizes, double norm_type) {
  const size_t n = sizes.size();
  check_sizes("tensor_norms", sizes);
  check_list("tensor_norms", "tensors", tensors.size(), n);
  const NormKind kind = norm_kind(norm_type);
  const double identity =
      kind == NormKind::kNegInf ? std::numeric_limits<double>::infinity() : 0.0;
  // Each part accumulates its own row of partial results; rows are combined in order, so the
  // result depends only on the thread count, never on scheduling.
  const std::vector<int64_t> offsets = prefix_offsets(sizes);
  const int64_t total = offsets.back();
  // Under use_deterministic_algorithms the split is a fixed function of the sizes (at most
  // kDeterministicNormParts parts, as many as the thread pool can use), so the sum is the same
  // bits for any thread count.
  constexpr int64_t kDeterministicNormParts = 32;
  const int64_t n_parts = std::max<int64_t>(
      1, std::min<int64_t>(deterministic_algorithms() ? kDeterministicNormParts : num_threads(),
                           total / kGrain));
  std::vector<double> partial(static_cast<size_t>(n_parts) * n, identity);
  const bool simd = simd_enabled();
  parallel_for(n_parts, 1, [&](int64_t part_begin, int64_t part_end) {
    for (int64_t part = part_begin; part < part_end; ++part) {
      double* row = partial.data() + part * n;
      visit_range(offsets, total * part / n_parts, total * (part + 1) / n_parts,
                  [&](int64_t t, int64_t b, int64_t e) {
                    double acc = identity;
                    accumulate_norm(simd, kind, norm_type, tensors[t] + b, e - b, acc);
                    row[t] = combine_norm(kind, row[t], acc);
                  });
    }
  });
  std::vector<double> norms(n, identity);
  for (int64_t part = 0; part < n_parts; ++part)
    for (size_t t = 0; t < n; ++t)
      norms[t] = combine_norm(kind, norms[t], partial[part * n + t]);
  for (size_t t = 0; t < n; ++t) {
    if (kind == NormKind::kTwo) norms[t] = std::sqrt(norms[t]);
    else if (kind == NormKind::kPower) norms[t] = std::pow(norms[t], 1.0 / norm_type);
  }
  return norms;
}

template <typename T>
void scale_cpu(const std::vector<T*>& tensors, const std::vector<int64_t>& sizes, double factor) {
  check_sizes("scale", sizes);
  check_list("scale", "tensors", tensors.size(), sizes.size());
  const T f = static_cast<T>(factor);
  const bool simd = simd_enabled();
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    scale_segment(simd, f, tensors[t] + b, e - b);
  });
}

template <typename T>
void clamp_cpu(const std::vector<T*>& tensors, const std::vector<int64_t>& sizes, double lo,
               double hi) {
  check_sizes("clamp", sizes);
  check_list("clamp", "tensors", tensors.size(), sizes.size());
  const T lo_t = static_cast<T>(lo), hi_t = static_cast<T>(hi);
  if (std::isnan(lo) || std::isnan(hi)) {
    // A NaN bound makes every element NaN, as torch.clamp_ (and clip_grad_value_(nan)): the
    // compare-and-select below would silently ignore it instead.
    for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
      std::fill(tensors[t] + b, tensors[t] + e, std::numeric_limits<T>::quiet_NaN());
    });
    return;
  }
  // Compare-and-select keeps NaN (a comparison with NaN is false); the compiler vectorizes it
  // into max/min instructions with the same rule, so no AVX2 variant is needed.
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    T* x = tensors[t];
    for (int64_t i = b; i < e; ++i) {
      T v = x[i];
      v = lo_t > v ? lo_t : v;
      v = v > hi_t ? hi_t : v;
      x[i] = v;
    }
  });
}

template <typename T>
void lerp_cpu(const std::vector<T*>& targets, const std::vector<const T*>& sources,
              const std::vector<int64_t>& sizes, double weight) {
  check_sizes("lerp", sizes);
  check_list("lerp", "targets", targets.size(), sizes.size());
  check_list("lerp", "sources", sources.size(), sizes.size());
  const LerpCoeffs<T> c = lerp_coeffs<T>(weight);
  const bool simd = simd_enabled();
  for_each_segment(sizes, [&](int64_t t, int64_t b, int64_t e) {
    lerp_segment(simd, c, targets[t] + b, sources[t] + b, e - b);
  });
}

#define PYDL_OPTIM_INSTANTIATE(T)                                                              \
  template void sgd_step_cpu<T>(const std::vector<T*>&, const std::vector<const T*>&,          \
                                const std::vector<T*>&, const std::vector<uint8_t>&,           \
                                const std::vector<int64_t>&, const SgdOptions&);               \
  template void adagrad_step_cpu<T>(const std::vector<T*>&, const std::vector<const T*>&,      \
                                    const std::vector<T*>&, const std::vector<double>&,        \
                                    const std::vector<int64_t>&, const AdagradOptions&);       \
  template void rmsprop_step_cpu<T>(const std::vector<T*>&, const std::vector<const T*>&,      \
                                    const std::vector<T*>&, const std::vector<T*>&,            \
                                    const std::vector<T*>&, const std::vector<int64_t>&,       \
                                    const RmspropOptions&);                                    \
  template void adam_step_cpu<T>(const std::vector<T*>&, const std::vector<const T*>&,         \
                                 const std::vector<T*>&, const std::vector<T*>&,               \
                                 const std::vector<T*>&, const std::vector<double>&,           \
                                 const std::vector<int64_t>&, const AdamOptions&);             \
  template void adadelta_step_cpu<T>(const std::vector<T*>&, const std::vector<const T*>&,     \
                                     const std::vector<T*>&, const std::vector<T*>&,           \
                                     const std::vector<int64_t>&, const AdadeltaOptions&);     \
  template void adamax_step_cpu<T>(const std::vector<T*>&, const std::vector<const T*>&,       \
                                   const std::vector<T*>&, const std::vector<T*>&,             \
                                   const std::vector<double>&, const std::vector<int64_t>&,    \
                                   const AdamaxOptions&);                                      \
  template void nadam_step_cpu<T>(const std::vector<T*>&, const std::vector<const T*>&,        \
                                  const std::vector<T*>&, const std::vector<T*>&,              \
                                  const std::vector<double>&, const std::vector<double>&,      \
                                  const std::vector<int64_t>&, const NadamOptions&);           \
  template void radam_step_cpu<T>(const std::vector<T*>&, const std::vector<const T*>&,        \
                                  const std::vector<T*>&, const std::vector<T*>&,              \
                                  const std::vector<double>&, const std::vector<int64_t>&,     \
                                  const RadamOptions&);                                        \
  template std::vector<double> tensor_norms_cpu<T>(const std::vector<const T*>&,               \
                                                   const std::vector<int64_t>&, double);       \
  template void scale_cpu<T>(const std::vector<T*>&, const std::vector<int64_t>&, double);     \
  template void clamp_cpu<T>(const std::vector<T*>&, const std::vector<int64_t>&, double,      \
                             double);                                                          \
  template void lerp_cpu<T>(const std::vector<T*>&, const std::vector<const T*>&,              \
                            const std::vector<int64_t>&, double);

PYDL_OPTIM_INSTANTIATE(float)
PYDL_OPTIM_INSTANTIATE(double)
#undef PYDL_OPTIM_INSTANTIATE

}  // namespace pydl
