// A small vector abstraction (PyTorch's at::vec, reduced to what pydl's kernels use), so that a
// kernel is written once and compiled per instruction set:
//
//   Vec<T, Scalar>   one element, plain C++ (the portable path; every build has it)
//   Vec<T, AVX2>     __m256 / __m256d   (only where __AVX2__ and __FMA__ are defined)
//   Vec<T, AVX512>   __m512 / __m512d   (only where __AVX512F__ .. VL are defined)
//
// with T = float or double. Each Vec has size, set1/load/store, load_partial/store_partial for
// the last n < size elements of a row, arithmetic, fma, fnma (c - a b), min/max (x86
// semantics: the second operand where either is NaN; kernels that must propagate NaN blend
// explicitly), sqrt,
// comparisons giving a Mask, select(mask, a, b), bit operations, and the integer-exponent
// helpers that exp/log need (round_int, pow2i, pow2i_shifted, frexp-like split), neg_abs and
// select_sign (a blend on each lane's sign bit).
//
// One-definition rule: a kernel translation unit includes this header with PYDL_SIMD_NS defined
// to a name of its own (portable, avx2, avx512), and everything here lives in that namespace.
// Inline functions compiled with -mavx512f in one file and without in another would otherwise be
// the same symbol, and the linker could keep the AVX-512 copy for the portable path.
#pragma once

#ifndef PYDL_SIMD_NS
#error "define PYDL_SIMD_NS (portable, avx2 or avx512) before including simd/vec.h"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

// Inlining for the hot loops. The elementwise translation unit instantiates every op for float
// and double and for each combination of broadcast inputs; past GCC's inline-unit-growth limits
// it stopped inlining sigmoid, exp, tanh, the GELU backward ... into the vector loop and called
// them once per vector (every ymm register is caller-saved, so each call spilled, and the two
// independent vectors per iteration could no longer overlap): sigmoid ran at 7.6 ms on
// 4096x1024 float32, 3.6 ms inlined (AMD EPYC Zen 3, 1 thread). PYDL_SIMD_FLATTEN on a loop
// inlines everything it calls; PYDL_SIMD_INLINE forces one function; PYDL_SIMD_NOINLINE keeps a
// rare slow path (a vector holding an overflow or NaN lane) out of the hot loop.
#ifndef PYDL_SIMD_INLINE
#if defined(__GNUC__) || defined(__clang__)
#define PYDL_SIMD_INLINE inline __attribute__((always_inline))
#define PYDL_SIMD_FLATTEN __attribute__((flatten))
#define PYDL_SIMD_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define PYDL_SIMD_INLINE __forceinline
#define PYDL_SIMD_FLATTEN
#define PYDL_SIMD_NOINLINE __declspec(noinline)
#else
#define PYDL_SIMD_INLINE inline
#define PYDL_SIMD_FLATTEN
#define PYDL_SIMD_NOINLINE
#endif
#endif

namespace pydl::simd::PYDL_SIMD_NS {

struct Scalar {};
struct AVX2 {};
struct AVX512 {};

template <class T, class ISA>
struct Vec;

// Bit patterns of float / double as same-width integers.
template <class T>
using Bits = std::conditional_t<std::is_same_v<T, float>, uint32_t, uint64_t>;
template <class T>
inline Bits<T> bits_of(T x) {
  Bits<T> b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
template <class T>
inline T from_bits(Bits<T> b) {
  T x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}
template <class T>
constexpr int kMantBits = std::is_same_v<T, float> ? 23 : 52;
template <class T>
constexpr int kExpBias = std::is_same_v<T, float> ? 127 : 1023;
// 1.5 * 2^23 (2^52) plus the exponent bias: fma(x, c, kPow2Shifter) rounds x c to an integer n
// and leaves n + bias in the low mantissa bits, which pow2i_shifted moves into the exponent.
template <class T>
constexpr T kPow2Shifter = std::is_same_v<T, float> ? T(12582912.0 + 127) : T(6755399441055744.0 + 1023);

// ---- portable: one element ----------------------------------------------------------------------
template <class T>
struct ScalarMask {
  bool m;
};
template <class T>
struct Vec<T, Scalar> {
  using value_type = T;
  static constexpr int size = 1;
  using Mask = ScalarMask<T>;
  T v;
  static Vec set1(T x) { return {x}; }
  static Vec load(const T* p) { return {*p}; }
  static Vec load_partial(const T* p, int) { return {*p}; }
  void store(T* p) const { *p = v; }
  void store_partial(T* p, int) const { *p = v; }
};

template <class T>
using SV = Vec<T, Scalar>;
template <class T> inline SV<T> operator+(SV<T> a, SV<T> b) { return {a.v + b.v}; }
template <class T> inline SV<T> operator-(SV<T> a, SV<T> b) { return {a.v - b.v}; }
template <class T> inline SV<T> operator*(SV<T> a, SV<T> b) { return {a.v * b.v}; }
template <class T> inline SV<T> operator/(SV<T> a, SV<T> b) { return {a.v / b.v}; }
template <class T> inline SV<T> operator-(SV<T> a) { return {-a.v}; }
template <class T> inline SV<T> fma(SV<T> a, SV<T> b, SV<T> c) { return {std::fma(a.v, b.v, c.v)}; }
// c - a b with one rounding
template <class T> inline SV<T> fnma(SV<T> a, SV<T> b, SV<T> c) { return {std::fma(-a.v, b.v, c.v)}; }
// x86 minps/maxps semantics (the second operand when either is NaN), so every path agrees.
template <class T> inline SV<T> min(SV<T> a, SV<T> b) { return {a.v < b.v ? a.v : b.v}; }
template <class T> inline SV<T> max(SV<T> a, SV<T> b) { return {a.v > b.v ? a.v : b.v}; }
template <class T> inline SV<T> sqrt(SV<T> a) { return {std::sqrt(a.v)}; }
template <class T> inline SV<T> abs(SV<T> a) { return {std::fabs(a.v)}; }
template <class T> inline SV<T> round_int(SV<T> a) { return {std::nearbyint(a.v)}; }
template <class T> inline SV<T> floor(SV<T> a) { return {std::floor(a.v)}; }
// ~1/a to at least 11 bits (exact here); for correction terms, never for results.
template <class T> inline SV<T> rcp_approx(SV<T> a) { return {T(1) / a.v}; }
template <class T> inline ScalarMask<T> operator<(SV<T> a, SV<T> b) { return {a.v < b.v}; }
template <class T> inline ScalarMask<T> operator<=(SV<T> a, SV<T> b) { return {a.v <= b.v}; }
template <class T> inline ScalarMask<T> operator>(SV<T> a, SV<T> b) { return {a.v > b.v}; }
template <class T> inline ScalarMask<T> operator>=(SV<T> a, SV<T> b) { return {a.v >= b.v}; }
template <class T> inline ScalarMask<T> operator==(SV<T> a, SV<T> b) { return {a.v == b.v}; }
template <class T> inline ScalarMask<T> operator!=(SV<T> a, SV<T> b) { return {a.v != b.v}; }
template <class T> inline ScalarMask<T> isnan(SV<T> a) { return {a.v != a.v}; }
template <class T> inline SV<T> select(ScalarMask<T> m, SV<T> a, SV<T> b) { return {m.m ? a.v : b.v}; }
template <class T> inline bool any(ScalarMask<T> m) { return m.m; }
template <class T> inline bool all(ScalarMask<T> m) { return m.m; }
template <class T> inline ScalarMask<T> operator&(ScalarMask<T> a, ScalarMask<T> b) { return {a.m && b.m}; }
template <class T> inline ScalarMask<T> operator|(ScalarMask<T> a, ScalarMask<T> b) { return {a.m || b.m}; }
template <class T> inline ScalarMask<T> operator!(ScalarMask<T> a) { return {!a.m}; }
// sign bit of b on the magnitude of a
template <class T> inline SV<T> copysign(SV<T> a, SV<T> b) { return {std::copysign(a.v, b.v)}; }
// 2^k for integral k in the normal exponent range.
template <class T> inline SV<T> pow2i(SV<T> k) {
  return {from_bits<T>(Bits<T>(int64_t(k.v) + kExpBias<T>) << kMantBits<T>)};
}
// 2^n from t = n + kPow2Shifter<T> (as left by an fma that adds the shifter: n then sits in the
// low mantissa bits of t, biased), for n in the normal exponent range.
template <class T> inline SV<T> pow2i_shifted(SV<T> t) {
  return {from_bits<T>(Bits<T>(bits_of(t.v) << kMantBits<T>))};
}
// -|a| (the sign bit set)
template <class T> inline SV<T> neg_abs(SV<T> a) { return {-std::fabs(a.v)}; }
// a where the sign bit of s is set (-0.0 and negative NaNs included), else b.
template <class T> inline SV<T> select_sign(SV<T> s, SV<T> a, SV<T> b) {
  return {std::signbit(s.v) ? a.v : b.v};
}
// For a positive normal x: the unbiased exponent e (as T) and m = x / 2^e in [1, 2).
template <class T> inline SV<T> exponent_field(SV<T> x) {
  return {T(int64_t(bits_of(x.v) >> kMantBits<T>) - kExpBias<T>)};
}
template <class T> inline SV<T> mantissa_1_2(SV<T> x) {
  constexpr Bits<T> mant = (Bits<T>(1) << kMantBits<T>) - 1;
  return {from_bits<T>((bits_of(x.v) & mant) | (Bits<T>(kExpBias<T>) << kMantBits<T>))};
}
template <class T> inline T first(SV<T> a) { return a.v; }

// ---- AVX2 + FMA ---------------------------------------------------------------------------------
#if defined(__AVX2__) && defined(__FMA__)
template <>
struct Vec<float, AVX2> {
  using value_type = float;
  static constexpr int size = 8;
  struct Mask {
    __m256 m;
  };
  __m256 v;
  static Vec set1(float x) { return {_mm256_set1_ps(x)}; }
  static Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static __m256i tail_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec load_partial(const float* p, int n) { return {_mm256_maskload_ps(p, tail_mask(n))}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm256_maskstore_ps(p, tail_mask(n), v); }
};
template <>
struct Vec<double, AVX2> {
  using value_type = double;
  static constexpr int size = 4;
  struct Mask {
    __m256d m;
  };
  __m256d v;
  static Vec set1(double x) { return {_mm256_set1_pd(x)}; }
  static Vec load(const double* p) { return {_mm256_loadu_pd(p)}; }
  static __m256i tail_mask(int n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static Vec load_partial(const double* p, int n) { return {_mm256_maskload_pd(p, tail_mask(n))}; }
  void store(double* p) const { _mm256_storeu_pd(p, v); }
  void store_partial(double* p, int n) const { _mm256_maskstore_pd(p, tail_mask(n), v); }
};

using VF8 = Vec<float, AVX2>;
using VD4 = Vec<double, AVX2>;
#define PYDL_AVX2_COMMON(VT, S)                                                                    \
  inline VT operator+(VT a, VT b) { return {_mm256_add_##S(a.v, b.v)}; }                         \
  inline VT operator-(VT a, VT b) { return {_mm256_sub_##S(a.v, b.v)}; }                         \
  inline VT operator*(VT a, VT b) { return {_mm256_mul_##S(a.v, b.v)}; }                         \
  inline VT operator/(VT a, VT b) { return {_mm256_div_##S(a.v, b.v)}; }                         \
  inline VT operator-(VT a) { return {_mm256_xor_##S(a.v, _mm256_set1_##S(-0.0))}; }             \
  inline VT fma(VT a, VT b, VT c) { return {_mm256_fmadd_##S(a.v, b.v, c.v)}; }                  \
  inline VT fnma(VT a, VT b, VT c) { return {_mm256_fnmadd_##S(a.v, b.v, c.v)}; }                \
  inline VT min(VT a, VT b) { return {_mm256_min_##S(a.v, b.v)}; }                               \
  inline VT max(VT a, VT b) { return {_mm256_max_##S(a.v, b.v)}; }                               \
  inline VT sqrt(VT a) { return {_mm256_sqrt_##S(a.v)}; }                                        \
  inline VT abs(VT a) { return {_mm256_andnot_##S(_mm256_set1_##S(-0.0), a.v)}; }                \
  inline VT round_int(VT a) {                                                                     \
    return {_mm256_round_##S(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};              \
  }                                                                                               \
  inline VT floor(VT a) { return {_mm256_floor_##S(a.v)}; }                                     \
  inline VT::Mask operator<(VT a, VT b) { return {_mm256_cmp_##S(a.v, b.v, _CMP_LT_OQ)}; }       \
  inline VT::Mask operator<=(VT a, VT b) { return {_mm256_cmp_##S(a.v, b.v, _CMP_LE_OQ)}; }      \
  inline VT::Mask operator>(VT a, VT b) { return {_mm256_cmp_##S(a.v, b.v, _CMP_GT_OQ)}; }       \
  inline VT::Mask operator>=(VT a, VT b) { return {_mm256_cmp_##S(a.v, b.v, _CMP_GE_OQ)}; }      \
  inline VT::Mask operator==(VT a, VT b) { return {_mm256_cmp_##S(a.v, b.v, _CMP_EQ_OQ)}; }      \
  inline VT::Mask operator!=(VT a, VT b) { return {_mm256_cmp_##S(a.v, b.v, _CMP_NEQ_UQ)}; }     \
  inline VT::Mask isnan(VT a) { return {_mm256_cmp_##S(a.v, a.v, _CMP_UNORD_Q)}; }               \
  inline VT select(VT::Mask m, VT a, VT b) { return {_mm256_blendv_##S(b.v, a.v, m.m)}; }        \
  inline bool any(VT::Mask m) { return _mm256_movemask_##S(m.m) != 0; }                          \
  inline bool all(VT::Mask m) { return _mm256_movemask_##S(m.m) == (1 << VT::size) - 1; }       \
  inline VT::Mask operator&(VT::Mask a, VT::Mask b) { return {_mm256_and_##S(a.m, b.m)}; }       \
  inline VT::Mask operator|(VT::Mask a, VT::Mask b) { return {_mm256_or_##S(a.m, b.m)}; }        \
  inline VT::Mask operator!(VT::Mask a) {                                                         \
    return {_mm256_xor_##S(a.m, _mm256_castsi256_##S(_mm256_set1_epi32(-1)))};                   \
  }                                                                                               \
  inline VT copysign(VT a, VT b) {                                                                \
    const auto s = _mm256_set1_##S(-0.0);                                                         \
    return {_mm256_or_##S(_mm256_andnot_##S(s, a.v), _mm256_and_##S(s, b.v))};                   \
  }
PYDL_AVX2_COMMON(VF8, ps)
PYDL_AVX2_COMMON(VD4, pd)
#undef PYDL_AVX2_COMMON

inline float first(VF8 a) { return _mm256_cvtss_f32(a.v); }
// ~1/a to 11+ bits, for correction terms only (AVX2 has no double rcp: the float one, widened).
inline VF8 rcp_approx(VF8 a) { return {_mm256_rcp_ps(a.v)}; }
inline VD4 rcp_approx(VD4 a) { return {_mm256_cvtps_pd(_mm_rcp_ps(_mm256_cvtpd_ps(a.v)))}; }
inline double first(VD4 a) { return _mm256_cvtsd_f64(a.v); }
inline VF8 pow2i(VF8 k) {
  const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(k.v), _mm256_set1_epi32(127));
  return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
}
inline VD4 pow2i(VD4 k) {
  // k is integral and small: k + (2^52 + 1023) puts k + 1023 in the low mantissa bits.
  const __m256d magic = _mm256_set1_pd(4503599627370496.0 + 1023.0);
  const __m256i e = _mm256_castpd_si256(_mm256_add_pd(k.v, magic));
  return {_mm256_castsi256_pd(_mm256_slli_epi64(e, 52))};
}
inline VF8 pow2i_shifted(VF8 t) { return {_mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t.v), 23))}; }
inline VD4 pow2i_shifted(VD4 t) { return {_mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t.v), 52))}; }
inline VF8 neg_abs(VF8 a) { return {_mm256_or_ps(a.v, _mm256_set1_ps(-0.0f))}; }
inline VD4 neg_abs(VD4 a) { return {_mm256_or_pd(a.v, _mm256_set1_pd(-0.0))}; }
// blendv picks by each lane's sign bit: the compare is not needed.
inline VF8 select_sign(VF8 s, VF8 a, VF8 b) { return {_mm256_blendv_ps(b.v, a.v, s.v)}; }
inline VD4 select_sign(VD4 s, VD4 a, VD4 b) { return {_mm256_blendv_pd(b.v, a.v, s.v)}; }
inline VF8 exponent_field(VF8 x) {
  const __m256i e = _mm256_srli_epi32(_mm256_castps_si256(x.v), 23);
  return {_mm256_cvtepi32_ps(_mm256_sub_epi32(e, _mm256_set1_epi32(127)))};
}
inline VD4 exponent_field(VD4 x) {
  // The biased exponent (0..2047) ORed into the mantissa of 2^52, minus 2^52 + 1023.
  const __m256i e = _mm256_srli_epi64(_mm256_castpd_si256(x.v), 52);
  const __m256d two52 = _mm256_castsi256_pd(_mm256_or_si256(e, _mm256_set1_epi64x(0x4330000000000000LL)));
  return {_mm256_sub_pd(two52, _mm256_set1_pd(4503599627370496.0 + 1023.0))};
}
inline VF8 mantissa_1_2(VF8 x) {
  const __m256i m = _mm256_and_si256(_mm256_castps_si256(x.v), _mm256_set1_epi32(0x007fffff));
  return {_mm256_castsi256_ps(_mm256_or_si256(m, _mm256_set1_epi32(0x3f800000)))};
}
inline VD4 mantissa_1_2(VD4 x) {
  const __m256i m = _mm256_and_si256(_mm256_castpd_si256(x.v), _mm256_set1_epi64x(0x000fffffffffffffLL));
  return {_mm256_castsi256_pd(_mm256_or_si256(m, _mm256_set1_epi64x(0x3ff0000000000000LL)))};
}
#endif  // AVX2

// ---- AVX-512 ------------------------------------------------------------------------------------
#if defined(__AVX512F__) && defined(__AVX512DQ__)
template <>
struct Vec<float, AVX512> {
  using value_type = float;
  static constexpr int size = 16;
  struct Mask {
    __mmask16 m;
  };
  __m512 v;
  static Vec set1(float x) { return {_mm512_set1_ps(x)}; }
  static Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static Vec load_partial(const float* p, int n) {
    return {_mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p)};
  }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v); }
};
template <>
struct Vec<double, AVX512> {
  using value_type = double;
  static constexpr int size = 8;
  struct Mask {
    __mmask8 m;
  };
  __m512d v;
  static Vec set1(double x) { return {_mm512_set1_pd(x)}; }
  static Vec load(const double* p) { return {_mm512_loadu_pd(p)}; }
  static Vec load_partial(const double* p, int n) {
    return {_mm512_maskz_loadu_pd(__mmask8((1u << n) - 1), p)};
  }
  void store(double* p) const { _mm512_storeu_pd(p, v); }
  void store_partial(double* p, int n) const { _mm512_mask_storeu_pd(p, __mmask8((1u << n) - 1), v); }
};
using VF16 = Vec<float, AVX512>;
using VD8 = Vec<double, AVX512>;
#define PYDL_AVX512_COMMON(VT, S, MT)                                             \
  inline VT operator+(VT a, VT b) { return {_mm512_add_##S(a.v, b.v)}; }                         \
  inline VT operator-(VT a, VT b) { return {_mm512_sub_##S(a.v, b.v)}; }                         \
  inline VT operator*(VT a, VT b) { return {_mm512_mul_##S(a.v, b.v)}; }                         \
  inline VT operator/(VT a, VT b) { return {_mm512_div_##S(a.v, b.v)}; }                         \
  inline VT operator-(VT a) { return {_mm512_xor_##S(a.v, _mm512_set1_##S(-0.0))}; }             \
  inline VT fma(VT a, VT b, VT c) { return {_mm512_fmadd_##S(a.v, b.v, c.v)}; }                  \
  inline VT fnma(VT a, VT b, VT c) { return {_mm512_fnmadd_##S(a.v, b.v, c.v)}; }                \
  inline VT min(VT a, VT b) { return {_mm512_min_##S(a.v, b.v)}; }                               \
  inline VT max(VT a, VT b) { return {_mm512_max_##S(a.v, b.v)}; }                               \
  inline VT sqrt(VT a) { return {_mm512_sqrt_##S(a.v)}; }                                        \
  inline VT abs(VT a) { return {_mm512_abs_##S(a.v)}; }                                          \
  inline VT round_int(VT a) {                                                                     \
    return {_mm512_roundscale_##S(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};         \
  }                                                                                               \
  inline VT floor(VT a) {                                                                         \
    return {_mm512_roundscale_##S(a.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)};             \
  }                                                                                               \
  inline VT::Mask operator<(VT a, VT b) { return {_mm512_cmp_##S##_mask(a.v, b.v, _CMP_LT_OQ)}; } \
  inline VT::Mask operator<=(VT a, VT b) { return {_mm512_cmp_##S##_mask(a.v, b.v, _CMP_LE_OQ)}; } \
  inline VT::Mask operator>(VT a, VT b) { return {_mm512_cmp_##S##_mask(a.v, b.v, _CMP_GT_OQ)}; } \
  inline VT::Mask operator>=(VT a, VT b) { return {_mm512_cmp_##S##_mask(a.v, b.v, _CMP_GE_OQ)}; } \
  inline VT::Mask operator==(VT a, VT b) { return {_mm512_cmp_##S##_mask(a.v, b.v, _CMP_EQ_OQ)}; } \
  inline VT::Mask operator!=(VT a, VT b) { return {_mm512_cmp_##S##_mask(a.v, b.v, _CMP_NEQ_UQ)}; } \
  inline VT::Mask isnan(VT a) { return {_mm512_cmp_##S##_mask(a.v, a.v, _CMP_UNORD_Q)}; }        \
  inline VT select(VT::Mask m, VT a, VT b) { return {_mm512_mask_blend_##S(m.m, b.v, a.v)}; }    \
  inline bool any(VT::Mask m) { return m.m != 0; }                                                \
  inline bool all(VT::Mask m) { return MT(~m.m) == 0; }                                           \
  inline VT::Mask operator&(VT::Mask a, VT::Mask b) { return {MT(a.m & b.m)}; }                   \
  inline VT::Mask operator|(VT::Mask a, VT::Mask b) { return {MT(a.m | b.m)}; }                   \
  inline VT::Mask operator!(VT::Mask a) { return {MT(~a.m)}; }                                    \
  inline VT copysign(VT a, VT b) {                                                                \
    const auto s = _mm512_set1_##S(-0.0);                                                         \
    return {_mm512_or_##S(_mm512_andnot_##S(s, a.v), _mm512_and_##S(s, b.v))};                   \
  }                                                                                               \
  inline VT pow2i(VT k) { return {_mm512_scalef_##S(_mm512_set1_##S(1.0), k.v)}; }               \
  inline VT exponent_field(VT x) { return {_mm512_getexp_##S(x.v)}; }                            \
  inline VT mantissa_1_2(VT x) {                                                                  \
    return {_mm512_getmant_##S(x.v, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero)};                      \
  }
PYDL_AVX512_COMMON(VF16, ps, __mmask16)
PYDL_AVX512_COMMON(VD8, pd, __mmask8)
#undef PYDL_AVX512_COMMON
inline VF16 pow2i_shifted(VF16 t) { return {_mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t.v), 23))}; }
inline VD8 pow2i_shifted(VD8 t) { return {_mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(t.v), 52))}; }
inline VF16 neg_abs(VF16 a) { return {_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(int(0x80000000u))))}; }
inline VD8 neg_abs(VD8 a) { return {_mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(a.v), _mm512_set1_epi64(int64_t(0x8000000000000000ull))))}; }
inline VF16 select_sign(VF16 s, VF16 a, VF16 b) {
  return {_mm512_mask_blend_ps(_mm512_movepi32_mask(_mm512_castps_si512(s.v)), b.v, a.v)};
}
inline VD8 select_sign(VD8 s, VD8 a, VD8 b) {
  return {_mm512_mask_blend_pd(_mm512_movepi64_mask(_mm512_castpd_si512(s.v)), b.v, a.v)};
}
inline float first(VF16 a) { return _mm512_cvtss_f32(a.v); }
// ~1/a to 14 bits, for correction terms only.
inline VF16 rcp_approx(VF16 a) { return {_mm512_rcp14_ps(a.v)}; }
inline VD8 rcp_approx(VD8 a) { return {_mm512_rcp14_pd(a.v)}; }
inline double first(VD8 a) { return _mm512_cvtsd_f64(a.v); }
#endif  // AVX-512

}  // namespace pydl::simd::PYDL_SIMD_NS
