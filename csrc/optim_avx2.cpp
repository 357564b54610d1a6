// AVX2+FMA instantiations of the fused optimizer kernels (csrc/optim_kernels.h): 8 floats or 4
// doubles per register. Compiled with -mavx2 -mfma; csrc/optim.cpp calls these only when
// pydl::use_avx2() is true. The math is the portable path's, so results agree within rounding
// (FMA contracts a*b + c into one rounding).
#include <immintrin.h>

#include "optim_kernels.h"

namespace pydl {
namespace optim_kernels {
namespace {

struct F8 {
  using elem = float;
  static constexpr int64_t width = 8;
  __m256 v;
  static F8 load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static F8 set1(float x) { return {_mm256_set1_ps(x)}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
};
inline F8 operator+(F8 a, F8 b) { return {_mm256_add_ps(a.v, b.v)}; }
inline F8 operator-(F8 a, F8 b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline F8 operator*(F8 a, F8 b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline F8 operator/(F8 a, F8 b) { return {_mm256_div_ps(a.v, b.v)}; }
inline F8 fmadd(F8 a, F8 b, F8 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline F8 sqrt_v(F8 a) { return {_mm256_sqrt_ps(a.v)}; }
inline F8 max_v(F8 a, F8 b) { return {_mm256_max_ps(a.v, b.v)}; }  // b when either is NaN

struct D4 {
  using elem = double;
  static constexpr int64_t width = 4;
  __m256d v;
  static D4 load(const double* p) { return {_mm256_loadu_pd(p)}; }
  static D4 set1(double x) { return {_mm256_set1_pd(x)}; }
  void store(double* p) const { _mm256_storeu_pd(p, v); }
};
inline D4 operator+(D4 a, D4 b) { return {_mm256_add_pd(a.v, b.v)}; }
inline D4 operator-(D4 a, D4 b) { return {_mm256_sub_pd(a.v, b.v)}; }
inline D4 operator*(D4 a, D4 b) { return {_mm256_mul_pd(a.v, b.v)}; }
inline D4 operator/(D4 a, D4 b) { return {_mm256_div_pd(a.v, b.v)}; }
inline D4 fmadd(D4 a, D4 b, D4 c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }
inline D4 sqrt_v(D4 a) { return {_mm256_sqrt_pd(a.v)}; }
inline D4 max_v(D4 a, D4 b) { return {_mm256_max_pd(a.v, b.v)}; }

template <typename T> struct Vec;
template <> struct Vec<float> { using type = F8; };
template <> struct Vec<double> { using type = D4; };

// Widens 8 floats (or 4 doubles) into two double registers for double accumulation.
inline void widen(const float* x, __m256d& lo, __m256d& hi) {
  __m256 v = _mm256_loadu_ps(x);
  lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
  hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}
inline void widen(const double* x, __m256d& lo, __m256d& hi) {
  lo = _mm256_loadu_pd(x);
  hi = _mm256_loadu_pd(x + 4);
}

inline double hsum(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// Four independent accumulators (two loads of 8 elements per iteration) hide the add latency.
template <bool kSquare, typename T>
double reduce_sum(const T* x, int64_t n) {
  const __m256d sign_mask = _mm256_set1_pd(-0.0);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256d a, b, c, d;
    widen(x + i, a, b);
    widen(x + i + 8, c, d);
    if (kSquare) {
      acc0 = _mm256_fmadd_pd(a, a, acc0);
      acc1 = _mm256_fmadd_pd(b, b, acc1);
      acc2 = _mm256_fmadd_pd(c, c, acc2);
      acc3 = _mm256_fmadd_pd(d, d, acc3);
    } else {
      acc0 = _mm256_add_pd(acc0, _mm256_andnot_pd(sign_mask, a));
      acc1 = _mm256_add_pd(acc1, _mm256_andnot_pd(sign_mask, b));
      acc2 = _mm256_add_pd(acc2, _mm256_andnot_pd(sign_mask, c));
      acc3 = _mm256_add_pd(acc3, _mm256_andnot_pd(sign_mask, d));
    }
  }
  double sum = hsum(_mm256_add_pd(_mm256_add_pd(acc0, acc1), _mm256_add_pd(acc2, acc3)));
  for (; i < n; ++i) {
    double v = static_cast<double>(x[i]);
    sum += kSquare ? v * v : (v < 0 ? -v : v);
  }
  return sum;
}

}  // namespace
}  // namespace optim_kernels

namespace optim_avx2 {
namespace k = optim_kernels;

#define PYDL_OPTIM_AVX2_INSTANTIATE(T)                                                        \
  void sgd_segment(const SgdCoeffs<T>& c, T* p, const T* g, T* buf, int64_t n) {              \
    k::sgd_segment<k::Vec<T>::type>(c, p, g, buf, n);                                         \
  }                                                                                           \
  void adagrad_segment(const AdagradCoeffs<T>& c, T* p, const T* g, T* sum, int64_t n) {      \
    k::adagrad_segment<k::Vec<T>::type>(c, p, g, sum, n);                                     \
  }                                                                                           \
  void rmsprop_segment(const RmspropCoeffs<T>& c, T* p, const T* g, T* sq, T* ga, T* buf,     \
                       int64_t n) {                                                           \
    k::rmsprop_segment<k::Vec<T>::type>(c, p, g, sq, ga, buf, n);                             \
  }                                                                                           \
  void adam_segment(const AdamCoeffs<T>& c, T* p, const T* g, T* m, T* v, T* vmax,            \
                    int64_t n) {                                                              \
    k::adam_segment<k::Vec<T>::type>(c, p, g, m, v, vmax, n);                                 \
  }                                                                                           \
  void adadelta_segment(const AdadeltaCoeffs<T>& c, T* p, const T* g, T* sq, T* acc,         \
                        int64_t n) {                                                          \
    k::adadelta_segment<k::Vec<T>::type>(c, p, g, sq, acc, n);                                \
  }                                                                                           \
  void adamax_segment(const AdamaxCoeffs<T>& c, T* p, const T* g, T* m, T* u, int64_t n) {    \
    k::adamax_segment<k::Vec<T>::type>(c, p, g, m, u, n);                                     \
  }                                                                                           \
  void nadam_segment(const NadamCoeffs<T>& c, T* p, const T* g, T* m, T* v, int64_t n) {      \
    k::nadam_segment<k::Vec<T>::type>(c, p, g, m, v, n);                                      \
  }                                                                                           \
  void radam_segment(const RadamCoeffs<T>& c, T* p, const T* g, T* m, T* v, int64_t n) {      \
    k::radam_segment<k::Vec<T>::type>(c, p, g, m, v, n);                                      \
  }                                                                                           \
  void scale_segment(T factor, T* x, int64_t n) {                                             \
    k::scale_segment<k::Vec<T>::type>(factor, x, n);                                          \
  }                                                                                           \
  void lerp_segment(const LerpCoeffs<T>& c, T* a, const T* b, int64_t n) {                    \
    k::lerp_segment<k::Vec<T>::type>(c, a, b, n);                                             \
  }                                                                                           \
  double sum_squares(const T* x, int64_t n) { return k::reduce_sum<true>(x, n); }             \
  double sum_abs(const T* x, int64_t n) { return k::reduce_sum<false>(x, n); }

PYDL_OPTIM_AVX2_INSTANTIATE(float)
PYDL_OPTIM_AVX2_INSTANTIATE(double)
#undef PYDL_OPTIM_AVX2_INSTANTIATE

}  // namespace optim_avx2
}  // namespace pydl
