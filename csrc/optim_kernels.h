#pragma once
// Element-wise bodies of the fused optimizer kernels (csrc/optim.cpp), written once over a
// "vector" type V: Scalar<T> (one element) for the portable path and every tail, and 256-bit
// AVX2 registers in csrc/optim_avx2.cpp. V provides load/store/set1, + - * /, fmadd(a, b, c)
// = a*b + c, sqrt_v and max_v. Each block reads all its inputs before it writes, so a parameter
// that aliases its gradient still sees the old values.
//
// This header is compiled into two translation units with different ISA flags. Everything with
// code in it lives in an anonymous namespace, so each unit keeps its own copy and the linker can
// never hand the AVX2 unit's instantiation to the portable path. The coefficient structs carry no
// code and are shared.
#include <cmath>
#include <cstdint>

namespace pydl {
namespace optim_kernels {

// Per-call (or per-tensor) scalars, already rounded to T.
template <typename T>
struct SgdCoeffs {
  T sign, weight_decay, momentum, one_minus_dampening, neg_lr;
  bool has_weight_decay, has_momentum, init_buffer, nesterov;
};

template <typename T>
struct AdagradCoeffs {
  T sign, weight_decay, eps, neg_clr;
  bool has_weight_decay;
};

// lerp(a, b, w) as PyTorch computes it: a + w (b - a) for |w| < 0.5, else b - (b - a)(1 - w).
template <typename T>
struct LerpCoeffs {
  T weight, one_minus_weight;
  bool small;
};

template <typename T>
struct RmspropCoeffs {
  T sign, weight_decay, alpha, one_minus_alpha, eps, momentum, neg_lr;
  LerpCoeffs<T> grad_avg_lerp;
  bool has_weight_decay, centered, has_momentum;
};

template <typename T>
struct AdamCoeffs {
  T sign, weight_decay, decay_factor, beta2, one_minus_beta2, eps, inv_bias_correction2_sqrt,
      neg_step_size;
  LerpCoeffs<T> exp_avg_lerp;
  bool has_weight_decay, decoupled, amsgrad;
};

template <typename T>
struct AdadeltaCoeffs {
  T sign, weight_decay, rho, one_minus_rho, eps, neg_lr;
  bool has_weight_decay;
};

template <typename T>
struct AdamaxCoeffs {
  T sign, weight_decay, beta2, eps, neg_clr;
  LerpCoeffs<T> exp_avg_lerp;
  bool has_weight_decay;
};

// NAdam and RAdam share the moment updates; neg_a and neg_b are the per-tensor step factors
// (NAdam: of g/d and m/d; RAdam: lr / bias_correction1 and the rectified factor).
template <typename T>
struct NadamCoeffs {
  T sign, weight_decay, decay_factor, beta2, one_minus_beta2, eps, inv_bias_correction2,
      neg_grad_factor, neg_avg_factor;
  LerpCoeffs<T> exp_avg_lerp;
  bool has_weight_decay, decoupled;
};

template <typename T>
struct RadamCoeffs {
  T sign, weight_decay, decay_factor, beta2, one_minus_beta2, eps, lr_over_bc1, sqrt_bc2,
      neg_rect;
  LerpCoeffs<T> exp_avg_lerp;
  bool has_weight_decay, decoupled, rectify;
};

namespace {

inline float scalar_sqrt(float x) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_sqrtf(x);
#else
  return std::sqrt(x);
#endif
}
inline double scalar_sqrt(double x) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_sqrt(x);
#else
  return std::sqrt(x);
#endif
}

template <typename T>
struct Scalar {
  using elem = T;
  static constexpr int64_t width = 1;
  T v;
  static Scalar load(const T* p) { return {*p}; }
  static Scalar set1(T x) { return {x}; }
  void store(T* p) const { *p = v; }
};
template <typename T>
inline Scalar<T> operator+(Scalar<T> a, Scalar<T> b) { return {a.v + b.v}; }
template <typename T>
inline Scalar<T> operator-(Scalar<T> a, Scalar<T> b) { return {a.v - b.v}; }
template <typename T>
inline Scalar<T> operator*(Scalar<T> a, Scalar<T> b) { return {a.v * b.v}; }
template <typename T>
inline Scalar<T> operator/(Scalar<T> a, Scalar<T> b) { return {a.v / b.v}; }
template <typename T>
inline Scalar<T> fmadd(Scalar<T> a, Scalar<T> b, Scalar<T> c) { return {a.v * b.v + c.v}; }
template <typename T>
inline Scalar<T> sqrt_v(Scalar<T> a) { return {scalar_sqrt(a.v)}; }
// max(a, b) returning b when either is NaN (the AVX max instruction's rule, kept on both paths).
template <typename T>
inline Scalar<T> max_v(Scalar<T> a, Scalar<T> b) { return {a.v > b.v ? a.v : b.v}; }

template <typename V, typename T>
inline V lerp_v(V a, V b, const LerpCoeffs<T>& c) {
  V diff = b - a;
  if (c.small) return fmadd(V::set1(c.weight), diff, a);
  return fmadd(V::set1(-c.one_minus_weight), diff, b);
}

// ---- one block of V::width elements starting at i ------------------------------------------

template <typename V, typename T>
inline void sgd_block(const SgdCoeffs<T>& c, T* p, const T* g, T* buf, int64_t i) {
  V pv = V::load(p + i);
  V gv = V::load(g + i) * V::set1(c.sign);
  if (c.has_weight_decay) gv = fmadd(V::set1(c.weight_decay), pv, gv);
  if (c.has_momentum) {
    V b = c.init_buffer ? gv
                        : fmadd(V::set1(c.one_minus_dampening), gv,
                                V::load(buf + i) * V::set1(c.momentum));
    b.store(buf + i);
    gv = c.nesterov ? fmadd(V::set1(c.momentum), b, gv) : b;
  }
  fmadd(V::set1(c.neg_lr), gv, pv).store(p + i);
}

template <typename V, typename T>
inline void adagrad_block(const AdagradCoeffs<T>& c, T* p, const T* g, T* sum, int64_t i) {
  V pv = V::load(p + i);
  V gv = V::load(g + i) * V::set1(c.sign);
  if (c.has_weight_decay) gv = fmadd(V::set1(c.weight_decay), pv, gv);
  V s = fmadd(gv, gv, V::load(sum + i));
  s.store(sum + i);
  V std_v = sqrt_v(s) + V::set1(c.eps);
  fmadd(V::set1(c.neg_clr), gv / std_v, pv).store(p + i);
}

template <typename V, typename T>
inline void rmsprop_block(const RmspropCoeffs<T>& c, T* p, const T* g, T* sq, T* ga, T* buf,
                          int64_t i) {
  V pv = V::load(p + i);
  V gv = V::load(g + i) * V::set1(c.sign);
  if (c.has_weight_decay) gv = fmadd(V::set1(c.weight_decay), pv, gv);
  V sqv = fmadd(V::set1(c.one_minus_alpha), gv * gv, V::load(sq + i) * V::set1(c.alpha));
  sqv.store(sq + i);
  V avg;
  if (c.centered) {
    V gav = lerp_v(V::load(ga + i), gv, c.grad_avg_lerp);
    gav.store(ga + i);
    avg = sqrt_v(sqv - gav * gav);
  } else {
    avg = sqrt_v(sqv);
  }
  avg = avg + V::set1(c.eps);
  if (c.has_momentum) {
    V b = fmadd(V::load(buf + i), V::set1(c.momentum), gv / avg);
    b.store(buf + i);
    fmadd(V::set1(c.neg_lr), b, pv).store(p + i);
  } else {
    fmadd(V::set1(c.neg_lr), gv / avg, pv).store(p + i);
  }
}

template <typename V, typename T>
inline void adam_block(const AdamCoeffs<T>& c, T* p, const T* g, T* m, T* v, T* vmax,
                       int64_t i) {
  V pv = V::load(p + i);
  V gv = V::load(g + i) * V::set1(c.sign);
  if (c.has_weight_decay) {
    if (c.decoupled) pv = pv * V::set1(c.decay_factor);
    else gv = fmadd(V::set1(c.weight_decay), pv, gv);
  }
  V mv = lerp_v(V::load(m + i), gv, c.exp_avg_lerp);
  V vv = fmadd(V::set1(c.one_minus_beta2), gv * gv, V::load(v + i) * V::set1(c.beta2));
  mv.store(m + i);
  vv.store(v + i);
  if (c.amsgrad) {
    vv = max_v(V::load(vmax + i), vv);
    vv.store(vmax + i);
  }
  // PyTorch divides by sqrt(1 - beta2^t); multiplying by its reciprocal (within an ulp of the
  // same number) leaves one division per element, which the sqrt shares a unit with.
  V denom = fmadd(sqrt_v(vv), V::set1(c.inv_bias_correction2_sqrt), V::set1(c.eps));
  fmadd(V::set1(c.neg_step_size), mv / denom, pv).store(p + i);
}

template <typename V, typename T>
inline void adadelta_block(const AdadeltaCoeffs<T>& c, T* p, const T* g, T* sq, T* acc,
                           int64_t i) {
  V pv = V::load(p + i);
  V gv = V::load(g + i) * V::set1(c.sign);
  if (c.has_weight_decay) gv = fmadd(V::set1(c.weight_decay), pv, gv);
  V sqv = fmadd(V::set1(c.one_minus_rho), gv * gv, V::load(sq + i) * V::set1(c.rho));
  V accv = V::load(acc + i);
  V eps = V::set1(c.eps);
  V delta = sqrt_v(accv + eps) / sqrt_v(sqv + eps) * gv;
  sqv.store(sq + i);
  fmadd(V::set1(c.one_minus_rho), delta * delta, accv * V::set1(c.rho)).store(acc + i);
  fmadd(V::set1(c.neg_lr), delta, pv).store(p + i);
}

template <typename V, typename T>
inline void adamax_block(const AdamaxCoeffs<T>& c, T* p, const T* g, T* m, T* u, int64_t i) {
  V pv = V::load(p + i);
  V gv = V::load(g + i) * V::set1(c.sign);
  if (c.has_weight_decay) gv = fmadd(V::set1(c.weight_decay), pv, gv);
  V mv = lerp_v(V::load(m + i), gv, c.exp_avg_lerp);
  V abs_g = max_v(gv, V::set1(T(0)) - gv);
  // max_v returns its second argument when either is NaN: a NaN gradient propagates (amax).
  V uv = max_v(V::load(u + i) * V::set1(c.beta2), abs_g + V::set1(c.eps));
  mv.store(m + i);
  uv.store(u + i);
  fmadd(V::set1(c.neg_clr), mv / uv, pv).store(p + i);
}

template <typename V, typename T>
inline void nadam_block(const NadamCoeffs<T>& c, T* p, const T* g, T* m, T* v, int64_t i) {
  V pv = V::load(p + i);
  V gv = V::load(g + i) * V::set1(c.sign);
  if (c.has_weight_decay) {
    if (c.decoupled) pv = pv * V::set1(c.decay_factor);
    else gv = fmadd(V::set1(c.weight_decay), pv, gv);
  }
  V mv = lerp_v(V::load(m + i), gv, c.exp_avg_lerp);
  V vv = fmadd(V::set1(c.one_minus_beta2), gv * gv, V::load(v + i) * V::set1(c.beta2));
  mv.store(m + i);
  vv.store(v + i);
  V denom = sqrt_v(vv * V::set1(c.inv_bias_correction2)) + V::set1(c.eps);
  pv = fmadd(V::set1(c.neg_grad_factor), gv / denom, pv);  // two addcdiv_, in PyTorch's order
  fmadd(V::set1(c.neg_avg_factor), mv / denom, pv).store(p + i);
}

template <typename V, typename T>
inline void radam_block(const RadamCoeffs<T>& c, T* p, const T* g, T* m, T* v, int64_t i) {
  V pv = V::load(p + i);
  V gv = V::load(g + i) * V::set1(c.sign);
  if (c.has_weight_decay) {
    if (c.decoupled) pv = pv * V::set1(c.decay_factor);
    else gv = fmadd(V::set1(c.weight_decay), pv, gv);
  }
  V mv = lerp_v(V::load(m + i), gv, c.exp_avg_lerp);
  V vv = fmadd(V::set1(c.one_minus_beta2), gv * gv, V::load(v + i) * V::set1(c.beta2));
  mv.store(m + i);
  vv.store(v + i);
  V step = mv * V::set1(c.lr_over_bc1);
  if (c.rectify) step = step * (V::set1(c.sqrt_bc2) / (sqrt_v(vv) + V::set1(c.eps)));
  fmadd(V::set1(c.neg_rect), step, pv).store(p + i);
}

template <typename V, typename T>
inline void scale_block(T factor, T* x, int64_t i) {
  (V::load(x + i) * V::set1(factor)).store(x + i);
}

template <typename V, typename T>
inline void lerp_block(const LerpCoeffs<T>& c, T* a, const T* b, int64_t i) {
  lerp_v(V::load(a + i), V::load(b + i), c).store(a + i);
}

// ---- whole segments: V blocks, then a Scalar tail ------------------------------------------
// Each segment copies its coefficients into a local first: the stores through p, m, v (float*)
// may alias the float members of a struct passed by reference, which would make the compiler
// reload and re-broadcast every coefficient and re-test every flag in each iteration. A local
// whose address never escapes cannot alias them, so they stay in registers.

template <typename V, typename T>
void sgd_segment(const SgdCoeffs<T>& coeffs, T* p, const T* g, T* buf, int64_t n) {
  const SgdCoeffs<T> c = coeffs;
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) sgd_block<V>(c, p, g, buf, i);
  for (; i < n; ++i) sgd_block<Scalar<T>>(c, p, g, buf, i);
}

template <typename V, typename T>
void adagrad_segment(const AdagradCoeffs<T>& coeffs, T* p, const T* g, T* sum, int64_t n) {
  const AdagradCoeffs<T> c = coeffs;
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) adagrad_block<V>(c, p, g, sum, i);
  for (; i < n; ++i) adagrad_block<Scalar<T>>(c, p, g, sum, i);
}

template <typename V, typename T>
void rmsprop_segment(const RmspropCoeffs<T>& coeffs, T* p, const T* g, T* sq, T* ga, T* buf,
                     int64_t n) {
  const RmspropCoeffs<T> c = coeffs;
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) rmsprop_block<V>(c, p, g, sq, ga, buf, i);
  for (; i < n; ++i) rmsprop_block<Scalar<T>>(c, p, g, sq, ga, buf, i);
}

template <typename V, typename T>
void adam_segment(const AdamCoeffs<T>& coeffs, T* p, const T* g, T* m, T* v, T* vmax, int64_t n) {
  const AdamCoeffs<T> c = coeffs;
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) adam_block<V>(c, p, g, m, v, vmax, i);
  for (; i < n; ++i) adam_block<Scalar<T>>(c, p, g, m, v, vmax, i);
}

template <typename V, typename T>
void adadelta_segment(const AdadeltaCoeffs<T>& coeffs, T* p, const T* g, T* sq, T* acc,
                      int64_t n) {
  const AdadeltaCoeffs<T> c = coeffs;
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) adadelta_block<V>(c, p, g, sq, acc, i);
  for (; i < n; ++i) adadelta_block<Scalar<T>>(c, p, g, sq, acc, i);
}

template <typename V, typename T>
void adamax_segment(const AdamaxCoeffs<T>& coeffs, T* p, const T* g, T* m, T* u, int64_t n) {
  const AdamaxCoeffs<T> c = coeffs;
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) adamax_block<V>(c, p, g, m, u, i);
  for (; i < n; ++i) adamax_block<Scalar<T>>(c, p, g, m, u, i);
}

template <typename V, typename T>
void nadam_segment(const NadamCoeffs<T>& coeffs, T* p, const T* g, T* m, T* v, int64_t n) {
  const NadamCoeffs<T> c = coeffs;
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) nadam_block<V>(c, p, g, m, v, i);
  for (; i < n; ++i) nadam_block<Scalar<T>>(c, p, g, m, v, i);
}

template <typename V, typename T>
void radam_segment(const RadamCoeffs<T>& coeffs, T* p, const T* g, T* m, T* v, int64_t n) {
  const RadamCoeffs<T> c = coeffs;
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) radam_block<V>(c, p, g, m, v, i);
  for (; i < n; ++i) radam_block<Scalar<T>>(c, p, g, m, v, i);
}

template <typename V, typename T>
void scale_segment(T factor, T* x, int64_t n) {
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) scale_block<V>(factor, x, i);
  for (; i < n; ++i) scale_block<Scalar<T>>(factor, x, i);
}

template <typename V, typename T>
void lerp_segment(const LerpCoeffs<T>& coeffs, T* a, const T* b, int64_t n) {
  const LerpCoeffs<T> c = coeffs;
  int64_t i = 0;
  for (; i + V::width <= n; i += V::width) lerp_block<V>(c, a, b, i);
  for (; i < n; ++i) lerp_block<Scalar<T>>(c, a, b, i);
}

}  // namespace
}  // namespace optim_kernels

#if defined(PYDL_HAVE_AVX2_KERNELS)
// The AVX2+FMA instantiations (csrc/optim_avx2.cpp); call only when use_avx2() is true.
namespace optim_avx2 {
using optim_kernels::AdagradCoeffs;
using optim_kernels::AdamCoeffs;
using optim_kernels::LerpCoeffs;
using optim_kernels::RmspropCoeffs;
using optim_kernels::SgdCoeffs;
void sgd_segment(const SgdCoeffs<float>& c, float* p, const float* g, float* buf, int64_t n);
void sgd_segment(const SgdCoeffs<double>& c, double* p, const double* g, double* buf, int64_t n);
void adagrad_segment(const AdagradCoeffs<float>& c, float* p, const float* g, float* sum,
                     int64_t n);
void adagrad_segment(const AdagradCoeffs<double>& c, double* p, const double* g, double* sum,
                     int64_t n);
void rmsprop_segment(const RmspropCoeffs<float>& c, float* p, const float* g, float* sq,
                     float* ga, float* buf, int64_t n);
void rmsprop_segment(const RmspropCoeffs<double>& c, double* p, const double* g, double* sq,
                     double* ga, double* buf, int64_t n);
void adam_segment(const AdamCoeffs<float>& c, float* p, const float* g, float* m, float* v,
                  float* vmax, int64_t n);
void adam_segment(const AdamCoeffs<double>& c, double* p, const double* g, double* m, double* v,
                  double* vmax, int64_t n);
using optim_kernels::AdadeltaCoeffs;
using optim_kernels::AdamaxCoeffs;
using optim_kernels::NadamCoeffs;
using optim_kernels::RadamCoeffs;
void adadelta_segment(const AdadeltaCoeffs<float>& c, float* p, const float* g, float* sq,
                      float* acc, int64_t n);
void adadelta_segment(const AdadeltaCoeffs<double>& c, double* p, const double* g, double* sq,
                      double* acc, int64_t n);
void adamax_segment(const AdamaxCoeffs<float>& c, float* p, const float* g, float* m, float* u,
                    int64_t n);
void adamax_segment(const AdamaxCoeffs<double>& c, double* p, const double* g, double* m,
                    double* u, int64_t n);
void nadam_segment(const NadamCoeffs<float>& c, float* p, const float* g, float* m, float* v,
                   int64_t n);
void nadam_segment(const NadamCoeffs<double>& c, double* p, const double* g, double* m,
                   double* v, int64_t n);
void radam_segment(const RadamCoeffs<float>& c, float* p, const float* g, float* m, float* v,
                   int64_t n);
void radam_segment(const RadamCoeffs<double>& c, double* p, const double* g, double* m,
                   double* v, int64_t n);
void scale_segment(float factor, float* x, int64_t n);
void scale_segment(double factor, double* x, int64_t n);
void lerp_segment(const LerpCoeffs<float>& c, float* a, const float* b, int64_t n);
void lerp_segment(const LerpCoeffs<double>& c, double* a, const double* b, int64_t n);
// Sum of squares and sum of |x| of x[0..n), accumulated in double.
double sum_squares(const float* x, int64_t n);
double sum_squares(const double* x, int64_t n);
double sum_abs(const float* x, int64_t n);
double sum_abs(const double* x, int64_t n);
}  // namespace optim_avx2
#endif

}  // namespace pydl
