// AVX-512 pooling kernels (see pool_avx512.h). This file alone among the pooling files is
// compiled with -mavx512f/bw/dq/vl; pool.cpp calls into it only when use_avx512() is true.
//
// 2x2 / stride 2 forward, sixteen windows: the two input rows' 32 columns are two zmm each;
// vpermt2ps splits each row into its even (tap t = 0) and odd (t = 1) columns, and three exact
// pairwise steps pick the maximum: row 0's pair, row 1's pair, then the two rows. The step
// "take b over a when b > a or b is NaN" is associative over an ordered sequence (it keeps the
// last NaN if there is one, else the first maximum), so grouping the four taps as
// ((t0, t1), (t2, t3)) gives what the sequential scan of the portable loop gives, value bits
// included. The taps come out of the compare masks: bit 1 = rows step, bit 0 = the chosen
// row's pair step.
//
// 3x3 / stride 2 forward, whole planes: each input row's 3-wide maxima (taps 0, 1 from one
// vpermt2ps pair, tap 2 from a pair loaded one column later) are shared by the two output rows
// whose windows hold that row; then three rows combine, row-major, in the same associative
// steps. Unclipped blocks take a fast form (one compare per tap, NaNs only watched in a
// running sum); clipped ones, and any block whose watch turns NaN, take the exact form.
//
// Backward (2x2/2 and 3x3/2/1) writes every dx element once, densely: dy expanded by the taps
// into the even and odd columns of the input rows (masked moves), interleaved by vpermt2ps.
//
// Only the entry points have external linkage (no AVX-512 inline function may be picked by the
// linker for portable code), and nothing from the standard library is used here.
#include <immintrin.h>

#include "pool_avx512.h"

namespace pydl::pool_detail {
namespace {

// Software prefetch distance along the input rows (8 KB): planes are only a few pages long and
// the hardware prefetcher restarts at every page, which left the forward well below memory
// bandwidth whenever the other core was busy too (measured 2x2 forward in a step, contended
// machine: 6.0 ms without, 3.5 ms at 4 KB, 3.1 ms at 8 KB; no change when quiet).
constexpr long kPrefetchFloats = 2048;

// Lanes [0, n) of a 16-lane mask (0 <= n <= 16).
inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u);
}

// b > a or b is NaN: where the sequential max scan replaces a by the later b.
inline __mmask16 takes(__m512 b, __m512 a) {
  return _kor_mask16(_mm512_cmp_ps_mask(b, a, _CMP_GT_OQ), _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q));
}

// Sixteen 2x2 / stride 2 windows starting at output column b (n <= 16 of them real) of the
// input rows r0 and r1: their taps t = 0, 1 of row 0 (x00, x01) and of row 1 (x10, x11), lane
// per window, from masked loads (lanes past the block read nothing and hold 0).
struct Block2x2 {
  __m512 x00, x01, x10, x11;
};

inline Block2x2 load_block_2x2(const float* r0, const float* r1, int64_t b, int64_t n) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __mmask16 lo = first_lanes(2 * n), hi = first_lanes(2 * n - 16 > 0 ? 2 * n - 16 : 0);
  if (kPrefetchFloats > 0) {
    _mm_prefetch(reinterpret_cast<const char*>(r0 + 2 * b + kPrefetchFloats), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(r0 + 2 * b + 16 + kPrefetchFloats), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(r1 + 2 * b + kPrefetchFloats), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(r1 + 2 * b + 16 + kPrefetchFloats), _MM_HINT_T0);
  }
  const __m512 a0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * b);
  const __m512 a1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * b + 16);
  const __m512 c0 = _mm512_maskz_loadu_ps(lo, r1 + 2 * b);
  const __m512 c1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * b + 16);
  return {_mm512_permutex2var_ps(a0, even, a1), _mm512_permutex2var_ps(a0, odd, a1),
          _mm512_permutex2var_ps(c0, even, c1), _mm512_permutex2var_ps(c0, odd, c1)};
}

}  // namespace

int64_t max_pool_rect_2x2s2_avx512(const Pool2dShape& s, const float* xp, int64_t oh0,
                                   int64_t oh1, int64_t ow0, int64_t ow1, float* yp,
                                   uint8_t* taps) {
  if (s.kernel_h != 2 || s.kernel_w != 2 || s.stride_h != 2 || s.stride_w != 2 ||
      s.dil_h != 1 || s.dil_w != 1)
    return ow0;
  const __m128i one = _mm_set1_epi8(1), two = _mm_set1_epi8(2);
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const float* r0 = xp + (2 * oh - s.pad_h) * s.W - s.pad_w;  // window ow's corner: r0 + 2 ow
    const float* r1 = r0 + s.W;
    float* yr = yp + oh * s.OW;
    uint8_t* tr = taps ? taps + oh * s.OW : nullptr;
    for (int64_t b = ow0; b < ow1; b += 16) {
      const int64_t n = ow1 - b < 16 ? ow1 - b : 16;  // windows in this block
      const __mmask16 out = first_lanes(n);
      const Block2x2 w = load_block_2x2(r0, r1, b, n);
      const __m512 t0 = w.x00, t1 = w.x01, t2 = w.x10, t3 = w.x11;
      const __mmask16 k01 = takes(t1, t0), k23 = takes(t3, t2);
      const __m512 m01 = _mm512_mask_mov_ps(t0, k01, t1);
      const __m512 m23 = _mm512_mask_mov_ps(t2, k23, t3);
      const __mmask16 krow = takes(m23, m01);
      _mm512_mask_storeu_ps(yr + b, out, _mm512_mask_mov_ps(m01, krow, m23));
      if (tr) {
        const __mmask16 bit0 = _kor_mask16(_kand_mask16(krow, k23), _kandn_mask16(krow, k01));
        const __m128i t =
            _mm_add_epi8(_mm_maskz_mov_epi8(bit0, one), _mm_maskz_mov_epi8(krow, two));
        _mm_mask_storeu_epi8(tr + b, out, t);
      }
    }
  }
  return ow1;
}

int64_t avg_pool_rect_2x2s2_avx512(const Pool2dShape& s, const float* xp, int64_t oh0,
                                   int64_t oh1, int64_t ow0, int64_t ow1, float divisor,
                                   float* yp) {
  if (s.kernel_h != 2 || s.kernel_w != 2 || s.stride_h != 2 || s.stride_w != 2) return ow0;
  const __m512 div = _mm512_set1_ps(divisor);
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const float* r0 = xp + (2 * oh - s.pad_h) * s.W - s.pad_w;  // window ow's corner: r0 + 2 ow
    const float* r1 = r0 + s.W;
    float* yr = yp + oh * s.OW;
    for (int64_t b = ow0; b < ow1; b += 16) {
      const int64_t n = ow1 - b < 16 ? ow1 - b : 16;  // windows in this block
      const __mmask16 out = first_lanes(n);
      const Block2x2 w = load_block_2x2(r0, r1, b, n);
      // The portable loop's order: ((((0 + x00) + x01) + x10) + x11) / divisor, so the bits
      // match (the leading +0 matters only for -0 inputs: +0 + -0 is +0).
      __m512 sum = _mm512_add_ps(_mm512_setzero_ps(), w.x00);
      sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(sum, w.x01), w.x10), w.x11);
      _mm512_mask_storeu_ps(yr + b, out, _mm512_div_ps(sum, div));
    }
  }
  return ow1;
}

namespace {

// Lanes [lo, hi) of a 16-lane mask, clamped to [0, 16).
inline __mmask16 lane_range(int64_t lo, int64_t hi) {
  lo = lo < 0 ? 0 : lo;
  hi = hi > 16 ? 16 : hi;
  if (hi <= lo) return 0;
  return __mmask16(first_lanes(hi) & ~first_lanes(lo));
}

// ceil(a / 2) for any sign of a.
inline int64_t ceil_half(int64_t a) { return a >= 0 ? (a + 1) / 2 : -((-a) / 2); }

// Sixteen 3x3 / stride 2 windows starting at output column j0: where their columns lie.
struct Block3 {
  int64_t c0;                    // column of tap t = 0 of the block's first window
  __mmask16 la, lb, lc, ld;      // valid lanes of the loads at c0, c0 + 16, c0 + 1, c0 + 17
  __mmask16 v0, v1, v2;          // windows whose tap t lies inside the input
  __mmask16 out;                 // windows in the block (j0 + lane < OW)
  bool fast;                     // every window has tap 0 or 1 inside (row_max3<false> holds)
};

inline Block3 block3(const Pool2dShape& s, int64_t j0) {
  Block3 b;
  b.c0 = 2 * j0 - s.pad_w;
  const int64_t n = s.OW - j0 < 16 ? s.OW - j0 : 16;
  b.out = first_lanes(n);
  auto loads = [&](int64_t start) { return lane_range(-start, s.W - start); };
  b.la = loads(b.c0);
  b.lb = loads(b.c0 + 16);
  b.lc = loads(b.c0 + 1);
  b.ld = loads(b.c0 + 17);
  // Window lane l's tap t is column c0 + 2l + t: inside when 0 <= it < W.
  auto taps = [&](int64_t t) {
    return __mmask16(lane_range(ceil_half(-b.c0 - t), ceil_half(s.W - b.c0 - t)) & b.out);
  };
  b.v0 = taps(0);
  b.v1 = taps(1);
  b.v2 = taps(2);
  b.fast = __mmask16((b.v0 | b.v1) & b.out) == b.out;
  return b;
}

// The sequential scan's step over one more tap: b replaces the running (m, t) in the lanes
// where it is inside the input and either wins or nothing was taken yet.
inline void scan_step(__m512& m, __m128i& t, __mmask16& have, __m512 v, __m128i tap,
                      __mmask16 valid) {
  const __mmask16 take = _kand_mask16(_kor_mask16(takes(v, m), _knot_mask16(have)), valid);
  m = _mm512_mask_mov_ps(m, take, v);
  t = _mm_mask_mov_epi8(t, take, tap);
  have = _kor_mask16(have, valid);
}

// The 3-wide maxima of one input row for a block: value, tap t (bytes), lanes with any tap,
// and (fast form) the sum of the taps, NaN when one of them is.
struct Row3 {
  __m512 m;
  __m128i t;
  __mmask16 have;
  __m512 watch;
};

// kExact: the sequential scan's rule (NaNs, any clipping). Otherwise, for blocks whose every
// window has tap 0 or 1 inside the input (Block3::fast): b replaces the running maximum only
// where b > m, and NaNs are only noted in watch (the caller redoes a block whose watch is NaN
// in the exact form).
template <bool kExact>
inline Row3 row_max3(const float* row, const Block3& b, __m512i even, __m512i odd) {
  if (kPrefetchFloats > 0) {
    _mm_prefetch(reinterpret_cast<const char*>(row + b.c0 + kPrefetchFloats), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(row + b.c0 + 16 + kPrefetchFloats), _MM_HINT_T0);
  }
  const __m512 a = _mm512_maskz_loadu_ps(b.la, row + b.c0);
  const __m512 bb = _mm512_maskz_loadu_ps(b.lb, row + b.c0 + 16);
  const __m512 c = _mm512_maskz_loadu_ps(b.lc, row + b.c0 + 1);
  const __m512 d = _mm512_maskz_loadu_ps(b.ld, row + b.c0 + 17);
  const __m512 v0 = _mm512_permutex2var_ps(a, even, bb);  // tap t: columns c0 + 2l + t
  const __m512 v1 = _mm512_permutex2var_ps(a, odd, bb);
  const __m512 v2 = _mm512_permutex2var_ps(c, odd, d);
  Row3 r;
  r.m = v0;
  r.t = _mm_setzero_si128();
  if (kExact) {
    r.have = b.v0;
    scan_step(r.m, r.t, r.have, v1, _mm_set1_epi8(1), b.v1);
    scan_step(r.m, r.t, r.have, v2, _mm_set1_epi8(2), b.v2);
    r.watch = _mm512_setzero_ps();
  } else {
    // A window clipped on the left (tap 0 outside the input) starts from its tap 1; taps
    // outside on the right never compare (masked compares).
    r.have = b.out;
    const __mmask16 from1 = _kandn_mask16(b.v0, b.out);
    r.m = _mm512_mask_mov_ps(r.m, from1, v1);
    r.t = _mm_maskz_mov_epi8(from1, _mm_set1_epi8(1));
    __mmask16 gt = _mm512_mask_cmp_ps_mask(b.v1, v1, r.m, _CMP_GT_OQ);
    r.m = _mm512_mask_mov_ps(r.m, gt, v1);
    r.t = _mm_mask_mov_epi8(r.t, gt, _mm_set1_epi8(1));
    gt = _mm512_mask_cmp_ps_mask(b.v2, v2, r.m, _CMP_GT_OQ);
    r.m = _mm512_mask_mov_ps(r.m, gt, v2);
    r.t = _mm_mask_mov_epi8(r.t, gt, _mm_set1_epi8(2));
    r.watch = _mm512_add_ps(_mm512_add_ps(v0, v1), v2);
  }
  return r;
}

}  // namespace

bool max_pool_plane_3x3s2_avx512(const Pool2dShape& s, const float* xp, float* yp,
                                 uint8_t* taps) {
  if (s.kernel_h != 3 || s.kernel_w != 3 || s.stride_h != 2 || s.stride_w != 2 ||
      s.dil_h != 1 || s.dil_w != 1)
    return false;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 neg_inf = _mm512_set1_ps(-__builtin_inff());
  const __m128i no_tap = _mm_set1_epi8(char(kMaxPoolNoTap));
  constexpr int kStrip = 32;  // blocks of 16 windows per column strip (rows read in order)
  for (int64_t sb = 0; sb < s.OW; sb += 16 * kStrip) {
    Block3 blk[kStrip];
    Row3 top[kStrip];  // row 2 of the previous output row, per block
    bool top_fast[kStrip];  // ... computed in the fast form (else exactly)
    int nb = 0;
    for (int64_t j0 = sb; j0 < s.OW && nb < kStrip; j0 += 16) blk[nb++] = block3(s, j0);
    auto in_rows = [&](int64_t i) { return i >= 0 && i < s.H; };
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      const int64_t i0 = 2 * oh - s.pad_h;  // window row r is input row i0 + r
      const bool rows_inside = i0 >= 0 && i0 + 2 < s.H;
      for (int j = 0; j < nb; ++j) {
        const Block3& b = blk[j];
        const int64_t j0 = sb + 16 * j;
        Row3 acc, bot;
        bool exact = !(rows_inside && b.fast);
        if (!exact) {  // fast form; row 0 is the previous output row's row 2 when it was fast
          acc = oh > 0 && top_fast[j] ? top[j] : row_max3<false>(xp + i0 * s.W, b, even, odd);
          const Row3 mid = row_max3<false>(xp + (i0 + 1) * s.W, b, even, odd);
          bot = row_max3<false>(xp + (i0 + 2) * s.W, b, even, odd);
          const __m512 watch = _mm512_add_ps(_mm512_add_ps(acc.watch, mid.watch), bot.watch);
          if (__builtin_expect(_mm512_cmp_ps_mask(watch, watch, _CMP_UNORD_Q) != 0, 0)) {
            exact = true;
          } else {
            __mmask16 gt = _mm512_cmp_ps_mask(mid.m, acc.m, _CMP_GT_OQ);
            acc.m = _mm512_mask_mov_ps(acc.m, gt, mid.m);
            acc.t = _mm_mask_mov_epi8(acc.t, gt, _mm_add_epi8(mid.t, _mm_set1_epi8(3)));
            gt = _mm512_cmp_ps_mask(bot.m, acc.m, _CMP_GT_OQ);
            acc.m = _mm512_mask_mov_ps(acc.m, gt, bot.m);
            acc.t = _mm_mask_mov_epi8(acc.t, gt, _mm_add_epi8(bot.t, _mm_set1_epi8(6)));
            top_fast[j] = true;
          }
        }
        if (exact) {
          // Row r = 0 is the previous output row's r = 2 when that was computed exactly.
          if (oh > 0 && !top_fast[j]) {
            acc = top[j];
          } else if (in_rows(i0)) {
            acc = row_max3<true>(xp + i0 * s.W, b, even, odd);
          } else {
            acc.m = neg_inf, acc.t = _mm_setzero_si128(), acc.have = 0;
          }
          if (in_rows(i0 + 1)) {
            Row3 mid = row_max3<true>(xp + (i0 + 1) * s.W, b, even, odd);
            scan_step(acc.m, acc.t, acc.have, mid.m, _mm_add_epi8(mid.t, _mm_set1_epi8(3)),
                      mid.have);
          }
          bot.m = neg_inf, bot.t = _mm_setzero_si128(), bot.have = 0;
          if (in_rows(i0 + 2)) {
            bot = row_max3<true>(xp + (i0 + 2) * s.W, b, even, odd);
            scan_step(acc.m, acc.t, acc.have, bot.m, _mm_add_epi8(bot.t, _mm_set1_epi8(6)),
                      bot.have);
          }
          top_fast[j] = false;
        }
        top[j] = bot;
        // A window with no input element: -inf and no tap, as the portable loops.
        const __mmask16 none = _knot_mask16(acc.have);
        _mm512_mask_storeu_ps(yp + oh * s.OW + j0, b.out, _mm512_mask_mov_ps(acc.m, none, neg_inf));
        if (taps)
          _mm_mask_storeu_epi8(taps + oh * s.OW + j0, b.out,
                               _mm_mask_mov_epi8(acc.t, none, no_tap));
      }
    }
  }
  return true;
}

int64_t max_pool_backward_2x2_row_avx512(const float* dy, const uint8_t* taps, int64_t ow0,
                                         int64_t ow1, float* dx0, float* dx1) {
  // Lanes 0..7 of e and o interleaved (e0 o0 e1 o1 ...), then lanes 8..15.
  const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ihi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (int64_t ow = ow0; ow < ow1; ow += 16) {
    const int64_t n = ow1 - ow < 16 ? ow1 - ow : 16;
    const __mmask16 in = first_lanes(n);
    const __mmask16 lo = first_lanes(2 * n), hi = first_lanes(2 * n - 16 > 0 ? 2 * n - 16 : 0);
    if (kPrefetchFloats > 0) {  // dy and the taps, a quarter as far ahead (a quarter the rate)
      _mm_prefetch(reinterpret_cast<const char*>(dy + ow + kPrefetchFloats / 4), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(taps + ow + kPrefetchFloats / 4), _MM_HINT_T0);
    }
    const __m512 g = _mm512_maskz_loadu_ps(in, dy + ow);
    const __m128i t = _mm_maskz_loadu_epi8(in, taps + ow);
    auto pick = [&](int tap) {
      return _mm512_maskz_mov_ps(_mm_cmpeq_epi8_mask(t, _mm_set1_epi8(char(tap))), g);
    };
    const __m512 p0 = pick(0), p1 = pick(1), p2 = pick(2), p3 = pick(3);
    _mm512_mask_storeu_ps(dx0 + 2 * ow, lo, _mm512_permutex2var_ps(p0, ilo, p1));
    _mm512_mask_storeu_ps(dx0 + 2 * ow + 16, hi, _mm512_permutex2var_ps(p0, ihi, p1));
    _mm512_mask_storeu_ps(dx1 + 2 * ow, lo, _mm512_permutex2var_ps(p2, ilo, p3));
    _mm512_mask_storeu_ps(dx1 + 2 * ow + 16, hi, _mm512_permutex2var_ps(p2, ihi, p3));
  }
  return ow1 > ow0 ? ow1 : ow0;
}

bool max_pool_backward_3x3s2p1_plane_avx512(const Pool2dShape& s, const float* dy,
                                            const uint8_t* taps, float* dx) {
  if (s.kernel_h != 3 || s.kernel_w != 3 || s.stride_h != 2 || s.stride_w != 2 || s.pad_h != 1 ||
      s.pad_w != 1 || s.dil_h != 1 || s.dil_w != 1)
    return false;
  const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i ihi =
      _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const int64_t pairs = (s.W + 1) / 2;  // column pairs (2j, 2j + 1) covering the row
  for (int64_t i = 0; i < s.H; ++i) {
    // The (output row, window row) pairs that reach input row i, in the scatter's order.
    int64_t src_oh[2], src_r[2];
    int nsrc = 0;
    const int64_t k = i / 2;
    if (i % 2 == 0) {
      if (k < s.OH) src_oh[nsrc] = k, src_r[nsrc++] = 1;
    } else {
      if (k < s.OH) src_oh[nsrc] = k, src_r[nsrc++] = 2;
      if (k + 1 < s.OH) src_oh[nsrc] = k + 1, src_r[nsrc++] = 0;
    }
    float* dxr = dx + i * s.W;
    for (int64_t j0 = 0; j0 < pairs; j0 += 16) {
      // Windows j0 + lane (lane < OW - j0) and, shifted, j0 + 1 + lane.
      const __mmask16 in = first_lanes(s.OW - j0 < 0 ? 0 : s.OW - j0);
      const __mmask16 in1 = first_lanes(s.OW - j0 - 1 < 0 ? 0 : s.OW - j0 - 1);
      __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
      for (int c = 0; c < nsrc; ++c) {
        const int64_t o = src_oh[c] * s.OW + j0;
        const char tap0 = char(3 * src_r[c]);
        if (kPrefetchFloats > 0) {
          _mm_prefetch(reinterpret_cast<const char*>(dy + o + kPrefetchFloats / 4), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(taps + o + kPrefetchFloats / 4), _MM_HINT_T0);
        }
        const __m512 g = _mm512_maskz_loadu_ps(in, dy + o);
        const __m128i t = _mm_maskz_loadu_epi8(in, taps + o);
        const __m512 g1 = _mm512_maskz_loadu_ps(in1, dy + o + 1);
        const __m128i t1 = _mm_maskz_loadu_epi8(in1, taps + o + 1);
        const __mmask16 k1 = _mm_mask_cmpeq_epi8_mask(in, t, _mm_set1_epi8(char(tap0 + 1)));
        const __mmask16 k2 = _mm_mask_cmpeq_epi8_mask(in, t, _mm_set1_epi8(char(tap0 + 2)));
        const __mmask16 k0 = _mm_mask_cmpeq_epi8_mask(in1, t1, _mm_set1_epi8(tap0));
        even = _mm512_add_ps(even, _mm512_maskz_mov_ps(k1, g));
        odd = _mm512_add_ps(odd, _mm512_maskz_mov_ps(k2, g));
        odd = _mm512_add_ps(odd, _mm512_maskz_mov_ps(k0, g1));
      }
      const int64_t cols = s.W - 2 * j0 < 32 ? s.W - 2 * j0 : 32;
      _mm512_mask_storeu_ps(dxr + 2 * j0, first_lanes(cols < 16 ? cols : 16),
                            _mm512_permutex2var_ps(even, ilo, odd));
      _mm512_mask_storeu_ps(dxr + 2 * j0 + 16, first_lanes(cols > 16 ? cols - 16 : 0),
                            _mm512_permutex2var_ps(even, ihi, odd));
    }
  }
  return true;
}

void stream_copy_avx512(void* dst, const void* src, int64_t bytes) {
  char* d = static_cast<char*>(dst);
  const char* sp = static_cast<const char*>(src);
  int64_t i = 0;
  for (; i < bytes && (reinterpret_cast<uintptr_t>(d + i) & 63) != 0; ++i) d[i] = sp[i];
  for (; i + 64 <= bytes; i += 64)
    _mm512_stream_ps(reinterpret_cast<float*>(d + i),
                     _mm512_loadu_ps(reinterpret_cast<const float*>(sp + i)));
  _mm_sfence();  // streaming stores are weakly ordered: visible before the caller goes on
  for (; i < bytes; ++i) d[i] = sp[i];
}

}  // namespace pydl::pool_detail
