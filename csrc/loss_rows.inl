// Row kernels of the fused cross-entropy (formulas in loss.h).
//
// Included inside an anonymous namespace by loss.cpp (portable build) and by loss_avx2.cpp
// (built with -mavx2 -mfma, PYDL_LOSS_ROWS_AVX2 defined), so each file gets its own internal
// copy and AVX2 instructions can never leak into the portable path. The including file first
// includes <algorithm>, <cmath>, <cstdint>, <limits> (and <immintrin.h> for AVX2) at global
// scope. The two builds differ only in how a float32 row is exponentiated and summed: the
// portable one calls std::exp per element, the AVX2 one evaluates 8 exponentials at a time
// with the polynomial exp_avx2 below (relative error ~2e-7, within float32 rounding of the
// portable result).
//
// Per row, forward keeps two numbers: shift = max_k z_k (0 if not finite) and
// log_s = log sum_k exp(z_k - shift); lse = shift + log_s. Backward recomputes the softmax as
// exp((z_k - shift) - log_s): z_k - shift is exact wherever the probability is not negligible
// (Sterbenz), so float32 logits of any magnitude keep full relative precision.

#ifdef PYDL_LOSS_ROWS_AVX2
// e^x for 8 floats: Cody-Waite reduction x = k ln2 + r (|r| <= ln2 / 2), a degree-7 polynomial
// for e^r (the classic Cephes expf coefficients), 2^k assembled in the exponent bits.
// Gives 0 below -87.3 (where expf underflows), +inf above 88 is never needed (softmax passes
// x <= 0), and NaN for NaN.
inline __m256 exp_avx2(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3365447504019f);
  const __m256 hi = _mm256_set1_ps(88.0f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 kf = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 er = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1)));
  const __m256i k = _mm256_cvtps_epi32(kf);
  const __m256 scale =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
  __m256 y = _mm256_mul_ps(er, scale);
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// Horizontal sum (in double, so long rows keep float32 round-off per lane only) and max.
inline double hsum_avx2(__m256 v) {
  const __m256d s = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                  _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  h = _mm_add_sd(h, _mm_unpackhi_pd(h, h));
  return _mm_cvtsd_f64(h);
}

inline float hmax_avx2(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
#endif

template <typename T>
T row_max(const T* z, int64_t c) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t k = 0; k < c; ++k) m = z[k] > m ? z[k] : m;
  return m;
}

// sum_k exp(z_k - shift)
template <typename T>
double row_sum_exp(const T* z, int64_t c, T shift) {
  double total = 0;
  for (int64_t k = 0; k < c; ++k) total += std::exp(double(z[k] - shift));
  return total;
}

// softmax-gradient row: d_k = a exp((z_k - shift) - log_s) - sc w_k (w = 1 when null)
template <typename T>
void row_grad(const T* z, int64_t c, T shift, T log_s, T a, T sc, const T* weight, T* d) {
  for (int64_t k = 0; k < c; ++k) {
    d[k] = a * T(std::exp((z[k] - shift) - log_s)) - sc * (weight ? weight[k] : T(1));
  }
}

#ifdef PYDL_LOSS_ROWS_AVX2
// float32 overloads: 8 lanes at a time, and the last 1-7 elements of a row through a lane mask
// (masked loads never touch memory past the row), so short rows (10 or 21 classes) stay
// vectorised too. Preferred over the templates above by overload resolution (exact
// non-template match).
inline __m256i tail_mask(int64_t rem) {  // lanes [0, rem) on, 0 < rem < 8
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rem)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline float row_max(const float* z, int64_t c) {
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m = neg_inf;
  int64_t k = 0;
  for (; k + 8 <= c; k += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(z + k));
  if (k < c) {
    const __m256i mask = tail_mask(c - k);
    const __m256 v = _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(z + k, mask),
                                      _mm256_castsi256_ps(mask));
    m = _mm256_max_ps(m, v);
  }
  return hmax_avx2(m);
}

inline double row_sum_exp(const float* z, int64_t c, float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= c; k += 8) {
    acc = _mm256_add_ps(acc, exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(z + k), s)));
  }
  if (k < c) {
    const __m256i mask = tail_mask(c - k);
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(z + k, mask), s));
    acc = _mm256_add_ps(acc, _mm256_and_ps(e, _mm256_castsi256_ps(mask)));
  }
  return hsum_avx2(acc);
}

inline void row_grad(const float* z, int64_t c, float shift, float log_s, float a, float sc,
                     const float* weight, float* d) {
  const __m256 vs = _mm256_set1_ps(shift), vl = _mm256_set1_ps(log_s);
  const __m256 va = _mm256_set1_ps(a), vsc = _mm256_set1_ps(sc);
  int64_t k = 0;
  for (; k + 8 <= c; k += 8) {
    const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(z + k), vs), vl));
    const __m256 u = weight ? _mm256_mul_ps(vsc, _mm256_loadu_ps(weight + k)) : vsc;
    _mm256_storeu_ps(d + k, _mm256_fmsub_ps(va, e, u));
  }
  if (k < c) {
    const __m256i mask = tail_mask(c - k);
    const __m256 e =
        exp_avx2(_mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(z + k, mask), vs), vl));
    const __m256 u = weight ? _mm256_mul_ps(vsc, _mm256_maskload_ps(weight + k, mask)) : vsc;
    _mm256_maskstore_ps(d + k, mask, _mm256_fmsub_ps(va, e, u));
  }
}
#endif

// sum_k w_k (shift - z_k) (w = 1 when null), for the label-smoothing term.
template <typename T>
double row_weighted_gap(const T* z, const T* weight, int64_t c, T shift) {
  double total = 0;
  for (int64_t k = 0; k < c; ++k) {
    total += (weight ? double(weight[k]) : 1.0) * double(shift - z[k]);
  }
  return total;
}

// Rows [begin, end): per-row loss and (shift, log_s) into stats[2 i], stats[2 i + 1].
// Returns the first row whose target is out of range, or -1.
template <typename T>
int64_t ce_forward_rows(const T* z, const int64_t* target, const T* weight, int64_t c,
                        int64_t ignore_index, double eps, double w_total, T* loss,
                        double* stats, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const T* zi = z + i * c;
    const T max = row_max(zi, c);
    // A row of -inf has no finite shift; shifting by 0 gives log_s = -inf and a NaN loss, as
    // PyTorch's. A row holding +inf has softmax inf / inf: PyTorch gives NaN for its loss and
    // gradient whatever the target, so log_s is NaN (shifting by 0 would give +-inf or, with
    // the AVX2 exponential that saturates at e^88, a finite loss).
    const T shift = std::isfinite(max) ? max : T(0);
    const double log_s = max == std::numeric_limits<T>::infinity()
                             ? std::numeric_limits<double>::quiet_NaN()
                             : std::log(row_sum_exp(zi, c, shift));
    stats[2 * i] = double(shift);
    stats[2 * i + 1] = log_s;
    const int64_t t = target[i];
    if (t == ignore_index) {
      loss[i] = T(0);
      continue;
    }
    if (t < 0 || t >= c) return i;
    const double wy = weight ? double(weight[t]) : 1.0;
    // lse - z_k = (shift - z_k) + log_s: no cancellation between two large numbers.
    double l = (1 - eps) * wy * (double(shift - zi[t]) + log_s);
    if (eps > 0) {
      l += eps / double(c) * (row_weighted_gap(zi, weight, c, shift) + w_total * log_s);
    }
    loss[i] = T(l);
  }
  return -1;
}

// Rows [begin, end) of dz (see loss.h). Returns the first row whose target is out of range,
// or -1.
template <typename T>
int64_t ce_backward_rows(const T* z, const double* stats, const int64_t* target,
                         const T* weight, int64_t c, int64_t ignore_index, double eps,
                         double w_total, const T* coef, int64_t coef_stride, T* dz,
                         int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    T* di = dz + i * c;
    const int64_t t = target[i];
    if (t == ignore_index) {
      std::fill(di, di + c, T(0));
      continue;
    }
    if (t < 0 || t >= c) return i;
    const double ci = double(coef[i * coef_stride]);
    const double wy = weight ? double(weight[t]) : 1.0;
    const double b = ci * (1 - eps) * wy;                  // one-hot coefficient
    const double a = b + ci * eps * w_total / double(c);   // softmax coefficient
    const double sc = ci * eps / double(c);                // uniform (smoothing) coefficient
    row_grad(z + i * c, c, T(stats[2 * i]), T(stats[2 * i + 1]), T(a), T(sc), weight, di);
    di[t] = T(double(di[t]) - b);
  }
  return -1;
}
