// Row kernels of the reductions and softmax, written once over simd/vec.h and instantiated per
// instruction set: reduce.cpp (portable, Vec<T, Scalar>), reduce_avx2.cpp, reduce_avx512.cpp
// each define PYDL_SIMD_NS and include this file, so every copy has its own namespace.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "reduce/kernels.h"
#include "simd/vec.h"
#include "simd/vec_math.h"

namespace pydl::reduce::PYDL_SIMD_NS {

using namespace pydl::simd::PYDL_SIMD_NS;

// Values summed in T lanes before the block's total goes into double: 4 vectors of lanes, each
// lane adding 16 values (NumPy's pairwise sum adds 16 per accumulator before pairing too), and
// the blocks add up in double: at least as accurate as NumPy's float32 sum, for one horizontal
// add per 64 vectors.
template <class V>
constexpr int64_t kBlock = 64 * V::size;

template <class V, SumOp op>
inline V term(V x, V c) {
  if constexpr (op == SumOp::kSum) return x;
  if constexpr (op == SumOp::kSqDiff) {
    const V d = x - c;
    return d * d;
  }
  if constexpr (op == SumOp::kAbs) return abs(x);
  if constexpr (op == SumOp::kExpDiff) return exp(x - c);
}

template <class V>
inline double hsum(V v) {
  using T = typename V::value_type;
  T lanes[V::size];
  v.store(lanes);
  double s = 0;
  for (int i = 0; i < V::size; ++i) s += double(lanes[i]);
  return s;
}

// sum of term(x[k]) over k < n (contiguous), as a double.
template <class V, SumOp op>
double sum_row(const typename V::value_type* x, int64_t n, double centre) {
  using T = typename V::value_type;
  constexpr int W = V::size;
  const V c = V::set1(T(centre)), zero = V::set1(T(0));
  double total = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock<V>) {
    const int64_t b1 = std::min(n, b0 + kBlock<V>);
    V a0 = zero, a1 = zero, a2 = zero, a3 = zero;
    int64_t k = b0;
    for (; k + 4 * W <= b1; k += 4 * W) {
      a0 = a0 + term<V, op>(V::load(x + k), c);
      a1 = a1 + term<V, op>(V::load(x + k + W), c);
      a2 = a2 + term<V, op>(V::load(x + k + 2 * W), c);
      a3 = a3 + term<V, op>(V::load(x + k + 3 * W), c);
    }
    for (; k + W <= b1; k += W) a0 = a0 + term<V, op>(V::load(x + k), c);
    double tail = 0;
    for (; k < b1; ++k) tail += double(term<Vec<T, Scalar>, op>({x[k]}, {T(centre)}).v);
    total += hsum((a0 + a1) + (a2 + a3)) + tail;
  }
  return total;
}

// acc[j] += term(x[j]) for j < n (one row of a reduction whose kept axis is contiguous).
template <class V, SumOp op>
void add_row(const typename V::value_type* x, int64_t n, const typename V::value_type* centre,
             typename V::value_type* acc) {
  using T = typename V::value_type;
  constexpr int W = V::size;
  int64_t j = 0;
  for (; j + W <= n; j += W) {
    const V c = centre ? V::load(centre + j) : V::set1(T(0));
    (V::load(acc + j) + term<V, op>(V::load(x + j), c)).store(acc + j);
  }
  for (; j < n; ++j)
    acc[j] += term<Vec<T, Scalar>, op>({x[j]}, {centre ? centre[j] : T(0)}).v;
}

// max / min / max |x| of x[0..n), NaN if any element is NaN.
template <class V>
typename V::value_type ext_row(const typename V::value_type* x, int64_t n, ExtOp op) {
  using T = typename V::value_type;
  constexpr int W = V::size;
  const T init = op == ExtOp::kMin ? std::numeric_limits<T>::infinity()
                                   : -std::numeric_limits<T>::infinity();
  V m = V::set1(init);
  bool nan = false;
  int64_t k = 0;
  for (; k + W <= n; k += W) {
    V v = V::load(x + k);
    if (op == ExtOp::kMaxAbs) v = abs(v);
    nan |= any(isnan(v));
    m = op == ExtOp::kMin ? min(m, v) : max(m, v);
  }
  T lanes[W];
  m.store(lanes);
  T r = init;
  for (int i = 0; i < W; ++i) r = op == ExtOp::kMin ? std::min(r, lanes[i]) : std::max(r, lanes[i]);
  for (; k < n; ++k) {
    const T v = op == ExtOp::kMaxAbs ? std::fabs(x[k]) : x[k];
    if (v != v) nan = true;
    r = op == ExtOp::kMin ? std::min(r, v) : std::max(r, v);
  }
  return nan ? std::numeric_limits<T>::quiet_NaN() : r;
}

// One softmax row: m = max (NaN propagates), s = sum exp(x - m), y = exp(x - m) / s or
// x - m - log s. A row holding +inf has x - m = NaN at the inf and -inf elsewhere, so every
// output is NaN, as PyTorch's; a row of -inf likewise (-inf - -inf = NaN).
template <class V>
void softmax_row(const typename V::value_type* x, int64_t n, bool log,
                 typename V::value_type* y) {
  using T = typename V::value_type;
  constexpr int W = V::size;
  const T m = ext_row<V>(x, n, ExtOp::kMax);
  const V vm = V::set1(m);
  double s = 0;
  int64_t k = 0;
  // Lanes flushed into double every kBlock values (as sum_row), so long rows keep precision.
  for (int64_t b1 = std::min(n, kBlock<V>); k + W <= n; b1 = std::min(n, b1 + kBlock<V>)) {
    V acc = V::set1(T(0));
    if (log) {
      for (; k + W <= b1; k += W) acc = acc + exp(V::load(x + k) - vm);
    } else {
      for (; k + W <= b1; k += W) {  // store the exponentials: the second pass only scales
        const V e = exp(V::load(x + k) - vm);
        e.store(y + k);
        acc = acc + e;
      }
    }
    s += hsum(acc);
  }
  for (; k < n; ++k) {
    const T e = exp(Vec<T, Scalar>{T(x[k] - m)}).v;
    if (!log) y[k] = e;
    s += double(e);
  }
  k = 0;
  if (log) {
    const T shift = T(double(m) + std::log(s));
    const V vs = V::set1(shift);
    for (; k + W <= n; k += W) (V::load(x + k) - vs).store(y + k);
    for (; k < n; ++k) y[k] = x[k] - shift;
  } else {
    const V inv = V::set1(T(1.0 / s));
    for (; k + W <= n; k += W) (V::load(y + k) * inv).store(y + k);
    for (; k < n; ++k) y[k] = y[k] * T(1.0 / s);
  }
}

// One tile of the transposing copy. The scalar loop reads src with stride src_stride (one
// element per cache line when that is large); with AVX2, 8 x 8 (float) or 4 x 4 (double)
// blocks are loaded as rows of the input, transposed in registers and stored as rows of the
// output, so both sides move whole vectors. Moves and shuffles only: NaN payloads survive.
template <class T>
inline void transpose_tile_scalar(const T* src, int64_t ss, T* dst, int64_t ds, int64_t na,
                                  int64_t nl) {
  for (int64_t a = 0; a < na; ++a)
    for (int64_t l = 0; l < nl; ++l) dst[a * ds + l] = src[l * ss + a];
}

#if defined(__AVX2__)
inline void transpose8x8(const float* s, int64_t ss, float* d, int64_t ds) {
  __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ss), r2 = _mm256_loadu_ps(s + 2 * ss),
         r3 = _mm256_loadu_ps(s + 3 * ss), r4 = _mm256_loadu_ps(s + 4 * ss),
         r5 = _mm256_loadu_ps(s + 5 * ss), r6 = _mm256_loadu_ps(s + 6 * ss),
         r7 = _mm256_loadu_ps(s + 7 * ss);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
               t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
               t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
               u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
               u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
               u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(u0, u4, 0x20);
  r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
  r2 = _mm256_permute2f128_ps(u2, u6, 0x20);
  r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
  r4 = _mm256_permute2f128_ps(u0, u4, 0x31);
  r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
  r6 = _mm256_permute2f128_ps(u2, u6, 0x31);
  r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
  _mm256_storeu_ps(d, r0);
  _mm256_storeu_ps(d + ds, r1);
  _mm256_storeu_ps(d + 2 * ds, r2);
  _mm256_storeu_ps(d + 3 * ds, r3);
  _mm256_storeu_ps(d + 4 * ds, r4);
  _mm256_storeu_ps(d + 5 * ds, r5);
  _mm256_storeu_ps(d + 6 * ds, r6);
  _mm256_storeu_ps(d + 7 * ds, r7);
}
inline void transpose4x4(const double* s, int64_t ss, double* d, int64_t ds) {
  const __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + ss),
                r2 = _mm256_loadu_pd(s + 2 * ss), r3 = _mm256_loadu_pd(s + 3 * ss);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1),
                t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(d, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(d + ds, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(d + 2 * ds, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(d + 3 * ds, _mm256_permute2f128_pd(t1, t3, 0x31));
}
#endif

template <class T, class ISA>
void transpose_tile(const T* src, int64_t ss, T* dst, int64_t ds, int64_t na, int64_t nl) {
#if defined(__AVX2__)
  if constexpr (!std::is_same_v<ISA, Scalar>) {
    constexpr int64_t B = std::is_same_v<T, float> ? 8 : 4;
    const int64_t na_b = na - na % B, nl_b = nl - nl % B;
    for (int64_t a = 0; a < na_b; a += B)
      for (int64_t l = 0; l < nl_b; l += B) {
        if constexpr (B == 8) transpose8x8(src + l * ss + a, ss, dst + a * ds + l, ds);
        else transpose4x4(src + l * ss + a, ss, dst + a * ds + l, ds);
      }
    // The ragged right and bottom edges.
    if (nl_b < nl) transpose_tile_scalar(src + nl_b * ss, ss, dst + nl_b, ds, na, nl - nl_b);
    if (na_b < na) transpose_tile_scalar(src + na_b, ss, dst + na_b * ds, ds, na - na_b, nl_b);
    return;
  }
#endif
  transpose_tile_scalar(src, ss, dst, ds, na, nl);
}

template <class T, class ISA>
RowKernels<T> make_row_kernels() {
  using V = Vec<T, ISA>;
  RowKernels<T> k;
  k.sum[int(SumOp::kSum)] = &sum_row<V, SumOp::kSum>;
  k.sum[int(SumOp::kSqDiff)] = &sum_row<V, SumOp::kSqDiff>;
  k.sum[int(SumOp::kAbs)] = &sum_row<V, SumOp::kAbs>;
  k.sum[int(SumOp::kExpDiff)] = &sum_row<V, SumOp::kExpDiff>;
  k.add[int(SumOp::kSum)] = &add_row<V, SumOp::kSum>;
  k.add[int(SumOp::kSqDiff)] = &add_row<V, SumOp::kSqDiff>;
  k.add[int(SumOp::kAbs)] = &add_row<V, SumOp::kAbs>;
  k.add[int(SumOp::kExpDiff)] = &add_row<V, SumOp::kExpDiff>;
  k.ext = &ext_row<V>;
  k.softmax = &softmax_row<V>;
  k.transpose_tile = &transpose_tile<T, ISA>;
  return k;
}

}  // namespace pydl::reduce::PYDL_SIMD_NS
