// Vectorised transcendental functions over simd/vec.h, one template for every Vec<T, ISA>.
//
// Accuracy target: float32 within 1-2 ulp of the correctly rounded result (PyTorch uses SLEEF's
// 1-ulp functions), float64 within a few ulp; tests/csrc/test_elementwise_kernels.py measures
// the maximum ulp error of each against a float64 / mpmath-free reference over wide ranges,
// denormals, +-inf and NaN. The methods are the classical ones (Cody-Waite range reduction,
// then a short polynomial on the reduced argument, as fdlibm and Cephes):
//   exp   x = k ln2 + r, |r| <= ln2/2 (ln2 in a hi and lo part so k ln2_hi is exact; k from
//         one fma with a shifter constant); e^r by a degree-6 minimax polynomial in float
//         (3.6e-9 relative), Taylor to degree 13 in double; 2^k one multiply (an fma with
//         the polynomial) when every lane is below exp_fast_limit, else in two halves so that
//         results in the denormal range round once and 2^128 never appears as an intermediate.
//   log   x = 2^e m, m in [sqrt(1/2), sqrt(2)), f = m - 1, s = f / (2 + f):
//         log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)), R the atanh series 2 s^2/3 + 2 s^4/5 ...
//         (fdlibm's e_log.c arrangement, which keeps the large terms exact).
//   log1p the same on u = 1 + x, plus the rounding error of 1 + x as c = (x - (u - 1)) / u.
//   expm1 e^x - 1 = 2^k (expm1(r) + 1) - 1, with expm1(r) = r + r^2 P(r) so that small x keep
//         full relative accuracy.
//   sin, cos  x = k pi/2 + r with pi/2 in four parts, r carried as a double-T pair r + lo,
//         polynomials on |r| <= pi/4 chosen by the quadrant. The reduction is exact for |x| < 2^12 (float)
//         and 2^19 (double); a vector holding a larger |x| is computed lane by lane with the C
//         library (kernels do that, see sin_kernel in elementwise/kernels.inl).
//   tanh  tanh|x| = e / (e + 2), e = expm1(2|x|): no cancellation for small x; 1 above 9.
//   sigmoid  e = exp(-|x|); x >= 0: 1 / (1 + e), x < 0: e / (1 + e) (exact limits and
//         denormal results for very negative x); float: no division (reciprocal estimate,
//         Newton step, one exact-residual correction), double: div_sum (see there).
// The kernels are latency-bound on Zen 3 (see sigmoid), so the polynomials use Estrin's form
// where that shortens the chain, and every function is forced inline (PYDL_SIMD_INLINE).
//   normal_cdf  the exact GELU's Phi(x), float and double, one branch-free formula (see there).
//   erf (float) |x| < 0.875: x P(x^2) (Taylor); above, erf = 1 - e^(-x^2) R(1/|x|) with R a
//         degree-14 Chebyshev fit of erfc(z) e^(z^2) in u = 1/z on [0.875, 10.5] (relative
//         error 3.4e-9), and e^(-x^2) formed from x^2 split exactly into hi + lo (an fma) so the
//         squaring adds no error. normal_cdf (the exact GELU) has its own cheaper tail (see
//         there) and never forms 1 + erf, so it keeps relative accuracy in its left tail. float64 erf stays on
//         the C library (std::erf) for now, lane by lane.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>

#include "simd/vec.h"

namespace pydl::simd::PYDL_SIMD_NS {

template <class V>
using elem_t = typename V::value_type;

template <class V>
inline V vset(double x) {
  return V::set1(elem_t<V>(x));
}

// Horner's rule: c[0] x^(n-1) + ... + c[n-1], coefficients highest power first.
template <class V, class T, int N>
inline V horner(V x, const T (&c)[N]) {
  V acc = V::set1(c[0]);
  for (int i = 1; i < N; ++i) acc = fma(acc, x, V::set1(c[i]));
  return acc;
}

// p * 2^k for integral k with |k| up to twice the largest normal exponent: two multiplies, so
// neither factor overflows and a denormal result is rounded once, at the last step.
template <class V>
inline V ldexp2(V p, V k) {
  // Nearly always every lane's 2^k is a normal number: one multiply.
  if (!any(abs(k) > vset<V>(std::is_same_v<elem_t<V>, float> ? 126.0 : 1022.0)))
    return p * pow2i(k);
  const V k1 = floor(k * vset<V>(0.5));
  return p * pow2i(k1) * pow2i(k - k1);
}

namespace detail {
// x = k ln2 + r, |r| <= ln2/2 (ln2 in a hi and a lo part, so k ln2_hi is exact); returns k.
// Also sets t = k + kPow2Shifter (for pow2i_shifted): one fma rounds x log2(e) to the integer
// k and places it in t's low bits, in place of a multiply, a rounding and an integer convert.
template <class V>
PYDL_SIMD_INLINE V exp_reduce(V x, V& r, V& t) {
  using T = elem_t<V>;
  t = fma(x, vset<V>(1.4426950408889634), V::set1(kPow2Shifter<T>));
  const V k = t - V::set1(kPow2Shifter<T>);
  if constexpr (std::is_same_v<T, float>) {
    r = fma(k, vset<V>(-0.693359375), x);
    r = fma(k, vset<V>(2.12194440e-4), r);
  } else {
    r = fma(k, vset<V>(-6.93147180369123816490e-01), x);
    r = fma(k, vset<V>(-1.90821492927058770002e-10), r);
  }
  return k;
}
template <class V>
PYDL_SIMD_INLINE V exp_reduce(V x, V& r) {
  V t;
  return exp_reduce(x, r, t);
}

// e^r - 1 for |r| <= ln2/2 as r + r^2 P(r); callers add the 1 together with the scaling by 2^k
// in one fma, e^x = p 2^k + 2^k (the same single rounding as (p + 1) 2^k, one operation less).
// float: P of degree 4, a minimax fit of the relative error of e^r (weighted least squares
// iterated towards equioscillation; 3.6e-9 relative with the coefficients rounded to float,
// 0.06 ulp: one term fewer than the Taylor polynomial to r^7 it replaced, which had 5.5e-9),
// evaluated in Estrin's form (depth 3 instead of Horner's 4: the kernels are latency-bound,
// see exp). double: Taylor to r^13 (first omitted term < 2^-56), Horner.
// The p of this fit is accurate relative to e^r, not to e^r - 1: expm1 keeps its own polynomial.
template <class V>
PYDL_SIMD_INLINE V exp_poly_m1(V r) {
  const V r2 = r * r;
  V p;
  if constexpr (std::is_same_v<elem_t<V>, float>) {
    const V lo = fma(r, vset<V>(0.1666652113199234), vset<V>(0.4999999403953552));
    const V mid = fma(r, vset<V>(0.00836874544620514), vset<V>(0.04166838899254799));
    p = fma(fma(r2, vset<V>(0.0013814539415761828), mid), r2, lo);
  } else {
    static constexpr double c[] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0,
                                   1.0 / 3628800.0,    1.0 / 362880.0,    1.0 / 40320.0,
                                   1.0 / 5040.0,       1.0 / 720.0,       1.0 / 120.0,
                                   1.0 / 24.0,         1.0 / 6.0,         0.5};
    p = horner(r, c);
  }
  return fma(r2, p, r);
}
template <class V>
PYDL_SIMD_INLINE V exp_poly(V r) {
  return exp_poly_m1(r) + vset<V>(1.0);
}

// |x| below which every lane's 2^k is a normal number (k in [-126, 126] resp. [-1021, 1021]):
// e^x is then e^r times 2^k in one multiply, no clamps and no NaN blend (NaN fails the test).
template <class T>
constexpr double exp_fast_limit = std::is_same_v<T, float> ? 87.3 : 708.0;

// e^x for any x: overflow to inf, underflow through the denormals to 0, NaN kept. The kernels
// only come here for a vector with a lane beyond exp_fast_limit (or NaN).
template <class V>
PYDL_SIMD_NOINLINE V exp_general(V x) {
  using T = elem_t<V>;
  constexpr bool f32 = std::is_same_v<T, float>;
  // Beyond these e^x is inf or 0 in T (clamping keeps k inside ldexp2's range).
  const V lo = vset<V>(f32 ? -104.0 : -746.0), hi = vset<V>(f32 ? 89.0 : 710.0);
  V r;
  const V k = exp_reduce(min(max(x, lo), hi), r);
  return select(isnan(x), x, ldexp2(exp_poly(r), k));
}
}  // namespace detail

// e^x
template <class V>
PYDL_SIMD_INLINE V exp(V x) {
  if (all(abs(x) < vset<V>(detail::exp_fast_limit<elem_t<V>>))) {
    V r, t;
    detail::exp_reduce(x, r, t);
    const V s = pow2i_shifted(t);
    return fma(detail::exp_poly_m1(r), s, s);
  }
  return detail::exp_general(x);
}

// e^x - 1
template <class V>
inline V expm1(V x) {
  using T = elem_t<V>;
  constexpr bool f32 = std::is_same_v<T, float>;
  // Below lo the result is -1 in T; above hi it overflows (clamped so k stays in range).
  const V lo = vset<V>(f32 ? -25.0 : -40.0), hi = vset<V>(f32 ? 89.0 : 710.0);
  const V xc = min(max(x, lo), hi);
  const V k = round_int(xc * vset<V>(1.4426950408889634));
  V r;
  if constexpr (f32) {
    r = fma(k, vset<V>(-0.693359375), xc);
    r = fma(k, vset<V>(2.12194440e-4), r);
  } else {
    r = fma(k, vset<V>(-6.93147180369123816490e-01), xc);
    r = fma(k, vset<V>(-1.90821492927058770002e-10), r);
  }
  V p;
  if constexpr (f32) {
    static constexpr float c[] = {1.0f / 40320, 1.0f / 5040, 1.0f / 720, 1.0f / 120,
                                  1.0f / 24,    1.0f / 6,    0.5f};
    p = horner(r, c);
  } else {
    static constexpr double c[] = {1.0 / 87178291200.0, 1.0 / 6227020800.0, 1.0 / 479001600.0,
                                   1.0 / 39916800.0,    1.0 / 3628800.0,    1.0 / 362880.0,
                                   1.0 / 40320.0,       1.0 / 5040.0,       1.0 / 720.0,
                                   1.0 / 120.0,         1.0 / 24.0,         1.0 / 6.0,
                                   0.5};
    p = horner(r, c);
  }
  const V em = fma(r * r, p, r);  // e^r - 1
  const V one = vset<V>(1.0);
  // k >= 0: 2^k (em + 1 - 2^-k); 1 - 2^-k is exact, and 2^-k' with k' = min(k, 60) stays normal.
  const V up = ldexp2(em + (one - pow2i(-min(k, vset<V>(60.0)))), k);
  // k < 0 (k >= -58 after the clamp): 2^k em + (2^k - 1), 2^k - 1 exact for the k that matter.
  const V s = pow2i(max(k, vset<V>(-60.0)));
  const V down = fma(s, em, s - one);
  return select(isnan(x), x, select(k < V::set1(T(0)), down, up));
}

namespace detail {
// log(1 + f) + corr for f in [sqrt(1/2) - 1, sqrt(2) - 1], plus e ln2 (fdlibm's arrangement).
template <class V>
inline V log_core(V f, V e, V corr) {
  using T = elem_t<V>;
  const V s = f / (vset<V>(2.0) + f);
  const V z = s * s;
  V R;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr float c[] = {2.0f / 9, 2.0f / 7, 2.0f / 5, 2.0f / 3};
    R = horner(z, c) * z;
  } else {
    static constexpr double c[] = {2.0 / 23, 2.0 / 21, 2.0 / 19, 2.0 / 17, 2.0 / 15, 2.0 / 13,
                                   2.0 / 11, 2.0 / 9,  2.0 / 7,  2.0 / 5,  2.0 / 3};
    R = horner(z, c) * z;
  }
  const V hfsq = vset<V>(0.5) * f * f;
  V ln2_hi, ln2_lo;
  if constexpr (std::is_same_v<T, float>) {
    ln2_hi = vset<V>(0.693359375);
    ln2_lo = vset<V>(-2.12194440e-4);
  } else {
    ln2_hi = vset<V>(6.93147180369123816490e-01);
    ln2_lo = vset<V>(1.90821492927058770002e-10);
  }
  return fma(e, ln2_hi, f - (hfsq - fma(s, hfsq + R, fma(e, ln2_lo, corr))));
}

// For a positive finite normal u: e and f with u = 2^e (1 + f), 1 + f in [sqrt(1/2), sqrt(2)).
template <class V>
inline void split_log_arg(V u, V& e, V& f) {
  V m = mantissa_1_2(u);
  e = exponent_field(u);
  const auto big = m > vset<V>(1.4142135623730951);
  m = select(big, m * vset<V>(0.5), m);
  e = select(big, e + vset<V>(1.0), e);
  f = m - vset<V>(1.0);
}
}  // namespace detail

// natural log
template <class V>
inline V log(V x) {
  using T = elem_t<V>;
  constexpr bool f32 = std::is_same_v<T, float>;
  const V zero = V::set1(T(0));
  // Denormals: scale into the normal range first (2^24 / 2^54), subtract that from e.
  const auto tiny = x < V::set1(std::numeric_limits<T>::min());
  const V xs = select(tiny, x * vset<V>(f32 ? 16777216.0 : 18014398509481984.0), x);
  V e, f;
  detail::split_log_arg(xs, e, f);
  e = select(tiny, e - vset<V>(f32 ? 24.0 : 54.0), e);
  V y = detail::log_core(f, e, zero);
  const V inf = V::set1(std::numeric_limits<T>::infinity());
  y = select(x == inf, inf, y);
  y = select(x == zero, -inf, y);
  y = select(x < zero, V::set1(std::numeric_limits<T>::quiet_NaN()), y);
  return select(isnan(x), x, y);
}

// log(1 + x)
template <class V>
inline V log1p(V x) {
  using T = elem_t<V>;
  const V one = vset<V>(1.0), zero = V::set1(T(0));
  const V u = x + one;
  V e, f;
  detail::split_log_arg(max(u, V::set1(std::numeric_limits<T>::min())), e, f);
  const V corr = (x - (u - one)) / u;  // 1 + x = u (1 + corr) to first order
  V y = detail::log_core(f, e, corr);
  const V inf = V::set1(std::numeric_limits<T>::infinity());
  y = select(x == inf, inf, y);
  y = select(u == zero, -inf, y);
  y = select(x < -one, V::set1(std::numeric_limits<T>::quiet_NaN()), y);
  y = select(x == zero, x, y);  // keeps -0
  return select(isnan(x), x, y);
}

namespace detail {
// sin and cos of r + lo, |r| <= pi/4, lo a tail below r's last bit (Taylor polynomials; float to
// r^9 / r^10, double to r^19 / r^20; the tail enters to first order: sin' = cos ~ 1 - r^2/2,
// cos' = -sin ~ -r).
template <class V>
inline V sin_poly(V r, V lo) {
  using T = elem_t<V>;
  const V z = r * r;
  V S;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr float c[] = {1.0f / 362880, -1.0f / 5040, 1.0f / 120, -1.0f / 6};
    S = horner(z, c);
  } else {
    static constexpr double c[] = {-1.0 / 121645100408832000.0, 1.0 / 355687428096000.0,
                                   -1.0 / 1307674368000.0,      1.0 / 6227020800.0,
                                   -1.0 / 39916800.0,           1.0 / 362880.0,
                                   -1.0 / 5040.0,               1.0 / 120.0,
                                   -1.0 / 6.0};
    S = horner(z, c);
  }
  return r + fma(r * z, S, fma(vset<V>(-0.5) * z, lo, lo));
}
template <class V>
inline V cos_poly(V r, V lo) {
  using T = elem_t<V>;
  const V z = r * r;
  V C;
  if constexpr (std::is_same_v<T, float>) {
    static constexpr float c[] = {-1.0f / 3628800, 1.0f / 40320, -1.0f / 720, 1.0f / 24};
    C = horner(z, c);
  } else {
    static constexpr double c[] = {1.0 / 2432902008176640000.0, -1.0 / 6402373705728000.0,
                                   1.0 / 20922789888000.0,      -1.0 / 87178291200.0,
                                   1.0 / 479001600.0,           -1.0 / 3628800.0,
                                   1.0 / 40320.0,               -1.0 / 720.0,
                                   1.0 / 24.0};
    C = horner(z, c);
  }
  // 1 - z/2 + z^2 C - r lo: w = 1 - z/2 rounded, plus its rounding error, small terms last.
  const V hz = vset<V>(0.5) * z;
  const V w = vset<V>(1.0) - hz;
  return w + (((vset<V>(1.0) - w) - hz) + fma(z * z, C, -(r * lo)));
}

// sin(x + q0 pi/2) for |x| below sincos_limit (q0 = 0: sin, 1: cos).
template <class V>
inline V sin_quadrant(V x, double q0) {
  using T = elem_t<V>;
  const V k = round_int(x * vset<V>(0.63661977236758134));
  // x - k pi/2 with pi/2 = p1 + p2 + p3 + p4: k p1 and k p2 are exact products (p1, p2 have
  // few bits), x - k p1 is exact (Sterbenz), and the rounding error of subtracting k p2 is
  // recovered exactly (Fast2Sum), so the remainder is carried as r + lo to ~2x T's precision:
  // otherwise that one rounding alone costs up to 0.9 ulp of the result.
  V p2, p3, p4, r1;
  if constexpr (std::is_same_v<T, float>) {
    r1 = fma(k, vset<V>(-1.57080078125), x);
    p2 = vset<V>(-4.453584551811218e-06);
    p3 = vset<V>(-8.706138032721356e-10);
    p4 = vset<V>(6.223371969669989e-14);
  } else {
    r1 = fma(k, vset<V>(-1.57079632673412561417e+00), x);
    p2 = vset<V>(6.07710050630396597660e-11);
    p3 = vset<V>(2.02226624871116645580e-21);
    p4 = vset<V>(8.47842766036889956997e-32);
  }
  const V kp2 = k * p2;
  const V r2 = r1 - kp2;
  V lo = (r1 - r2) - kp2;
  lo = fma(-k, p3, lo);
  lo = fma(-k, p4, lo);
  const V r = r2 + lo;
  lo = (r2 - r) + lo;
  const V q = k + vset<V>(q0);
  const V q4 = q - vset<V>(4.0) * floor(q * vset<V>(0.25));  // 0, 1, 2, 3
  const V odd = q4 - vset<V>(2.0) * floor(q4 * vset<V>(0.5));
  const V s = sin_poly(r, lo), c = cos_poly(r, lo);
  const V y = select(odd == vset<V>(1.0), c, s);
  return select(q4 >= vset<V>(2.0), -y, y);
}
}  // namespace detail

// |x| up to which sin / cos reduce exactly in T; kernels send larger lanes to the C library.
template <class T>
constexpr double sincos_limit = std::is_same_v<T, float> ? 4096.0 : 524288.0;

template <class V>
inline V sin(V x) {
  return detail::sin_quadrant(x, 0.0);
}
template <class V>
inline V cos(V x) {
  return detail::sin_quadrant(x, 1.0);
}

namespace detail {
// num / (a + b) for |a| >= |b|, correcting for the rounding of a + b (its error t is exact by
// Fast2Sum) and of the first quotient, with a few fmas and an approximate reciprocal: takes the
// quotient of tanh and sigmoid from ~2.5 to ~1.5 ulp in float.
template <class V>
inline V div_sum(V num, V a, V b) {
  const V d = a + b;
  const V t = (a - d) + b;
  const V q = num / d;
  const V res = fma(-q, d, num) - q * t;
  return fma(res, rcp_approx(d), q);  // res is below q's last bit: 11 bits of 1/d suffice
}
}  // namespace detail

// tanh|x| = e / (e + 2), e = expm1(2|x|): a relative error in e reaches the result damped by
// 2 / (e + 2) <= 1 (with expm1(-2|x|) it would be amplified up to 2x near 1). Above 9 (float) /
// 19.1 (double) tanh rounds to 1, and e would overflow further up.
template <class V>
inline V tanh(V x) {
  using T = elem_t<V>;
  const V lim = vset<V>(std::is_same_v<T, float> ? 9.0 : 19.1);
  const V ax = abs(x);
  const V e = expm1(vset<V>(2.0) * min(ax, lim));
  const V t = detail::div_sum(e, vset<V>(2.0), e);
  // e + 2 with e > 2 breaks div_sum's |a| >= |b|; the plain quotient is then accurate anyway
  // (the relative error of e is damped by 2 / (e + 2) < 1/2).
  const V y = select(e > vset<V>(2.0), e / (e + vset<V>(2.0)), t);
  return select(isnan(x), x, copysign(select(ax > lim, vset<V>(1.0), y), x));
}

namespace detail {
// Any lane with -|x| beyond exp's fast range (or NaN): e = exp(-|x|) through exp_general (exact
// denormal results down to x = -103.9) and the quotient corrected by div_sum.
template <class V>
PYDL_SIMD_NOINLINE V sigmoid_general(V x) {
  using T = elem_t<V>;
  const V e = exp(-abs(x));
  const V one = vset<V>(1.0);
  return div_sum(select(x >= V::set1(T(0)), one, e), one, e);
}
}  // namespace detail

// e = e^(-|x|); x >= 0: 1 / (1 + e), x < 0: e / (1 + e) (no cancellation, exact limits).
// float: the quotient q = num / (1 + e) without a division: q0 = num r1, r1 ~ 1/(1 + e) to
// 2^-22.8 (the 12-bit reciprocal estimate r0 and one Newton step), then one correction
// q0 + res r0 by the residual res = num - q0 (1 + e) = (num - q0) - q0 e, where num - q0 is
// exact (Sterbenz: q0 is within [num/2, num]) and the fnma rounds once, so the rounding of
// 1 + e never enters (div_sum needed Fast2Sum for that). Max error 1.35 ulp over the test's
// wide sample (the division-based version: 1.33), 1.46 over every 17th float bit pattern
// (1.52). A division in place of r0's Newton step measured the same speed. double: div_sum.
template <class V>
PYDL_SIMD_INLINE V sigmoid(V x) {
  using T = elem_t<V>;
  const V m = neg_abs(x);
  if (!all(m > vset<V>(-detail::exp_fast_limit<T>))) return detail::sigmoid_general(x);
  V r, t;
  detail::exp_reduce(m, r, t);
  const V s = pow2i_shifted(t);
  const V pm1 = detail::exp_poly_m1(r);
  const V e = fma(pm1, s, s);
  const V one = vset<V>(1.0);
  const V num = select_sign(x, e, one);  // -0 takes e = 1: 1 / 2 all the same
  if constexpr (std::is_same_v<T, float>) {
    // q0 = num r0 (1 + (1 - d r0)) = num r1, with num r0 and the Newton error 1 - d r0 formed
    // side by side; the final correction uses r0 (its 12 bits suffice for a 2^-22 residual).
    // Latency, not throughput, bounds this loop on Zen 3 (the out-of-order window holds ~7
    // iterations of its ~60-cycle chain), so the shorter chain is what counts: d = 1 + e is
    // formed next to e, not after it (the residual uses e itself, so d may be rounded twice).
    const V d = fma(pm1, s, one + s);
    const V r0 = rcp_approx(d);
    const V qa = num * r0;
    const V q0 = fma(qa, fnma(d, r0, one), qa);
    return fma(fnma(q0, e, num - q0), r0, q0);
  } else {
    return detail::div_sum(num, one, e);
  }
}

namespace detail {
// float erf pieces: erf(z) for |z| < 0.875, and erfc(|z|) for |z| >= 0.875.
template <class V>
inline V erf_small(V z) {
  // erf(z) = z + z (c0 - 1 + c1 z^2 + ...), c_n = 2/sqrt(pi) (-1)^n / (n! (2n+1)): the leading
  // 1 is added by the final fma, so the rounding of the rest (|.| <= 0.13) is damped ~8x.
  static constexpr float c[] = {
      float(-1.1283791670955126 / 6894720.0),  // n = 9
      float(1.1283791670955126 / 685440.0),    // n = 8
      float(-1.1283791670955126 / 75600.0),    // n = 7
      float(1.1283791670955126 / 9360.0),      // n = 6
      float(-1.1283791670955126 / 1320.0),     // n = 5
      float(1.1283791670955126 / 216.0),       // n = 4
      float(-1.1283791670955126 / 42.0),       // n = 3
      float(1.1283791670955126 / 10.0),        // n = 2
      float(-1.1283791670955126 / 3.0)};       // n = 1
  const V z2 = z * z;
  const V rest = fma(horner(z2, c), z2, vset<V>(0.1283791670955126));
  return fma(z, rest, z);
}
// erfc(az) for az >= 0.875, given az^2 = sq_hi + sq_lo exactly: e^(-az^2) then loses nothing
// to the squaring (for the normal CDF the caller forms x^2 / 2 from x itself, since rounding
// z = x / sqrt(2) first would cost a relative 2^-23 z^2 in the exponent, 1e-5 at x = -12).
template <class V>
inline V erfc_tail(V az, V e_minus_az2);
template <class V>
inline V erfc_large(V az, V sq_hi, V sq_lo) {
  return erfc_tail(az, exp(-sq_hi) * (vset<V>(1.0) - sq_lo));  // e^(-hi - lo), lo tiny
}
// erfc(az) = e^(-az^2) R(1/az), az >= 0.875, given e^(-az^2).
template <class V>
inline V erfc_tail(V az, V e_minus_az2) {
  // R(u) = erfc(z) e^(z^2), u = 1/z, as a polynomial in s = (u - 0.6190476) / 0.5238095.
  static constexpr float c[] = {5.6488199922128091e-06f, -7.3844298192902907e-06f,
                                -1.660098833163803e-05f, 3.9133358763339748e-05f,
                                -3.7413192853042552e-05f, 3.7098074827692324e-05f,
                                1.2745175998832557e-05f, -0.00027107983097432057f,
                                0.00091683396973155442f, -0.0019176623859096711f,
                                0.0018632617459485655f,  0.0062084176329758375f,
                                -0.047514110485038612f,  0.20132131947258963f,
                                0.30367137641171427f};
  const V u = vset<V>(1.0) / az;
  const V s = fma(u, vset<V>(1.0 / 0.5238095238095237), vset<V>(-0.6190476190476191 / 0.5238095238095237));
  return e_minus_az2 * horner(s, c);
}
}  // namespace detail

// erf, float lanes only (see the header comment for float64)
template <class V>
inline V erf(V x) {
  const V ax = min(abs(x), vset<V>(10.5));
  const V hi = ax * ax;
  const V big = copysign(vset<V>(1.0) - detail::erfc_large(ax, hi, fma(ax, ax, -hi)), x);
  const V y = select(abs(x) < vset<V>(0.875), detail::erf_small(x), big);
  return select(isnan(x), x, y);
}

// The standard normal CDF Phi(x) = erfc(-x / sqrt(2)) / 2 (float and double lanes), without the
// cancellation of (1 + erf(z)) / 2 for negative x; also sets e_half_x2 = e^(-x^2/2), which
// the GELU backward needs for the density (computed once for both).
// One branch-free formula for every x (issue #13: the exact GELU ran at 0.3x PyTorch with a
// Taylor piece, a tail piece and vector branches): h = erfc(|z|) / 2 = e^(-x^2/2) t Q(t),
// z = x / sqrt(2), t = 1 / (1 + 0.38 |z|), Q a degree-8 polynomial (relative fit error 1.9e-8
// of erfc(a) e^(a^2) / (2t) over a in [0, 9.35], weighted least squares iterated towards
// minimax); Phi = h for x < 0 and 1 - h for x > 0. The rounding of t reaches h amplified by at
// most 1.13 / 0.38 ~ 3 (at x = 0, falling to 1 in the tail). float GELU (gelu_exact below)
// measures 7.5 ulp over every 17th float bit pattern and 5.9 over every float in [-13.2, -12]
// (the old two-piece erf: 14 ulp); PyTorch 2.13's exact GELU: 542 ulp for |x| < 3 and no correct
// digit below x ~ -6. double: 6.5 ulp. tests/csrc/test_elementwise_kernels.py bounds these.
// e^(-x^2/2) is formed with x^2 = hi + lo split exactly (an fma), lo entering the reduced
// argument, so squaring adds no error (at x = -12 it would cost 4e-6 relative). Beyond
// |x| = 13.2, e^(-x^2/2) < 2^-126: such lanes get e^(-x^2/2) = 0, so Phi = 0 / 1 there (true
// values below 6e-39, flushed), which keeps the exponential's 2^k a single normal multiply.
// NaN lanes give an unspecified Phi: the GELU kernels multiply by x, which makes them NaN.
namespace detail {
// t Q(t) of normal_cdf's formula (h = e^(-x^2/2) t Q(t)), and e^(-x^2/2) in e_half_x2.
template <class V>
PYDL_SIMD_INLINE V normal_tail_parts(V x, V& e_half_x2) {
  using T = elem_t<V>;
  constexpr bool f32 = std::is_same_v<T, float>;
  const V one = vset<V>(1.0);
  const V lim = vset<V>(f32 ? 13.2 : 37.5);  // e^(-lim^2/2) still a normal number
  const V ax = min(abs(x), lim);
  const V x2 = ax * ax, x2_lo = fma(ax, ax, -x2);
  // e^(-(x2 + x2_lo) / 2): exp's reduction and polynomial, x2_lo entering the reduced argument
  // (x2 / 2 >= -87.12 resp. -703: 2^k stays normal).
  V r, sh;
  detail::exp_reduce(x2 * vset<V>(-0.5), r, sh);
  r = fma(x2_lo, vset<V>(-0.5), r);
  const V s2k = pow2i_shifted(sh);
  const V e = fma(detail::exp_poly_m1(r), s2k, s2k);
  e_half_x2 = select(abs(x) > lim, V::set1(T(0)), e);
  V tq;
  if constexpr (f32) {
    // Q in Estrin's form (depth 4 instead of Horner's 8). t stays a division: vdivps has 11
    // cycles of latency on Zen 3, and the reciprocal estimate with two Newton steps (5 macro-ops,
    // ~21 cycles) measured 9% slower here (1 thread, L2-resident). The whole GELU measured the
    // same speed as with Horner: this loop is throughput-bound (~40 vector ops), not latency-bound.
    const V D = fma(ax, vset<V>(0.26870057685088805), one);  // 1 + 0.38 |x| / sqrt(2)
    const V t = one / D;
    const V t2 = t * t, t4 = t2 * t2;
    const V p1 = fma(t, vset<V>(-0.1308053880929947), vset<V>(0.18120300769805908));
    const V p2 = fma(t, vset<V>(-0.07985039055347443), vset<V>(0.11436758935451508));
    const V p3 = fma(t, vset<V>(0.06961841136217117), vset<V>(0.10187268257141113));
    const V p4 = fma(t, vset<V>(0.1069718673825264), vset<V>(0.10720470547676086));
    const V u1 = fma(vset<V>(0.029417531564831734), t2, p1);
    const V Q = fma(fma(u1, t2, p2), t4, fma(p3, t2, p4));
    tq = t * Q;
  } else {
    // float64: t = 1 / (1 + 0.35 |z|), Q of degree 22 (interpolated at Chebyshev nodes in
    // 40-digit arithmetic; relative error 3.2e-16 of erfc(a) e^(a^2) / (2t) for a <= 26.6,
    // Horner's rounding included, measured in double).
    const V t = one / fma(ax, vset<V>(0.24748737341529159), one);  // 0.35 / sqrt(2)
    static constexpr double q[] = {
        -0.0012151034513725963, 0.013956889988560798,  -0.072987257665226443,
        0.2281401241157372,     -0.46921828990947367,  0.65570231910931565,
        -0.61385030827709952,   0.34915691846838953,   -0.059070058240197496,
        -0.10067360443010021,   0.13075917939540674,   -0.087645655461949162,
        0.036114501190870917,   -0.021082278975236002, 0.0019733972519268609,
        0.0073332311974054487,  0.024506564741847568,  0.043794490412237687,
        0.063562002095976317,   0.080590807029285033,  0.092685777391736279,
        0.098733176898006425,   0.098733177123952701};
    tq = t * horner(t, q);
  }
  return tq;
}
}  // namespace detail

template <class V>
PYDL_SIMD_INLINE V normal_cdf(V x, V& e_half_x2) {
  // Two statements: normal_tail_parts sets e_half_x2, and the operands of one `*` are
  // unsequenced (clang read e_half_x2 before the call: NaN GELU gradients in the wheel).
  const V tq = detail::normal_tail_parts(x, e_half_x2);
  const V h = e_half_x2 * tq;
  return select(x > V::set1(elem_t<V>(0)), vset<V>(1.0) - h, h);
}

template <class V>
PYDL_SIMD_INLINE V normal_cdf(V x) {
  V e;
  return normal_cdf(x, e);
}

// The exact GELU x Phi(x). For x < 0 as (x e^(-x^2/2)) (t Q): near x = -13.1 the tail
// h = e^(-x^2/2) t Q is itself a float denormal (~1.7e-39) while x h is a normal ~2e-38, and
// forming h first cost up to 10.4 ulp there (measured over every float in [-13.2, -12]).
template <class V>
PYDL_SIMD_INLINE V gelu_exact(V x) {
  V e;
  const V tq = detail::normal_tail_parts(x, e);
  return select(x > V::set1(elem_t<V>(0)), x * (vset<V>(1.0) - e * tq), (x * e) * tq);
}

}  // namespace pydl::simd::PYDL_SIMD_NS
