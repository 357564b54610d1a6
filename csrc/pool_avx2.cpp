// AVX2 row kernels for pooling (see pool_avx2.h). This file alone is compiled with -mavx2 -mfma;
// pool.cpp calls into it only when use_avx2() is true.
//
// Eight output columns at a time. Stride 1: tap t of the eight windows is one unaligned load.
// Stride 2: the eight windows' tap t sits at every other column, so two loads of 8 (16 columns)
// are split into even and odd columns (shuffle + lane permute); with no dilation the odd half is
// tap t + 1, so one pair of loads serves two taps. The last block of a row is moved left to
// end at the last column rather than falling back to scalar code (its outputs are computed
// twice, identically).
//
// Only the entry points have external linkage: no AVX-compiled inline function may be chosen by
// the linker for portable code, so nothing from the standard library is used here either.
#include <immintrin.h>

#include "pool_avx2.h"

namespace pydl::pool_detail {
namespace {

inline __m256 even_columns(__m256 lo, __m256 hi) {
  // [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6] -> 64-bit pairs reordered (0, 2, 1, 3)
  const __m256 e = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}

inline __m256 odd_columns(__m256 lo, __m256 hi) {
  const __m256 o = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

// p[0], p[2], ..., p[14]: from p[0..15], or (from_left) from p[-1..14], which reads nothing
// past the last column needed.
inline __m256 stride2_tap(const float* p, bool from_left) {
  if (from_left) return odd_columns(_mm256_loadu_ps(p - 1), _mm256_loadu_ps(p + 7));
  return even_columns(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8));
}

// Largest end e <= ow1 such that the block ending at output e - 1 reads only columns < W, given
// that output ow's tap t reads column ow*sw - pw + t*dw, plus `extra` columns past the last tap
// (the 16-column loads of stride 2 read one column past an unpaired tap).
inline int64_t safe_end(const Pool2dShape& s, int64_t ow1, int64_t extra) {
  const int64_t lim = s.W - 1 + s.pad_w - (s.kernel_w - 1) * s.dil_w - extra;
  if (lim < 0) return 0;
  const int64_t e = lim / s.stride_w + 1;
  return e < ow1 ? e : ow1;
}

// Visits the taps of the eight windows starting at output column b in row-major window order:
// fn(vector of the eight tap values, tap number r * kernel_w + t). KW > 0 fixes the kernel width
// and SW the stride at compile time, with no dilation along W (the common 2x2 and 3x3 windows:
// the tap loops unroll); KW = SW = 0 reads them from the shape.
template <int KW, int SW, typename Fn>
inline void for_each_tap(const Pool2dShape& s, const float* xp, int64_t h0, int64_t rlo,
                         int64_t rhi, int64_t b, Fn&& fn) {
  const int64_t kw = KW > 0 ? KW : s.kernel_w, dw = KW > 0 ? 1 : s.dil_w;
  const int64_t sw = SW > 0 ? SW : s.stride_w;
  const int64_t c0 = b * sw - s.pad_w;
  for (int64_t r = rlo; r < rhi; ++r) {
    const float* row = xp + (h0 + r * s.dil_h) * s.W + c0;
    const int32_t tap_r = static_cast<int32_t>(r * kw);
    if (sw == 1) {
      for (int64_t t = 0; t < kw; ++t) fn(_mm256_loadu_ps(row + t * dw), tap_r + int32_t(t));
    } else if (dw == 1) {
      // Taps t, t + 1 from one pair of loads; an unpaired last tap t >= 1 (odd kw) as the odd
      // columns of the 16 starting one column earlier, so no load reaches past the window.
      int64_t t = 0;
      for (; t + 1 < kw; t += 2) {
        const __m256 lo = _mm256_loadu_ps(row + t), hi = _mm256_loadu_ps(row + t + 8);
        fn(even_columns(lo, hi), tap_r + int32_t(t));
        fn(odd_columns(lo, hi), tap_r + int32_t(t + 1));
      }
      if (t < kw) fn(stride2_tap(row + t, t > 0), tap_r + int32_t(t));
    } else {
      for (int64_t t = 0; t < kw; ++t) fn(stride2_tap(row + t * dw, t > 0), tap_r + int32_t(t));
    }
  }
}

// The compile-time (KW, SW) that fits the shape: the common 2x2/2 and 3x3/2, 3x3/1 windows
// without dilation along W, else (0, 0) (read at run time). Kernels switch on it.
enum class Window { k2s2, k3s2, k3s1, kAny };

inline Window window_kind(const Pool2dShape& s) {
  if (s.dil_w == 1) {
    if (s.kernel_w == 2 && s.stride_w == 2) return Window::k2s2;
    if (s.kernel_w == 3 && s.stride_w == 2) return Window::k3s2;
    if (s.kernel_w == 3 && s.stride_w == 1) return Window::k3s1;
  }
  return Window::kAny;
}

// Columns past the last tap a stride-2 block reads: only a 1-wide window's lone tap (t = 0)
// reads its 16 columns from the left, one past the window.
inline int64_t stride2_extra(const Pool2dShape& s) {
  return (s.stride_w == 2 && s.kernel_w == 1) ? 1 : 0;
}

// The maximum of the eight windows starting at output column b, and their taps (int32 lanes).
//
// Fast form: m = max_ps(v, m) keeps the larger value (m itself on ties, so the first maximum's
// tap stays), best takes the tap where v > m; NaNs are only noted (in a running sum). max_ps never returns a NaN
// from v, so the chain is one max per tap. A block that saw a NaN is redone in the exact form,
// take = (v > m) | isnan(v), which lets every NaN replace the running maximum (PyTorch's rule).
template <bool kTrack, int KW = 0, int SW = 0>
inline __m256 max_block(const Pool2dShape& s, const float* xp, int64_t h0, int64_t rlo,
                        int64_t rhi, int64_t b, __m256i* taps) {
  // Starting from -inf with the first tap as the answer gives what starting from the first
  // tap's value gives: -inf stays (index of the first tap), anything larger or NaN replaces.
  const __m256i first = _mm256_set1_epi32(static_cast<int32_t>(rlo * s.kernel_w));
  __m256 m = _mm256_set1_ps(-__builtin_inff());
  __m256 best = _mm256_castsi256_ps(first);
  // NaN watch: the sum of the taps is NaN when any tap is (and, harmlessly, when +inf meets
  // -inf, which only sends the block down the exact path): one add per tap, one test per block.
  __m256 nan = _mm256_setzero_ps();
  for_each_tap<KW, SW>(s, xp, h0, rlo, rhi, b, [&](__m256 v, int32_t tap) {
    nan = _mm256_add_ps(nan, v);
    if (kTrack) {
      const __m256 gt = _mm256_cmp_ps(v, m, _CMP_GT_OQ);
      best = _mm256_blendv_ps(best, _mm256_castsi256_ps(_mm256_set1_epi32(tap)), gt);
    }
    m = _mm256_max_ps(v, m);
  });
  if (__builtin_expect(_mm256_movemask_ps(_mm256_cmp_ps(nan, nan, _CMP_UNORD_Q)) != 0, 0)) {
    m = _mm256_set1_ps(-__builtin_inff());
    best = _mm256_castsi256_ps(first);
    for_each_tap<KW, SW>(s, xp, h0, rlo, rhi, b, [&](__m256 v, int32_t tap) {
      const __m256 take =
          _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      m = _mm256_blendv_ps(m, v, take);
      best = _mm256_blendv_ps(best, _mm256_castsi256_ps(_mm256_set1_epi32(tap)), take);
    });
  }
  if (kTrack) *taps = _mm256_castps_si256(best);
  return m;
}

// Eight int32 taps (0..254) to eight bytes.
inline void store_tap_bytes(uint8_t* p, __m256i t) {
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(w, w));
}

template <bool kTrack, int KW, int SW>
int64_t max_rect(const Pool2dShape& s, const float* xp, int64_t oh0, int64_t oh1, int64_t ow0,
                 int64_t ow1, float* yp, uint8_t* taps) {
  if (s.stride_w > 2) return ow0;
  const int64_t end = safe_end(s, ow1, stride2_extra(s));
  if (end - ow0 < 8) return ow0;
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const int64_t h0 = oh * s.stride_h - s.pad_h;
    for (int64_t b = ow0; b < end; b += 8) {
      if (b + 8 > end) b = end - 8;
      __m256i t;
      _mm256_storeu_ps(yp + oh * s.OW + b,
                       max_block<kTrack, KW, SW>(s, xp, h0, 0, s.kernel_h, b, &t));
      if (kTrack) store_tap_bytes(taps + oh * s.OW + b, t);
    }
  }
  return end;
}

// 3x3 windows with stride 2 along both axes and no dilation (ResNet's stem pooling), with
// taps, done separably: each input row's horizontal 3-wide maxima (value, tap t, first
// maximum) are computed once and shared by the two output rows whose windows hold that row
// (output row oh's bottom row is output row oh + 1's top row), then three rows combine
// vertically (a later row wins only when strictly greater, so the tap is still the first
// maximum in row-major order, and the value, +0/-0 included, is the one the sequential scan
// keeps). Output rows are visited in order (so input rows stream in order for the hardware
// prefetcher), each row's blocks keeping their bottom row's maxima for the next output row, up
// to kStrip blocks at a time. A block that saw a NaN is redone by max_block's exact form.
struct RowMax {
  __m256 m;       // maximum of the three taps
  __m256i t;      // its tap 0..2
  __m256 watch;   // sum of the taps: NaN when one of them is
};

inline RowMax row_max3_stride2(const float* p) {
  const __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
  const __m256 v0 = even_columns(lo, hi), v1 = odd_columns(lo, hi);
  const __m256 v2 = stride2_tap(p + 2, true);
  RowMax r;
  r.watch = _mm256_add_ps(_mm256_add_ps(v0, v1), v2);
  __m256 t = _mm256_setzero_ps();  // tap 0 in every lane
  __m256 gt = _mm256_cmp_ps(v1, v0, _CMP_GT_OQ);
  t = _mm256_blendv_ps(t, _mm256_castsi256_ps(_mm256_set1_epi32(1)), gt);
  __m256 m = _mm256_max_ps(v1, v0);
  gt = _mm256_cmp_ps(v2, m, _CMP_GT_OQ);
  t = _mm256_blendv_ps(t, _mm256_castsi256_ps(_mm256_set1_epi32(2)), gt);
  r.m = _mm256_max_ps(v2, m);
  r.t = _mm256_castps_si256(t);
  return r;
}

int64_t max_rect_3x3s2_taps(const Pool2dShape& s, const float* xp, int64_t oh0, int64_t oh1,
                            int64_t ow0, int64_t ow1, float* yp, uint8_t* taps) {
  const int64_t end = safe_end(s, ow1, stride2_extra(s));
  if (end - ow0 < 8 || oh0 >= oh1) return ow0;
  constexpr int kStrip = 32;  // blocks of 8 outputs per column strip (rows read in order)
  const __m256i three = _mm256_set1_epi32(3), six = _mm256_set1_epi32(6);
  for (int64_t sb = ow0; sb < end; sb += 8 * kStrip) {
    const int64_t se = sb + 8 * kStrip < end ? sb + 8 * kStrip : end;
    int64_t pos[kStrip];
    RowMax top[kStrip];
    int nb = 0;
    for (int64_t b = sb; b < se; b += 8) pos[nb++] = b + 8 > se ? se - 8 : b;
    for (int j = 0; j < nb; ++j)
      top[j] = row_max3_stride2(xp + (oh0 * 2 - s.pad_h) * s.W + pos[j] * 2 - s.pad_w);
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t h0 = oh * 2 - s.pad_h;
      for (int j = 0; j < nb; ++j) {
        const int64_t b = pos[j];
        const float* col = xp + b * 2 - s.pad_w;  // the block's first window column in row 0
        const RowMax mid = row_max3_stride2(col + (h0 + 1) * s.W);
        const RowMax bot = row_max3_stride2(col + (h0 + 2) * s.W);
        __m256 m = top[j].m, t = _mm256_castsi256_ps(top[j].t);
        __m256 gt = _mm256_cmp_ps(mid.m, m, _CMP_GT_OQ);
        t = _mm256_blendv_ps(t, _mm256_castsi256_ps(_mm256_add_epi32(mid.t, three)), gt);
        m = _mm256_max_ps(mid.m, m);
        gt = _mm256_cmp_ps(bot.m, m, _CMP_GT_OQ);
        t = _mm256_blendv_ps(t, _mm256_castsi256_ps(_mm256_add_epi32(bot.t, six)), gt);
        m = _mm256_max_ps(bot.m, m);
        __m256i ti = _mm256_castps_si256(t);
        const __m256 watch = _mm256_add_ps(_mm256_add_ps(top[j].watch, mid.watch), bot.watch);
        if (__builtin_expect(_mm256_movemask_ps(_mm256_cmp_ps(watch, watch, _CMP_UNORD_Q)) != 0,
                             0))
          m = max_block<true, 3, 2>(s, xp, h0, 0, 3, b, &ti);
        _mm256_storeu_ps(yp + oh * s.OW + b, m);
        store_tap_bytes(taps + oh * s.OW + b, ti);
        top[j] = bot;
      }
    }
  }
  return end;
}

}  // namespace

int64_t max_pool_row_avx2(const Pool2dShape& s, const float* xp, int64_t h0, int64_t rlo,
                          int64_t rhi, int64_t ow0, int64_t ow1, float* y, int32_t* taps) {
  if (s.stride_w > 2) return ow0;
  const int64_t end = safe_end(s, ow1, stride2_extra(s));
  if (end - ow0 < 8) return ow0;
  for (int64_t b = ow0; b < end; b += 8) {
    if (b + 8 > end) b = end - 8;
    __m256i t;
    if (taps) {
      _mm256_storeu_ps(y + b, max_block<true>(s, xp, h0, rlo, rhi, b, &t));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(taps + b), t);
    } else {
      _mm256_storeu_ps(y + b, max_block<false>(s, xp, h0, rlo, rhi, b, &t));
    }
  }
  return end;
}

int64_t max_pool_rect_avx2(const Pool2dShape& s, const float* xp, int64_t oh0, int64_t oh1,
                           int64_t ow0, int64_t ow1, float* yp, uint8_t* taps) {
  if (!taps) {
    switch (window_kind(s)) {
      case Window::k2s2: return max_rect<false, 2, 2>(s, xp, oh0, oh1, ow0, ow1, yp, nullptr);
      case Window::k3s2: return max_rect<false, 3, 2>(s, xp, oh0, oh1, ow0, ow1, yp, nullptr);
      case Window::k3s1: return max_rect<false, 3, 1>(s, xp, oh0, oh1, ow0, ow1, yp, nullptr);
      default: return max_rect<false, 0, 0>(s, xp, oh0, oh1, ow0, ow1, yp, nullptr);
    }
  }
  switch (window_kind(s)) {
    case Window::k2s2: return max_rect<true, 2, 2>(s, xp, oh0, oh1, ow0, ow1, yp, taps);
    case Window::k3s2:
      if (s.kernel_h == 3 && s.stride_h == 2 && s.dil_h == 1)
        return max_rect_3x3s2_taps(s, xp, oh0, oh1, ow0, ow1, yp, taps);
      return max_rect<true, 3, 2>(s, xp, oh0, oh1, ow0, ow1, yp, taps);
    case Window::k3s1: return max_rect<true, 3, 1>(s, xp, oh0, oh1, ow0, ow1, yp, taps);
    default: return max_rect<true, 0, 0>(s, xp, oh0, oh1, ow0, ow1, yp, taps);
  }
}

namespace {

template <int KW, int SW>
int64_t avg_rect(const Pool2dShape& s, const float* xp, int64_t oh0, int64_t oh1, int64_t ow0,
                 int64_t ow1, float divisor, float* yp) {
  if (s.stride_w > 2) return ow0;
  const int64_t end = safe_end(s, ow1, stride2_extra(s));
  if (end - ow0 < 8) return ow0;
  const __m256 div = _mm256_set1_ps(divisor);
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const int64_t h0 = oh * s.stride_h - s.pad_h;
    for (int64_t b = ow0; b < end; b += 8) {
      if (b + 8 > end) b = end - 8;
      __m256 sum = _mm256_setzero_ps();
      for_each_tap<KW, SW>(s, xp, h0, 0, s.kernel_h, b,
                           [&](__m256 v, int32_t) { sum = _mm256_add_ps(sum, v); });
      _mm256_storeu_ps(yp + oh * s.OW + b, _mm256_div_ps(sum, div));
    }
  }
  return end;
}

}  // namespace

int64_t avg_pool_rect_avx2(const Pool2dShape& s, const float* xp, int64_t oh0, int64_t oh1,
                           int64_t ow0, int64_t ow1, float divisor, float* yp) {
  switch (window_kind(s)) {
    case Window::k2s2: return avg_rect<2, 2>(s, xp, oh0, oh1, ow0, ow1, divisor, yp);
    case Window::k3s2: return avg_rect<3, 2>(s, xp, oh0, oh1, ow0, ow1, divisor, yp);
    case Window::k3s1: return avg_rect<3, 1>(s, xp, oh0, oh1, ow0, ow1, divisor, yp);
    default: return avg_rect<0, 0>(s, xp, oh0, oh1, ow0, ow1, divisor, yp);
  }
}

namespace {

// dx0[2*ow + t] = a0[ow] for t = 0, b0[ow] for t = 1 (and dx1 from a1, b1), eight windows.
inline void store_interleaved(float* dx, __m256 even, __m256 odd) {
  const __m256 lo = _mm256_unpacklo_ps(even, odd);  // e0 o0 e1 o1 | e4 o4 e5 o5
  const __m256 hi = _mm256_unpackhi_ps(even, odd);  // e2 o2 e3 o3 | e6 o6 e7 o7
  _mm256_storeu_ps(dx, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_storeu_ps(dx + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

}  // namespace

int64_t max_pool_backward_2x2_row_avx2(const float* dy, const uint8_t* taps, int64_t ow0,
                                       int64_t ow1, float* dx0, float* dx1) {
  int64_t ow = ow0;
  for (; ow + 8 <= ow1; ow += 8) {
    const __m256 g = _mm256_loadu_ps(dy + ow);
    const __m256i t = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(taps + ow)));
    auto pick = [&](int tap) {
      return _mm256_and_ps(g, _mm256_castsi256_ps(_mm256_cmpeq_epi32(t, _mm256_set1_epi32(tap))));
    };
    store_interleaved(dx0 + 2 * ow, pick(0), pick(1));
    store_interleaved(dx1 + 2 * ow, pick(2), pick(3));
  }
  return ow;
}

int64_t avg_pool_backward_2x2_row_avx2(const float* g, int64_t ow0, int64_t ow1, float* dx0,
                                       float* dx1) {
  int64_t ow = ow0;
  for (; ow + 8 <= ow1; ow += 8) {
    const __m256 v = _mm256_loadu_ps(g + ow);
    store_interleaved(dx0 + 2 * ow, v, v);
    store_interleaved(dx1 + 2 * ow, v, v);
  }
  return ow;
}

float contiguous_sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
  const __m256 v = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  float sum = _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
  for (; i < n; ++i) sum += p[i];
  return sum;
}

float max_window_wide_avx2(const float* xp, int64_t rows, int64_t len, int64_t row_stride,
                           int64_t* row, int64_t* col) {
  // Pass 1: the maximum over the non-NaN values, and whether any value is NaN (max_ps returns
  // its second operand when either is NaN, so NaN needs its own test).
  const __m256 neg_inf = _mm256_set1_ps(-__builtin_huge_valf());
  __m256 m0 = neg_inf, m1 = neg_inf, m2 = neg_inf, m3 = neg_inf;
  __m256 nan = _mm256_setzero_ps();
  float ms = -__builtin_huge_valf();
  bool nan_s = false;
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = xp + r * row_stride;
    int64_t i = 0;
    for (; i + 32 <= len; i += 32) {
      const __m256 a = _mm256_loadu_ps(p + i), b = _mm256_loadu_ps(p + i + 8);
      const __m256 c = _mm256_loadu_ps(p + i + 16), d = _mm256_loadu_ps(p + i + 24);
      m0 = _mm256_max_ps(a, m0);
      m1 = _mm256_max_ps(b, m1);
      m2 = _mm256_max_ps(c, m2);
      m3 = _mm256_max_ps(d, m3);
      nan = _mm256_or_ps(nan, _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q),
                                           _mm256_cmp_ps(c, d, _CMP_UNORD_Q)));
    }
    for (; i + 8 <= len; i += 8) {
      const __m256 a = _mm256_loadu_ps(p + i);
      m0 = _mm256_max_ps(a, m0);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    }
    for (; i < len; ++i) {
      const float v = p[i];
      nan_s |= v != v;
      ms = v > ms ? v : ms;
    }
  }
  const bool any_nan = nan_s || _mm256_movemask_ps(nan) != 0;
  const __m256 mv = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, mv);
  for (float v : lanes) ms = v > ms ? v : ms;
  // Pass 2. With a NaN: the last NaN (each NaN replaces the maximum so far, as
  // take_max's "v > m or v is NaN"). Otherwise the first element equal to the maximum
  // (-0.0 == 0.0, so the value returned is the element's own, as the tap loops return it).
  if (any_nan) {
    int64_t last_r = 0, last_c = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* p = xp + r * row_stride;
      int64_t i = 0;
      for (; i + 8 <= len; i += 8) {
        const __m256 a = _mm256_loadu_ps(p + i);
        const int mask = _mm256_movemask_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q));
        if (mask != 0) {
          last_r = r;
          last_c = i + 31 - __builtin_clz(static_cast<unsigned>(mask));
        }
      }
      for (; i < len; ++i)
        if (p[i] != p[i]) {
          last_r = r;
          last_c = i;
        }
    }
    *row = last_r;
    *col = last_c;
    return xp[last_r * row_stride + last_c];
  }
  const __m256 target = _mm256_set1_ps(ms);
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = xp + r * row_stride;
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) {
      const int mask =
          _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + i), target, _CMP_EQ_OQ));
      if (mask != 0) {
        *row = r;
        *col = i + __builtin_ctz(static_cast<unsigned>(mask));
        return p[*col];
      }
    }
    for (; i < len; ++i) {
      if (p[i] == ms) {
        *row = r;
        *col = i;
        return p[i];
      }
    }
  }
  // Unreachable for rows, len >= 1: the maximum is one of the elements.
  *row = 0;
  *col = 0;
  return xp[0];
}

void stream_copy_avx2(void* dst, const void* src, int64_t bytes) {
  char* d = static_cast<char*>(dst);
  const char* sp = static_cast<const char*>(src);
  int64_t i = 0;
  for (; i < bytes && (reinterpret_cast<uintptr_t>(d + i) & 31) != 0; ++i) d[i] = sp[i];
  for (; i + 64 <= bytes; i += 64) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp + i + 32));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i), a);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i + 32), b);
  }
  for (; i + 32 <= bytes; i += 32)
    _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp + i)));
  _mm_sfence();  // streaming stores are weakly ordered: visible before the caller goes on
  for (; i < bytes; ++i) d[i] = sp[i];
}

}  // namespace pydl::pool_detail
