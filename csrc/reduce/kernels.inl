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

// Values summed in T lanes before they go into double: 8 vectors of lanes, each lane adding 16
// values (NumPy's pairwise sum adds 16 per accumulator before pairing too), so a block is
// 128 vectors. Eight independent chains hide the add latency (3-4 cycles) behind the loads;
// the block's lanes are added into double lanes (no horizontal add until the row ends), so
// the flush is a few instructions off the critical path.
template <class V>
constexpr int64_t kBlock = 128 * V::size;

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

// acc[i] += double(v[i]) for every lane (the compiler turns this into widening converts).
template <class V>
inline void add_lanes(V v, double* acc) {
  using T = typename V::value_type;
  T lanes[V::size];
  v.store(lanes);
  for (int i = 0; i < V::size; ++i) acc[i] += double(lanes[i]);
}

// Pairwise total of n doubles (n a power of two up to 16).
inline double hsum_lanes(const double* a, int n) {
  double t[16];
  for (int i = 0; i < n; ++i) t[i] = a[i];
  for (; n > 1; n /= 2)
    for (int i = 0; i < n / 2; ++i) t[i] = t[i] + t[i + n / 2];
  return t[0];
}

template <class V>
inline double hsum(V v) {
  double acc[V::size] = {};
  add_lanes(v, acc);
  return hsum_lanes(acc, V::size);
}

// sum of term(x[k]) over k < n (contiguous), as a double.
template <class V, SumOp op>
double sum_row(const typename V::value_type* x, int64_t n, double centre) {
  using T = typename V::value_type;
  constexpr int W = V::size;
  const V c = V::set1(T(centre)), zero = V::set1(T(0));
  double lanes[W] = {};
  int64_t k = 0;
  for (int64_t b0 = 0; b0 + W <= n; b0 += kBlock<V>) {
    const int64_t b1 = std::min(n, b0 + kBlock<V>);
    V a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero;
    for (; k + 8 * W <= b1; k += 8 * W) {
      a0 = a0 + term<V, op>(V::load(x + k), c);
      a1 = a1 + term<V, op>(V::load(x + k + W), c);
      a2 = a2 + term<V, op>(V::load(x + k + 2 * W), c);
      a3 = a3 + term<V, op>(V::load(x + k + 3 * W), c);
      a4 = a4 + term<V, op>(V::load(x + k + 4 * W), c);
      a5 = a5 + term<V, op>(V::load(x + k + 5 * W), c);
      a6 = a6 + term<V, op>(V::load(x + k + 6 * W), c);
      a7 = a7 + term<V, op>(V::load(x + k + 7 * W), c);
    }
    for (; k + W <= b1; k += W) a0 = a0 + term<V, op>(V::load(x + k), c);
    add_lanes(((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), lanes);
  }
  double tail = 0;
  for (; k < n; ++k) tail += double(term<Vec<T, Scalar>, op>({x[k]}, {T(centre)}).v);
  return hsum_lanes(lanes, W) + tail;
}

// out[i] = sum of term(rows[i][k]) over k < n, for four rows at once (loop A with several
// contiguous rows per item: sum(dim=1) of a matrix, mean over (0, 2, 3) of NCHW). Four
// streams instead of one, and the per-row costs (call, flush, horizontal add) paid once per
// four rows: 6-18% faster than four sum_row calls on 16 MiB (AMD EPYC Zen 3, 1 thread). Two
// chains per row; each lane adds 16 values per block before the block goes into double lanes,
// as in sum_row.
template <class V, SumOp op>
void sum_rows4(const typename V::value_type* const* rows, int64_t n, const double* centre,
               double* out) {
  using T = typename V::value_type;
  constexpr int W = V::size;
  const T* x0 = rows[0];
  const T* x1 = rows[1];
  const T* x2 = rows[2];
  const T* x3 = rows[3];
  const V c0 = V::set1(T(centre[0])), c1 = V::set1(T(centre[1])), c2 = V::set1(T(centre[2])),
          c3 = V::set1(T(centre[3])), zero = V::set1(T(0));
  double l0[W] = {}, l1[W] = {}, l2[W] = {}, l3[W] = {};
  int64_t k = 0;
  for (int64_t b0 = 0; b0 + W <= n; b0 += 32 * W) {
    const int64_t b1 = std::min(n, b0 + 32 * W);
    V a0 = zero, a1 = zero, e0 = zero, e1 = zero, f0 = zero, f1 = zero, g0 = zero, g1 = zero;
    for (; k + 2 * W <= b1; k += 2 * W) {
      a0 = a0 + term<V, op>(V::load(x0 + k), c0);
      a1 = a1 + term<V, op>(V::load(x0 + k + W), c0);
      e0 = e0 + term<V, op>(V::load(x1 + k), c1);
      e1 = e1 + term<V, op>(V::load(x1 + k + W), c1);
      f0 = f0 + term<V, op>(V::load(x2 + k), c2);
      f1 = f1 + term<V, op>(V::load(x2 + k + W), c2);
      g0 = g0 + term<V, op>(V::load(x3 + k), c3);
      g1 = g1 + term<V, op>(V::load(x3 + k + W), c3);
    }
    if (k + W <= b1) {
      a0 = a0 + term<V, op>(V::load(x0 + k), c0);
      e0 = e0 + term<V, op>(V::load(x1 + k), c1);
      f0 = f0 + term<V, op>(V::load(x2 + k), c2);
      g0 = g0 + term<V, op>(V::load(x3 + k), c3);
      k += W;
    }
    add_lanes(a0 + a1, l0);
    add_lanes(e0 + e1, l1);
    add_lanes(f0 + f1, l2);
    add_lanes(g0 + g1, l3);
  }
  double* lanes[4] = {l0, l1, l2, l3};
  for (int i = 0; i < 4; ++i) {
    double tail = 0;
    for (int64_t j = k; j < n; ++j)
      tail += double(term<Vec<T, Scalar>, op>({rows[i][j]}, {T(centre[i])}).v);
    out[i] = hsum_lanes(lanes[i], W) + tail;
  }
}

// part[j] += sum over r < nrows of term(base[row_off[r] + j]) for j < w: the vertical sum of
// a reduction whose kept axis is contiguous (sum(dim=0)). Rows go four at a time across the
// whole width (four sequential streams; sixteen rows interleaved a few vectors at a time were
// 1.6x slower than a row sum on 16 MiB, AMD EPYC Zen 3), added in T registers into a T row of
// the group's sums (in L1: w <= kColBlock), and every kFlushRows rows that row goes into the
// double partials.
constexpr int64_t kFlushRows = 16;
constexpr int64_t kMaxCols = 2048;  // reduce.cpp's kColBlock: the widest w

template <class V, SumOp op>
void add_cols(const typename V::value_type* base, const int64_t* row_off, int64_t nrows,
              int64_t w, const typename V::value_type* centre, double* part) {
  using T = typename V::value_type;
  constexpr int W = V::size;
  using S = Vec<T, Scalar>;
  const V zero = V::set1(T(0));
  alignas(64) T acc[kMaxCols];
  for (int64_t f0 = 0; f0 < nrows; f0 += kFlushRows) {
    const int64_t f1 = std::min(nrows, f0 + kFlushRows);
    std::fill(acc, acc + w, T(0));
    for (int64_t s0 = f0; s0 < f1; s0 += 4) {
      const int64_t n4 = std::min<int64_t>(4, f1 - s0);
      const T* p[4];
      for (int q = 0; q < 4; ++q) p[q] = base + row_off[s0 + std::min<int64_t>(q, n4 - 1)];
      int64_t j = 0;
      if (n4 == 4) {
        for (; j + 2 * W <= w; j += 2 * W) {
          const V c0 = centre ? V::load(centre + j) : zero;
          const V c1 = centre ? V::load(centre + j + W) : zero;
          V a0 = V::load(acc + j), a1 = V::load(acc + j + W);
          a0 = a0 + ((term<V, op>(V::load(p[0] + j), c0) + term<V, op>(V::load(p[1] + j), c0)) +
                     (term<V, op>(V::load(p[2] + j), c0) + term<V, op>(V::load(p[3] + j), c0)));
          a1 = a1 + ((term<V, op>(V::load(p[0] + j + W), c1) +
                      term<V, op>(V::load(p[1] + j + W), c1)) +
                     (term<V, op>(V::load(p[2] + j + W), c1) +
                      term<V, op>(V::load(p[3] + j + W), c1)));
          a0.store(acc + j);
          a1.store(acc + j + W);
        }
      }
      for (; j + W <= w; j += W) {
        const V c0 = centre ? V::load(centre + j) : zero;
        V a0 = V::load(acc + j);
        for (int64_t q = 0; q < n4; ++q) a0 = a0 + term<V, op>(V::load(p[q] + j), c0);
        a0.store(acc + j);
      }
      for (; j < w; ++j) {
        const S c0{centre ? centre[j] : T(0)};
        S a0{acc[j]};
        for (int64_t q = 0; q < n4; ++q) a0 = a0 + term<S, op>(S{p[q][j]}, c0);
        acc[j] = a0.v;
      }
    }
    for (int64_t j = 0; j < w; ++j) part[j] += double(acc[j]);
  }
}

// max / min / max |x| of x[0..n), NaN if any element is NaN (only the max when !track_nan:
// softmax's NaN reaches its output through the sum of exponentials anyway). Four chains; NaN
// is collected as a mask OR (no branch per vector) since x86 max/min drop a NaN operand.
template <class V, bool track_nan = true>
typename V::value_type ext_row_impl(const typename V::value_type* x, int64_t n, ExtOp op) {
  using T = typename V::value_type;
  constexpr int W = V::size;
  const T init = op == ExtOp::kMin ? std::numeric_limits<T>::infinity()
                                   : -std::numeric_limits<T>::infinity();
  V m0 = V::set1(init), m1 = m0, m2 = m0, m3 = m0;
  typename V::Mask nan = isnan(m0);  // all false
  int64_t k = 0;
  auto step = [&](V& m, V v) {
    if (op == ExtOp::kMaxAbs) v = abs(v);
    if constexpr (track_nan) nan = nan | isnan(v);
    m = op == ExtOp::kMin ? min(m, v) : max(m, v);
  };
  for (; k + 4 * W <= n; k += 4 * W) {
    step(m0, V::load(x + k));
    step(m1, V::load(x + k + W));
    step(m2, V::load(x + k + 2 * W));
    step(m3, V::load(x + k + 3 * W));
  }
  for (; k + W <= n; k += W) step(m0, V::load(x + k));
  const V m = op == ExtOp::kMin ? min(min(m0, m1), min(m2, m3)) : max(max(m0, m1), max(m2, m3));
  bool has_nan = track_nan && any(nan);
  T lanes[W];
  m.store(lanes);
  T r = init;
  for (int i = 0; i < W; ++i) r = op == ExtOp::kMin ? std::min(r, lanes[i]) : std::max(r, lanes[i]);
  for (; k < n; ++k) {
    const T v = op == ExtOp::kMaxAbs ? std::fabs(x[k]) : x[k];
    if (v != v) has_nan = true;
    r = op == ExtOp::kMin ? std::min(r, v) : std::max(r, v);
  }
  return track_nan && has_nan ? std::numeric_limits<T>::quiet_NaN() : r;
}

template <class V>
typename V::value_type ext_row(const typename V::value_type* x, int64_t n, ExtOp op) {
  return ext_row_impl<V, true>(x, n, op);
}

// The first k < n with x[k] == v (|x[k]| == v for kMaxAbs; the first NaN when v is NaN): the
// index of max/min, found a vector at a time (any() of the lane compare), then within the
// vector; was a scalar loop with a branch per element.
template <class V>
int64_t find_first(const typename V::value_type* x, int64_t n, typename V::value_type v,
                   ExtOp op) {
  using T = typename V::value_type;
  constexpr int W = V::size;
  const bool nan = v != v;
  const V vv = V::set1(v);
  int64_t k = 0;
  for (; k + W <= n; k += W) {
    V e = V::load(x + k);
    if (op == ExtOp::kMaxAbs) e = abs(e);
    if (nan ? any(isnan(e)) : any(e == vv)) break;
  }
  for (; k < n; ++k) {
    const T e = op == ExtOp::kMaxAbs ? std::fabs(x[k]) : x[k];
    if (nan ? e != e : e == v) return k;
  }
  return 0;
}

// e^d for softmax's d = x - max <= 0 (or NaN): exp() of simd/vec_math.h without the parts this
// range never needs (the upper clamp, the NaN blend: max(lo, NaN) is NaN on x86 and in the
// portable max, and NaN stays NaN through the rest). Same reduction and polynomial, so the same
// accuracy; about 6% less work per element in the exp-bound softmax pass.
template <class V>
inline V exp_nonpositive(V d) {
  using T = typename V::value_type;
  constexpr bool f32 = std::is_same_v<T, float>;
  const V xc = max(V::set1(T(f32 ? -104.0 : -746.0)), d);
  const V k = round_int(xc * V::set1(T(1.4426950408889634)));
  V r;
  if constexpr (f32) {
    r = fma(k, V::set1(-0.693359375f), xc);
    r = fma(k, V::set1(2.12194440e-4f), r);
    static constexpr float c[] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6,
                                  0.5f};
    const V p = horner(r, c);
    return ldexp2(fma(r * r, p, r) + V::set1(1.0f), k);
  } else {
    // float64 keeps vec_math's exp (a longer polynomial; no reason to fork it).
    return exp(d);
  }
}

// One softmax row: m = max (NaN propagates), s = sum exp(x - m), y = exp(x - m) / s or
// x - m - log s. A row holding +inf has x - m = NaN at the inf and -inf elsewhere, so every
// output is NaN, as PyTorch's; a row of -inf likewise (-inf - -inf = NaN).
template <class V>
void softmax_row(const typename V::value_type* x, int64_t n, bool log,
                 typename V::value_type* y) {
  using T = typename V::value_type;
  constexpr int W = V::size;
  // The max without NaN tracking: a NaN element gives exp(NaN) = NaN in the sum, so every
  // output is NaN all the same (and a row of NaN has m = -inf, x - m = NaN).
  const T m = ext_row_impl<V, false>(x, n, ExtOp::kMax);
  const V vm = V::set1(m);
  double s = 0;
  int64_t k = 0;
  // Lanes flushed into double every 64 values per lane (one chain here: the exp is the cost),
  // so long rows keep precision.
  constexpr int64_t B = 64 * W;
  for (int64_t b1 = std::min(n, B); k + W <= n; b1 = std::min(n, b1 + B)) {
    V acc = V::set1(T(0));
    if (log) {
      for (; k + W <= b1; k += W) acc = acc + exp_nonpositive(V::load(x + k) - vm);
    } else {
      for (; k + W <= b1; k += W) {  // store the exponentials: the second pass only scales
        const V e = exp_nonpositive(V::load(x + k) - vm);
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
  k.add_cols[int(SumOp::kSum)] = &add_cols<V, SumOp::kSum>;
  k.sum4[int(SumOp::kSum)] = &sum_rows4<V, SumOp::kSum>;
  k.add_cols[int(SumOp::kSqDiff)] = &add_cols<V, SumOp::kSqDiff>;
  k.sum4[int(SumOp::kSqDiff)] = &sum_rows4<V, SumOp::kSqDiff>;
  k.add_cols[int(SumOp::kAbs)] = &add_cols<V, SumOp::kAbs>;
  k.sum4[int(SumOp::kAbs)] = &sum_rows4<V, SumOp::kAbs>;
  k.add_cols[int(SumOp::kExpDiff)] = &add_cols<V, SumOp::kExpDiff>;
  k.sum4[int(SumOp::kExpDiff)] = &sum_rows4<V, SumOp::kExpDiff>;
  k.ext = &ext_row<V>;
  k.find = &find_first<V>;
  k.softmax = &softmax_row<V>;
  k.transpose_tile = &transpose_tile<T, ISA>;
  return k;
}

}  // namespace pydl::reduce::PYDL_SIMD_NS
