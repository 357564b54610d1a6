// Pooling kernels. One task per (n, c) plane: a plane's input, output and gradient are touched by
// that task alone, so the backward scatter (dx[idx] += dy) needs no atomics, and the plane's dx
// (H*W elements) stays in L1/L2 between its zeroing and the scatter.
//
// Versions, side by side (all checked against the float64 NumPy loops of tests/ops/test_pool.py,
// the AVX2 ones also against the portable ones; timed in benchmarks/pool.py):
//   * max pooling, row by row: border columns (windows clipped by padding) take a clipped scalar
//     loop; interior columns a branch-free loop (portable) or eight windows at a time
//     (pool_avx2.cpp, stride_w 1 or 2, float32). The argmax is tracked as the window tap
//     r * kernel_w + t and written as PyTorch's flat index ih * W + iw (return_indices), as one
//     byte (what backward needs when nobody asked for the indices), or not at all (no grad).
//   * max pooling with AVX-512 (pool_avx512.cpp, float32, byte taps or none): 2x2/2 planes
//     with no clipped window and every 3x3/2 plane (clipped windows by masks) whole, sixteen
//     windows per block; a y of kStreamMinBytes or more is built per plane in a buffer and
//     streamed out in whole 64-byte lines.
//   * max backward: zero the plane, add dy at each tap; 2x2 stride 2 windows (which do not
//     overlap) write dx densely instead, two input rows at a time; with AVX-512, 3x3/2/1
//     windows too (each element written once, the overlapping contributions added to 0 in the
//     scatter's order), and a large dx of either goes through a plane buffer streamed out in
//     whole lines.
//   * average pooling: window bounds and divisors per row and per column, computed once per
//     call (a divisor is a row factor times a column factor); interior columns as for max.
//   * adaptive average: input rows of an output row summed into a row buffer (contiguous, so
//     it vectorises), then window sums along it; whole-row windows (global pooling) as one
//     contiguous sum. Backward copies into rows no earlier window covered (no zeroing pass).
//
// Napkin math for the benchmark case, max_pool2d 2x2 on float32 (64, 64, 56, 56):
//   forward reads x (51.4 MB), writes y (12.8 MB) and one tap byte per output (3.2 MB);
//   backward reads dy and the taps (16 MB) and writes dx (51.4 MB); with return_indices PyTorch's
//   int64 indices add 25.7 MB to each pass. Outputs come from the host cache
//   (csrc/host_cache.h): a fresh 51 MB dx used to cost 4-7 ms of page faults (the OS zeroing
//   new pages at ~7-12 GB/s), a reused block costs none. A dx of kStreamMinBytes or more is
//   mostly built per plane in a small buffer and streamed out (PlaneSink). Measured on the development
//   VM (2 threads, quiet), AVX2 path: forward 2.2 ms (taps) / 1.5 ms (no argmax), backward
//   2.3-3.3 ms; in a forward+backward step each pass takes ~1 ms more, as the step's ~130 MB
//   no longer stay in the last-level cache. AVX-512 path (Sapphire Rapids class, 2 threads,
//   lerp_ over 2 x 256 MB at ~50-55 GB/s): inside a step the forward takes ~1.6-1.7 ms and the
//   backward ~2.2-2.3 ms, the step ~4-4.3 ms (~32 GB/s of the 134.8 MB that must move; y and dx
//   streamed, so no line of them is read first); 3x3/2/1: forward ~2.5 ms (compute-bound: three
//   compares per tap row and the tap bookkeeping), backward ~2.8 ms, step ~5.3-5.7 ms.
#include "pool.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common/checked.h"
#include "cpu_features.h"
#include "parallel.h"
#include "pool_avx2.h"
#include "pool_avx512.h"

namespace pydl {
namespace {

// Window taps [lo, hi) along one axis: start + tap * dil must lie in [0, n).
inline void tap_range(int64_t start, int64_t taps, int64_t dil, int64_t n, int64_t* lo,
                      int64_t* hi) {
  int64_t a = start >= 0 ? 0 : (-start + dil - 1) / dil;
  int64_t b = n - start <= 0 ? 0 : (n - 1 - start) / dil + 1;
  *lo = std::min(a, taps);
  *hi = std::max(std::min(b, taps), *lo);
}

int64_t plane_grain(const Pool2dShape& s) {
  // A few planes per task keep the scheduling overhead small for tiny planes.
  int64_t per_plane = std::max<int64_t>(1, s.H * s.W + s.OH * s.OW);
  return std::max<int64_t>(1, 4096 / per_plane);
}

// Outputs of at least kStreamMinBytes whose planes fit kPlaneBufferMaxBytes may be built plane
// by plane in a small buffer and streamed out (see PlaneSink).
constexpr int64_t kStreamMinBytes = int64_t(8) << 20;
constexpr int64_t kPlaneBufferMaxBytes = int64_t(256) << 10;
// The AVX-512 paths stream whole 64-byte lines only; a plane much smaller than a few lines
// would be mostly partial lines at its ends (ordinary byte stores), so those write in place.
constexpr int64_t kStreamMinPlaneBytes = 1024;

// A buffer of n values whose first value is 64-byte aligned (for whole-line streaming copies).
template <typename T>
class AlignedPlane {
 public:
  explicit AlignedPlane(int64_t n) : buf_(n + 64 / sizeof(T)) {}
  T* data() {
    return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(buf_.data()) + 63) & ~uintptr_t(63));
  }

 private:
  std::vector<T> buf_;
};

// Output columns [lo, hi) whose windows need no clipping along W.
void interior_columns(const Pool2dShape& s, int64_t* lo, int64_t* hi) {
  const int64_t span_w = (s.kernel_w - 1) * s.dil_w;
  const int64_t a = std::min(s.OW, (s.pad_w + s.stride_w - 1) / s.stride_w);
  const int64_t last = s.W - 1 + s.pad_w - span_w;
  const int64_t b = last < 0 ? 0 : last / s.stride_w + 1;
  *lo = a;
  *hi = std::max(a, std::min(b, s.OW));
}

bool is_float(const float*) { return true; }
bool is_float(const double*) { return false; }

// m, best <- v, tap when v > m or v is NaN (PyTorch's rule), without a branch: on random data
// the comparison is a coin flip, and a mispredicted branch per tap costs more than the tap.
template <typename T>
inline void take_max(T v, int32_t tap, T& m, int32_t& best) {
  using Bits = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;
  const bool take = (v > m) | (v != v);
  const Bits mask = Bits(0) - Bits(take);
  Bits vb, mb;
  std::memcpy(&vb, &v, sizeof(T));
  std::memcpy(&mb, &m, sizeof(T));
  mb = (vb & mask) | (mb & ~mask);
  std::memcpy(&m, &mb, sizeof(T));
  const int32_t imask = -static_cast<int32_t>(take);
  best = (tap & imask) | (best & ~imask);
}

// Columns [c0, c1) of one output row of max pooling: y[ow] and, when taps is not null, the
// window tap of the maximum (-1 for a window with no input element). [ow_lo, ow_hi) are the
// interior columns (see interior_columns). Taps run in PyTorch's order (row-major over the
// window, first maximum wins, a NaN always wins), so values and indices match it exactly.
// The shape comes by value: the stores could otherwise alias its fields and force reloads.
template <typename T>
void max_pool_row(const Pool2dShape s, const T* __restrict xp, int64_t oh, int64_t c0, int64_t c1,
                  int64_t ow_lo, int64_t ow_hi, T* __restrict yrow, int32_t* __restrict taps) {
  const int64_t h0 = oh * s.stride_h - s.pad_h;
  int64_t rlo, rhi;
  tap_range(h0, s.kernel_h, s.dil_h, s.H, &rlo, &rhi);
  auto clipped_window = [&](int64_t ow) {
    const int64_t w0 = ow * s.stride_w - s.pad_w;
    int64_t tlo, thi;
    tap_range(w0, s.kernel_w, s.dil_w, s.W, &tlo, &thi);
    T m = -std::numeric_limits<T>::infinity();
    int32_t best = -1;
    if (rlo < rhi && tlo < thi) {  // the first tap in the input starts the search
      m = xp[(h0 + rlo * s.dil_h) * s.W + w0 + tlo * s.dil_w];
      best = static_cast<int32_t>(rlo * s.kernel_w + tlo);
      for (int64_t r = rlo; r < rhi; ++r) {
        const T* row = xp + (h0 + r * s.dil_h) * s.W + w0;
        for (int64_t t = (r == rlo ? tlo + 1 : tlo); t < thi; ++t)
          take_max(row[t * s.dil_w], static_cast<int32_t>(r * s.kernel_w + t), m, best);
      }
    }
    yrow[ow] = m;
    if (taps) taps[ow] = best;
  };
  for (int64_t ow = c0; ow < std::min(c1, ow_lo); ++ow) clipped_window(ow);
  for (int64_t ow = std::max(c0, ow_hi); ow < c1; ++ow) clipped_window(ow);
  ow_lo = std::max(ow_lo, c0);
  ow_hi = std::min(ow_hi, c1);
  if (ow_lo >= ow_hi) return;
  if (rlo == rhi) {  // no input row under these windows (only reachable through padding)
    std::fill(yrow + ow_lo, yrow + ow_hi, -std::numeric_limits<T>::infinity());
    if (taps) std::fill(taps + ow_lo, taps + ow_hi, int32_t(-1));
    return;
  }
  int64_t ow = ow_lo;
  if (is_float(xp) && use_avx2())
    ow = pool_detail::max_pool_row_avx2(s, reinterpret_cast<const float*>(xp), h0, rlo, rhi, ow,
                                        ow_hi, reinterpret_cast<float*>(yrow), taps);
  const int64_t kw = s.kernel_w, dil_h = s.dil_h, dil_w = s.dil_w, sw = s.stride_w;
  const int32_t first_tap = static_cast<int32_t>(rlo * kw);
  for (; ow < ow_hi; ++ow) {
    const T* w = xp + h0 * s.W - s.pad_w + ow * sw;  // w[r * dil_h * W + t * dil_w] is tap (r, t)
    T m = w[rlo * dil_h * s.W];
    int32_t best = first_tap;
    for (int64_t r = rlo; r < rhi; ++r) {
      const T* row = w + r * dil_h * s.W;
      for (int64_t t = (r == rlo ? 1 : 0); t < kw; ++t)
        take_max(row[t * dil_w], static_cast<int32_t>(r * kw + t), m, best);
    }
    yrow[ow] = m;
    if (taps) taps[ow] = best;
  }
}

// Where max pooling's argmax goes.
enum class ArgmaxOut { kNone, kFlat, kTap };

// Row taps (int32, -1 for none) to bytes (255 for none). Separate, with restrict, so the
// compiler knows the byte stores alias nothing and vectorises the loop.
void narrow_taps(const int32_t* __restrict in, int64_t n, uint8_t* __restrict out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(in[i]);
}

// Output rows [lo, hi) whose windows need no clipping along H.
void interior_rows(const Pool2dShape& s, int64_t* lo, int64_t* hi) {
  const int64_t a = std::min(s.OH, (s.pad_h + s.stride_h - 1) / s.stride_h);
  const int64_t last = s.H - 1 + s.pad_h - (s.kernel_h - 1) * s.dil_h;
  const int64_t b = last < 0 ? 0 : last / s.stride_h + 1;
  *lo = a;
  *hi = std::max(a, std::min(b, s.OH));
}

template <typename T, ArgmaxOut kOut>
void max_pool_forward(const Pool2dShape& s, const T* x, T* y, int64_t* flat, uint8_t* tap8) {
  check_pool2d_shape(s);
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  if (OHW == 0 || s.planes == 0) return;
  int64_t ow_lo, ow_hi, oh_lo, oh_hi;
  interior_columns(s, &ow_lo, &ow_hi);
  interior_rows(s, &oh_lo, &oh_hi);
#if defined(PYDL_HAVE_AVX2_KERNELS)
  // Wide windows (global pooling, kernels of kWideWindowMin columns or more) with no window
  // clipped: one vectorised max and a first-match scan per window (max_window_wide_avx2); the
  // tap loops below run one dependent compare-select per element, ~15x slower on 56x56
  // windows (AMD EPYC Zen 3: 58 ms against 4 ms for (64, 64, 56, 56), 1 thread).
  constexpr int64_t kWideWindowMin = 16;
  if (is_float(x) && use_avx2() && s.dil_w == 1 && s.kernel_w >= kWideWindowMin &&
      oh_lo == 0 && oh_hi == s.OH && ow_lo == 0 && ow_hi == s.OW) {
    parallel_blocks(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        for (int64_t oh = 0; oh < s.OH; ++oh)
          for (int64_t ow = 0; ow < s.OW; ++ow) {
            const int64_t h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
            const int64_t o = p * OHW + oh * s.OW + ow;
            int64_t r = 0, t = 0;
            y[o] = static_cast<T>(pool_detail::max_window_wide_avx2(
                reinterpret_cast<const float*>(x + p * HW + h0 * s.W + w0), s.kernel_h,
                s.kernel_w, s.dil_h * s.W, &r, &t));
            if (kOut == ArgmaxOut::kTap) tap8[o] = static_cast<uint8_t>(r * s.kernel_w + t);
            else if (kOut == ArgmaxOut::kFlat) flat[o] = (h0 + r * s.dil_h) * s.W + w0 + t;
          }
    });
    return;
  }
#endif
  // The AVX2 kernel takes the interior rectangle of each plane in one call and writes byte taps
  // itself; the flat indices go row by row through the int32 taps.
  const bool rect_avx2 = kOut != ArgmaxOut::kFlat && is_float(x) && use_avx2();
  // AVX-512 takes 2x2 / stride 2 windows (it declines others, which then go to AVX2).
  const bool rect_avx512 = kOut != ArgmaxOut::kFlat && is_float(x) && use_avx512();
  // Each output column's window taps [col_lo, col_hi) that lie inside the input along W.
  std::vector<int64_t> col_lo(s.OW), col_hi(s.OW);
  for (int64_t ow = 0; ow < s.OW; ++ow)
    tap_range(ow * s.stride_w - s.pad_w, s.kernel_w, s.dil_w, s.W, &col_lo[ow], &col_hi[ow]);
  // Offset of tap r * kernel_w + t from the window's corner, for the flat indices.
  std::vector<int64_t> tap_offset;
  if (kOut == ArgmaxOut::kFlat) {
    tap_offset.resize(s.kernel_h * s.kernel_w);
    for (int64_t r = 0; r < s.kernel_h; ++r)
      for (int64_t t = 0; t < s.kernel_w; ++t)
        tap_offset[r * s.kernel_w + t] = r * s.dil_h * s.W + t * s.dil_w;
  }
  // Whole planes by AVX-512: 2x2/2 windows when none is clipped, 3x3/2 windows always; a large
  // y is built plane by plane in a per-task buffer and streamed out in whole lines (which skips
  // the read of each line of y).
  const bool k2s2 = s.kernel_h == 2 && s.kernel_w == 2 && s.stride_h == 2 && s.stride_w == 2 &&
                    s.dil_h == 1 && s.dil_w == 1;
  const bool k3s2 = s.kernel_h == 3 && s.kernel_w == 3 && s.stride_h == 2 && s.stride_w == 2 &&
                    s.dil_h == 1 && s.dil_w == 1;
  const bool plane512 = rect_avx512 && (k3s2 || (k2s2 && oh_lo == 0 && oh_hi == s.OH &&
                                                 ow_lo == 0 && ow_hi == s.OW));
  const bool stream_y = plane512 && s.planes * OHW * int64_t(sizeof(T)) >= kStreamMinBytes &&
                        OHW * int64_t(sizeof(T)) >= kStreamMinPlaneBytes &&
                        OHW * int64_t(sizeof(T)) <= kPlaneBufferMaxBytes;
  parallel_blocks(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    if (plane512) {
      AlignedPlane<T> buf(stream_y ? OHW : 0);
      for (int64_t p = p0; p < p1; ++p) {
        const float* xp = reinterpret_cast<const float*>(x + p * HW);
        float* yp = reinterpret_cast<float*>(stream_y ? buf.data() : y + p * OHW);
        uint8_t* tp = kOut == ArgmaxOut::kTap ? tap8 + p * OHW : nullptr;
        if (k3s2)
          pool_detail::max_pool_plane_3x3s2_avx512(s, xp, yp, tp);
        else
          pool_detail::max_pool_rect_2x2s2_avx512(s, xp, 0, s.OH, 0, s.OW, yp, tp);
        if (stream_y) pool_detail::stream_copy_avx512(y + p * OHW, yp, OHW * int64_t(sizeof(T)));
      }
      return;
    }
    std::vector<int32_t> row_taps(kOut == ArgmaxOut::kNone ? 0 : s.OW);
    int32_t* rt = kOut == ArgmaxOut::kNone ? nullptr : row_taps.data();
    // Columns [c0, c1) of output row oh of plane p, portable (and per-row AVX2) loops.
    auto row = [&](int64_t p, int64_t oh, int64_t c0, int64_t c1) {
      if (c0 >= c1) return;
      const int64_t o = p * OHW + oh * s.OW;
      max_pool_row(s, x + p * HW, oh, c0, c1, ow_lo, ow_hi, y + o, rt);
      if (kOut == ArgmaxOut::kTap) {
        narrow_taps(rt + c0, c1 - c0, tap8 + o + c0);
      } else if (kOut == ArgmaxOut::kFlat) {
        const int64_t corner = (oh * s.stride_h - s.pad_h) * s.W - s.pad_w;
        for (int64_t ow = c0; ow < c1; ++ow)
          flat[o + ow] = rt[ow] < 0 ? -1 : corner + ow * s.stride_w + tap_offset[rt[ow]];
      }
    };
    // Columns [c0, c1) of an interior row oh (no window clipped along H) after the AVX2
    // rectangle: what max_pool_row's clipped windows compute, with the column tap ranges from
    // a table and none of its per-call set-up (a few windows per row, in every row).
    auto edge_columns = [&](int64_t p, int64_t oh, int64_t c0, int64_t c1) {
      const T* xp = x + p * HW;
      const int64_t h0 = oh * s.stride_h - s.pad_h, o = p * OHW + oh * s.OW;
      for (int64_t ow = c0; ow < c1; ++ow) {
        const int64_t w0 = ow * s.stride_w - s.pad_w, tlo = col_lo[ow], thi = col_hi[ow];
        T m = -std::numeric_limits<T>::infinity();
        int32_t best = -1;
        if (tlo < thi) {  // the first tap in the input starts the search
          m = xp[h0 * s.W + w0 + tlo * s.dil_w];
          best = static_cast<int32_t>(tlo);
          for (int64_t r = 0; r < s.kernel_h; ++r) {
            const T* xr = xp + (h0 + r * s.dil_h) * s.W + w0;
            for (int64_t t = (r == 0 ? tlo + 1 : tlo); t < thi; ++t)
              take_max(xr[t * s.dil_w], static_cast<int32_t>(r * s.kernel_w + t), m, best);
          }
        }
        y[o + ow] = m;
        if (kOut == ArgmaxOut::kTap) tap8[o + ow] = static_cast<uint8_t>(best);
      }
    };
    for (int64_t p = p0; p < p1; ++p) {
      int64_t done = ow_lo;  // interior rows: columns [ow_lo, done) already written
      if (rect_avx512 && oh_lo < oh_hi)
        done = pool_detail::max_pool_rect_2x2s2_avx512(
            s, reinterpret_cast<const float*>(x + p * HW), oh_lo, oh_hi, ow_lo, ow_hi,
            reinterpret_cast<float*>(y + p * OHW),
            kOut == ArgmaxOut::kTap ? tap8 + p * OHW : nullptr);
      if (rect_avx2 && oh_lo < oh_hi && done == ow_lo)
        done = pool_detail::max_pool_rect_avx2(
            s, reinterpret_cast<const float*>(x + p * HW), oh_lo, oh_hi, ow_lo, ow_hi,
            reinterpret_cast<float*>(y + p * OHW),
            kOut == ArgmaxOut::kTap ? tap8 + p * OHW : nullptr);
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        if (oh >= oh_lo && oh < oh_hi && done > ow_lo) {
          edge_columns(p, oh, 0, ow_lo);
          edge_columns(p, oh, done, s.OW);
        } else {
          row(p, oh, 0, s.OW);
        }
      }
    }
  });
}

// Window bounds and divisor factors of average pooling along one axis, per output position:
// the window [start, end) clipped to the input, and its length clipped to the padded input.
struct AvgAxis {
  std::vector<int64_t> start, end, padded;
  AvgAxis(int64_t out, int64_t in, int64_t k, int64_t stride, int64_t pad)
      : start(out), end(out), padded(out) {
    for (int64_t o = 0; o < out; ++o) {
      const int64_t a = o * stride - pad, b = std::min(a + k, in + pad);
      padded[o] = b - a;
      start[o] = std::max<int64_t>(a, 0);
      end[o] = std::max(start[o], std::min(b, in));
    }
  }
  int64_t count(int64_t o, bool include_pad) const {
    return include_pad ? padded[o] : end[o] - start[o];
  }
};

inline int64_t avg_divisor(const AvgAxis& rows, const AvgAxis& cols, int64_t oh, int64_t ow,
                           bool include_pad, int64_t divisor_override) {
  if (divisor_override > 0) return divisor_override;
  return rows.count(oh, include_pad) * cols.count(ow, include_pad);
}

// Sum of n contiguous values: 32 partial sums (AVX2 for float32), which also keeps the rounding
// error of long runs down.
template <typename T>
T contiguous_sum(const T* p, int64_t n) {
  if constexpr (std::is_same<T, float>::value)
    if (use_avx2()) return pool_detail::contiguous_sum_avx2(p, n);
  // The AVX2 kernel's order exactly (four 8-lane accumulators, then blocks of 8 into the
  // first, then a fixed reduction tree), so both paths give the same bits.
  T part[32] = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 32; ++j) part[j] += p[i + j];
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += p[i + j];
  T v[8];
  for (int l = 0; l < 8; ++l) v[l] = (part[l] + part[8 + l]) + (part[16 + l] + part[24 + l]);
  T h[4];
  for (int l = 0; l < 4; ++l) h[l] = v[l] + v[l + 4];
  T sum = (h[0] + h[2]) + (h[1] + h[3]);
  for (; i < n; ++i) sum += p[i];
  return sum;
}

inline int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
inline int64_t adaptive_end(int64_t o, int64_t in, int64_t out) {
  return ((o + 1) * in + out - 1) / out;
}

}  // namespace

void check_pool2d_shape(const Pool2dShape& s) {
  if (s.planes < 0 || s.H < 0 || s.W < 0 || s.OH < 0 || s.OW < 0)
    throw std::invalid_argument("pool2d: sizes must be non-negative");
  if (s.kernel_h < 1 || s.kernel_w < 1)
    throw std::invalid_argument("pool2d: kernel_size must be positive, got (" +
                                std::to_string(s.kernel_h) + ", " + std::to_string(s.kernel_w) + ")");
  if (s.kernel_h > std::numeric_limits<int32_t>::max() / s.kernel_w)
    throw std::invalid_argument("pool2d: kernel_size (" + std::to_string(s.kernel_h) + ", " +
                                std::to_string(s.kernel_w) + ") has too many taps");
  if (s.stride_h < 1 || s.stride_w < 1)
    throw std::invalid_argument("pool2d: stride must be positive, got (" +
                                std::to_string(s.stride_h) + ", " + std::to_string(s.stride_w) + ")");
  if (s.dil_h < 1 || s.dil_w < 1)
    throw std::invalid_argument("pool2d: dilation must be positive");
  if (s.pad_h < 0 || s.pad_w < 0)
    throw std::invalid_argument("pool2d: padding must be non-negative, got (" +
                                std::to_string(s.pad_h) + ", " + std::to_string(s.pad_w) + ")");
  // The kernels compute window corners o * stride - pad and ends corner + dil * (k - 1) + 1, and
  // plane offsets p * H * W: all of it must fit int64 for every output the caller asks for.
  const int64_t eff_h = checked_window_extent(s.kernel_h, s.dil_h, "pool2d: dilation * (kernel - 1) + 1");
  const int64_t eff_w = checked_window_extent(s.kernel_w, s.dil_w, "pool2d: dilation * (kernel - 1) + 1");
  checked_padded_extent(s.H, s.pad_h, "pool2d: input + 2 * padding");
  checked_padded_extent(s.W, s.pad_w, "pool2d: input + 2 * padding");
  if (s.OH > 0)
    checked_add(checked_mul(s.OH - 1, s.stride_h, "pool2d: (output - 1) * stride"), eff_h,
                "pool2d: last window end");
  if (s.OW > 0)
    checked_add(checked_mul(s.OW - 1, s.stride_w, "pool2d: (output - 1) * stride"), eff_w,
                "pool2d: last window end");
  checked_bytes(checked_numel({s.planes, s.H, s.W}, "pool2d: input elements"), 8,
                "pool2d: input bytes");
  checked_bytes(checked_numel({s.planes, s.OH, s.OW}, "pool2d: output elements"), 8,
                "pool2d: output bytes");
}

namespace {

void check_tap_window(const Pool2dShape& s) {
  if (s.kernel_h * s.kernel_w > kMaxPoolTapWindow)
    throw std::invalid_argument("max_pool2d: a " + std::to_string(s.kernel_h) + "x" +
                                std::to_string(s.kernel_w) + " window has more than " +
                                std::to_string(kMaxPoolTapWindow) +
                                " taps; use the int64 indices");
}

// 2x2 windows at stride 2, no padding or dilation: no two windows share an element, so max and
// average backward can write dx densely (one store per element, no zeroing pass) where the
// windows lie wholly inside the input.
bool is_2x2_stride2(const Pool2dShape& s) {
  return s.kernel_h == 2 && s.kernel_w == 2 && s.stride_h == 2 && s.stride_w == 2 &&
         s.pad_h == 0 && s.pad_w == 0 && s.dil_h == 1 && s.dil_w == 1;
}

// Where a backward kernel builds each plane of dx. A large dx (kStreamMinBytes and more, AVX2
// path) is built plane by plane in a per-task buffer that stays in L1/L2 (zeroing, scatters
// and dense writes all land there) and then streamed to dx with non-temporal stores: dx is
// written to memory once, without the read of each line an ordinary store costs first, and
// without pushing dy and the argmax out of the caches. Small outputs are written in place, and
// so is the dense 2x2/2 max backward, which writes each element once (through the buffer it
// measured no faster on the development VM; average and adaptive pooling measured faster).

template <typename T>
class PlaneSink {
 public:
  explicit PlaneSink(const Pool2dShape& s)
      : hw_(s.H * s.W),
        buffered_(use_avx2() && s.planes * hw_ * int64_t(sizeof(T)) >= kStreamMinBytes &&
                  hw_ * int64_t(sizeof(T)) <= kPlaneBufferMaxBytes) {
    if (buffered_) buf_.resize(hw_);
  }
  // Where to build the plane whose final place is dxp.
  T* target(T* dxp) { return buffered_ ? buf_.data() : dxp; }
  // Moves the plane built at target(dxp) to dxp.
  void finish(T* dxp) {
    if (buffered_) pool_detail::stream_copy_avx2(dxp, buf_.data(), hw_ * int64_t(sizeof(T)));
  }

 private:
  int64_t hw_;
  bool buffered_;
  std::vector<T> buf_;
};

}  // namespace

template <typename T>
void max_pool2d_forward_cpu(const Pool2dShape& s, const T* x, T* y, int64_t* idx) {
  if (idx)
    max_pool_forward<T, ArgmaxOut::kFlat>(s, x, y, idx, nullptr);
  else
    max_pool_forward<T, ArgmaxOut::kNone>(s, x, y, nullptr, nullptr);
}

template <typename T>
void max_pool2d_forward_taps_cpu(const Pool2dShape& s, const T* x, T* y, uint8_t* taps) {
  check_pool2d_shape(s);
  check_tap_window(s);
  if (taps)
    max_pool_forward<T, ArgmaxOut::kTap>(s, x, y, nullptr, taps);
  else
    max_pool_forward<T, ArgmaxOut::kNone>(s, x, y, nullptr, nullptr);
}

template <typename T>
void max_pool2d_backward_cpu(const Pool2dShape& s, const T* dy, const int64_t* idx, T* dx) {
  check_pool2d_shape(s);
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  parallel_blocks(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    PlaneSink<T> sink(s);
    for (int64_t p = p0; p < p1; ++p) {
      T* dxp = sink.target(dx + p * HW);
      std::fill(dxp, dxp + HW, T(0));
      const T* dyp = dy + p * OHW;
      const int64_t* ip = idx + p * OHW;
      for (int64_t o = 0; o < OHW; ++o) {
        const int64_t j = ip[o];
        if (j >= 0 && j < HW) dxp[j] += dyp[o];  // indices are ours, but never write outside
      }
      sink.finish(dx + p * HW);
    }
  });
}

namespace {

// Offsets of window tap r * kernel_w + t from the window's corner: r * dil_h and t * dil_w.
// Tables, so that the scatter does no integer division per element.
struct TapTable {
  std::vector<int64_t> dr, dc, off;  // off = dr * W + dc: the tap's offset in the plane
  int64_t oh_lo, oh_hi, ow_lo, ow_hi;  // windows wholly inside the input (no clipping)
  explicit TapTable(const Pool2dShape& s)
      : dr(kMaxPoolTapWindow + 1), dc(kMaxPoolTapWindow + 1), off(kMaxPoolTapWindow + 1) {
    for (int64_t tap = 0; tap <= kMaxPoolTapWindow; ++tap) {
      dr[tap] = (tap / s.kernel_w) * s.dil_h;
      dc[tap] = (tap % s.kernel_w) * s.dil_w;
      off[tap] = dr[tap] * s.W + dc[tap];
    }
    interior_rows(s, &oh_lo, &oh_hi);
    interior_columns(s, &ow_lo, &ow_hi);
  }
};

// dx_plane += dy at the tapped element of each window of output rows [oh0, oh1), columns
// [ow0, ow1). Taps out of the window (or kMaxPoolNoTap) are skipped, and so are elements outside
// the plane: the taps came from our forward, but a bad one must never write out of bounds.
// Windows wholly inside the input (most of them) need only the tap check: every tap of such a
// window lies in the plane, so they skip the bounds checks and take the tap's offset from a
// table.
template <typename T>
void scatter_taps(const Pool2dShape& s, const TapTable& tt, const T* dyp, const uint8_t* tp,
                  int64_t oh0, int64_t oh1, int64_t ow0, int64_t ow1, T* dxp) {
  const int64_t taps = s.kernel_h * s.kernel_w;
  const int64_t* off = tt.off.data();
  for (int64_t oh = oh0; oh < oh1; ++oh) {
    const int64_t h0 = oh * s.stride_h - s.pad_h;
    auto checked = [&](int64_t c0, int64_t c1) {
      for (int64_t ow = c0; ow < c1; ++ow) {
        const int64_t o = oh * s.OW + ow, tap = tp[o];
        if (tap >= taps) continue;
        const int64_t ih = h0 + tt.dr[tap], iw = ow * s.stride_w - s.pad_w + tt.dc[tap];
        if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) dxp[ih * s.W + iw] += dyp[o];
      }
    };
    if (oh < tt.oh_lo || oh >= tt.oh_hi) {
      checked(ow0, ow1);
      continue;
    }
    const int64_t a = std::min(std::max(tt.ow_lo, ow0), ow1);
    const int64_t b = std::max(std::min(tt.ow_hi, ow1), a);
    checked(ow0, a);
    const int64_t corner = h0 * s.W - s.pad_w;  // window ow's tap t: corner + ow * sw + off[t]
    const uint8_t* tr = tp + oh * s.OW;
    const T* gr = dyp + oh * s.OW;
    for (int64_t ow = a; ow < b; ++ow) {
      const int64_t tap = tr[ow];
      if (tap < taps) dxp[corner + ow * s.stride_w + off[tap]] += gr[ow];
    }
    checked(b, ow1);
  }
}

// One plane of 2x2 stride-2 max backward: full windows written densely (two input rows per
// output row), then zeros and a scatter for what they do not cover (an odd last row or column,
// and the clipped windows ceil_mode adds there).
template <typename T>
void max_backward_2x2_plane(const Pool2dShape& s, const TapTable& tt, const T* dyp,
                            const uint8_t* tp, T* dxp) {
  const int64_t full_oh = std::min(s.OH, s.H / 2), full_ow = std::min(s.OW, s.W / 2);
  for (int64_t oh = 0; oh < full_oh; ++oh) {
    T* dx0 = dxp + 2 * oh * s.W;
    T* dx1 = dx0 + s.W;
    const T* g = dyp + oh * s.OW;
    const uint8_t* t = tp + oh * s.OW;
    int64_t ow = 0;
    if (is_float(dyp) && use_avx512())
      ow = pool_detail::max_pool_backward_2x2_row_avx512(reinterpret_cast<const float*>(g), t, 0,
                                                         full_ow, reinterpret_cast<float*>(dx0),
                                                         reinterpret_cast<float*>(dx1));
    else if (is_float(dyp) && use_avx2())
      ow = pool_detail::max_pool_backward_2x2_row_avx2(reinterpret_cast<const float*>(g), t, 0,
                                                       full_ow, reinterpret_cast<float*>(dx0),
                                                       reinterpret_cast<float*>(dx1));
    for (; ow < full_ow; ++ow) {
      const T v = g[ow];
      dx0[2 * ow] = t[ow] == 0 ? v : T(0);
      dx0[2 * ow + 1] = t[ow] == 1 ? v : T(0);
      dx1[2 * ow] = t[ow] == 2 ? v : T(0);
      dx1[2 * ow + 1] = t[ow] == 3 ? v : T(0);
    }
    std::fill(dx0 + 2 * full_ow, dx0 + s.W, T(0));
    std::fill(dx1 + 2 * full_ow, dx1 + s.W, T(0));
  }
  std::fill(dxp + 2 * full_oh * s.W, dxp + s.H * s.W, T(0));
  scatter_taps(s, tt, dyp, tp, 0, full_oh, full_ow, s.OW, dxp);
  scatter_taps(s, tt, dyp, tp, full_oh, s.OH, 0, s.OW, dxp);
}

}  // namespace

template <typename T>
void max_pool2d_backward_taps_cpu(const Pool2dShape& s, const T* dy, const uint8_t* taps, T* dx) {
  check_pool2d_shape(s);
  check_tap_window(s);
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  const bool dense = is_2x2_stride2(s);
  const bool stream512 = dense && use_avx512() &&
                         s.planes * HW * int64_t(sizeof(T)) >= kStreamMinBytes &&
                         HW * int64_t(sizeof(T)) >= kStreamMinPlaneBytes &&
                         HW * int64_t(sizeof(T)) <= kPlaneBufferMaxBytes;
  // 3x3 / stride 2 / padding 1 (overlapping windows) written densely by AVX-512.
  const bool dense3x3 = is_float(dx) && use_avx512() && s.kernel_h == 3 && s.kernel_w == 3 &&
                        s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 1 && s.pad_w == 1 &&
                        s.dil_h == 1 && s.dil_w == 1;
  const TapTable tt(s);
  parallel_blocks(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    if (dense && stream512) {
      // Each plane built in an L1-resident buffer, then streamed out in whole 64-byte lines
      // (AVX-512): dx goes to memory once, with no read of its lines first.
      AlignedPlane<T> buf(HW);
      T* bp = buf.data();
      for (int64_t p = p0; p < p1; ++p) {
        max_backward_2x2_plane(s, tt, dy + p * OHW, taps + p * OHW, bp);
        pool_detail::stream_copy_avx512(dx + p * HW, bp, HW * int64_t(sizeof(T)));
      }
      return;
    }
    if (dense3x3) {  // AVX-512, dense: in place, or through a plane buffer streamed out
      const bool buffered = s.planes * HW * int64_t(sizeof(T)) >= kStreamMinBytes &&
                            HW * int64_t(sizeof(T)) >= kStreamMinPlaneBytes &&
                            HW * int64_t(sizeof(T)) <= kPlaneBufferMaxBytes;
      AlignedPlane<T> buf(buffered ? HW : 0);
      for (int64_t p = p0; p < p1; ++p) {
        float* dst = reinterpret_cast<float*>(buffered ? buf.data() : dx + p * HW);
        pool_detail::max_pool_backward_3x3s2p1_plane_avx512(
            s, reinterpret_cast<const float*>(dy + p * OHW), taps + p * OHW, dst);
        if (buffered)
          pool_detail::stream_copy_avx512(dx + p * HW, dst, HW * int64_t(sizeof(T)));
      }
      return;
    }
    if (dense) {  // writes each dx element once: in place (a buffer measured no faster here)
      for (int64_t p = p0; p < p1; ++p)
        max_backward_2x2_plane(s, tt, dy + p * OHW, taps + p * OHW, dx + p * HW);
      return;
    }
    PlaneSink<T> sink(s);
    for (int64_t p = p0; p < p1; ++p) {
      T* dxp = sink.target(dx + p * HW);
      std::fill(dxp, dxp + HW, T(0));
      scatter_taps(s, tt, dy + p * OHW, taps + p * OHW, 0, s.OH, 0, s.OW, dxp);
      sink.finish(dx + p * HW);
    }
  });
}

template <typename T>
void avg_pool2d_forward_cpu(const Pool2dShape& s, bool count_include_pad, int64_t divisor_override,
                            const T* x, T* y) {
  check_pool2d_shape(s);
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  if (OHW == 0 || s.planes == 0) return;
  const AvgAxis rows(s.OH, s.H, s.kernel_h, s.stride_h, s.pad_h);
  const AvgAxis cols(s.OW, s.W, s.kernel_w, s.stride_w, s.pad_w);
  Pool2dShape si = s;  // average pooling has no dilation
  si.dil_h = si.dil_w = 1;
  int64_t ow_lo, ow_hi, oh_lo, oh_hi;
  interior_columns(si, &ow_lo, &ow_hi);
  interior_rows(si, &oh_lo, &oh_hi);
  const bool rect_avx2 = is_float(x) && use_avx2() && oh_lo < oh_hi && ow_lo < ow_hi;
  const bool rect_avx512 = rect_avx2 && use_avx512() && s.kernel_h == 2 && s.kernel_w == 2 &&
                           s.stride_h == 2 && s.stride_w == 2;
  // 2x2/2 planes with no clipped window (the common case) by AVX-512; a large y is built plane
  // by plane in a buffer and streamed out in whole lines, as max pooling's.
  const bool whole_plane = rect_avx512 && oh_lo == 0 && oh_hi == s.OH && ow_lo == 0 &&
                           ow_hi == s.OW;
  const bool stream_y = whole_plane && s.planes * OHW * int64_t(sizeof(T)) >= kStreamMinBytes &&
                        OHW * int64_t(sizeof(T)) >= kStreamMinPlaneBytes &&
                        OHW * int64_t(sizeof(T)) <= kPlaneBufferMaxBytes;
  const float interior_div =
      rect_avx2 ? float(avg_divisor(rows, cols, oh_lo, ow_lo, count_include_pad, divisor_override))
                : 0.0f;
  parallel_blocks(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    if (whole_plane) {
      AlignedPlane<T> buf(stream_y ? OHW : 0);
      for (int64_t p = p0; p < p1; ++p) {
        float* yp = reinterpret_cast<float*>(stream_y ? buf.data() : y + p * OHW);
        pool_detail::avg_pool_rect_2x2s2_avx512(si, reinterpret_cast<const float*>(x + p * HW),
                                                0, s.OH, 0, s.OW, interior_div, yp);
        if (stream_y) pool_detail::stream_copy_avx512(y + p * OHW, yp, OHW * int64_t(sizeof(T)));
      }
      return;
    }
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * HW;
      T* yp = y + p * OHW;
      // Interior windows (no clipping, one divisor) [oh_lo, oh_hi) x [ow_lo, done) by AVX-512
      // or AVX2.
      int64_t done = ow_lo;
      if (rect_avx512)
        done = pool_detail::avg_pool_rect_2x2s2_avx512(si, reinterpret_cast<const float*>(xp),
                                                       oh_lo, oh_hi, ow_lo, ow_hi, interior_div,
                                                       reinterpret_cast<float*>(yp));
      else if (rect_avx2)
        done = pool_detail::avg_pool_rect_avx2(si, reinterpret_cast<const float*>(xp), oh_lo,
                                               oh_hi, ow_lo, ow_hi, interior_div,
                                               reinterpret_cast<float*>(yp));
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        T* yrow = yp + oh * s.OW;
        const int64_t hs = rows.start[oh], he = rows.end[oh];
        auto window = [&](int64_t ow) {
          const int64_t div = avg_divisor(rows, cols, oh, ow, count_include_pad, divisor_override);
          T sum = 0;
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = cols.start[ow]; iw < cols.end[ow]; ++iw) sum += xp[ih * s.W + iw];
          // An empty window (only reachable through padding) averages to 0, as in PyTorch.
          yrow[ow] = div > 0 ? sum / T(div) : T(0);
        };
        const bool in_rect = oh >= oh_lo && oh < oh_hi;
        for (int64_t ow = 0; ow < s.OW; ++ow) {
          if (in_rect && ow == ow_lo) ow = done;
          if (ow < s.OW) window(ow);
        }
      }
    }
  });
}

template <typename T>
void avg_pool2d_backward_cpu(const Pool2dShape& s, bool count_include_pad,
                             int64_t divisor_override, const T* dy, T* dx) {
  check_pool2d_shape(s);
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  const AvgAxis rows(s.OH, s.H, s.kernel_h, s.stride_h, s.pad_h);
  const AvgAxis cols(s.OW, s.W, s.kernel_w, s.stride_w, s.pad_w);
  const bool dense = is_2x2_stride2(s);
  // Output columns [lo[iw], hi[iw]) (from ow0 on) whose windows cover input column iw, and the
  // input columns [w_lo, w_hi) they reach; windows move right monotonically, so each is a range.
  struct Cover {
    std::vector<int64_t> lo, hi;
    int64_t w_lo = 0, w_hi = 0;
  };
  auto make_cover = [&](int64_t ow0) {
    Cover c;
    c.lo.assign(s.W, 0);
    c.hi.assign(s.W, 0);
    c.w_lo = ow0 < s.OW ? cols.start[ow0] : 0;
    c.w_hi = c.w_lo;
    for (int64_t ow = ow0; ow < s.OW; ++ow) {
      for (int64_t iw = cols.start[ow]; iw < cols.end[ow]; ++iw) {
        if (c.hi[iw] == 0) c.lo[iw] = ow;
        c.hi[iw] = ow + 1;
      }
      c.w_hi = std::max(c.w_hi, cols.end[ow]);
    }
    return c;
  };
  const Cover cover_all = make_cover(0);
  const Cover cover_dense = dense ? make_cover(std::min(s.OW, s.W / 2)) : Cover();
  parallel_blocks(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    std::vector<T> g(s.OW), spread(s.W);
    PlaneSink<T> sink(s);
    for (int64_t p = p0; p < p1; ++p) {
      T* dxp = sink.target(dx + p * HW);
      const T* dyp = dy + p * OHW;
      // Output rows [0, dense_oh) and columns [0, dense_ow) are full 2x2 windows written
      // densely; the rest is zeroed and scattered into.
      const int64_t dense_oh = dense ? std::min(s.OH, s.H / 2) : 0;
      const int64_t dense_ow = dense ? std::min(s.OW, s.W / 2) : 0;
      std::fill(dxp + 2 * dense_oh * s.W, dxp + HW, T(0));
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        int64_t ow = 0;
        if (oh < dense_oh) {  // full 2x2 windows: one divisor, a loop that vectorises
          const T div = T(divisor_override > 0 ? divisor_override : 4);
          const T* dyr = dyp + oh * s.OW;
          for (; ow < dense_ow; ++ow) g[ow] = dyr[ow] / div;
        }
        for (; ow < s.OW; ++ow) {
          const int64_t div = avg_divisor(rows, cols, oh, ow, count_include_pad, divisor_override);
          g[ow] = div > 0 ? dyp[oh * s.OW + ow] / T(div) : T(0);
        }
        int64_t ow_scatter = 0;
        if (oh < dense_oh) {
          T* dx0 = dxp + 2 * oh * s.W;
          T* dx1 = dx0 + s.W;
          int64_t ow = 0;
          if (is_float(dxp) && use_avx2())
            ow = pool_detail::avg_pool_backward_2x2_row_avx2(
                reinterpret_cast<const float*>(g.data()), 0, dense_ow,
                reinterpret_cast<float*>(dx0), reinterpret_cast<float*>(dx1));
          for (; ow < dense_ow; ++ow)
            dx0[2 * ow] = dx0[2 * ow + 1] = dx1[2 * ow] = dx1[2 * ow + 1] = g[ow];
          std::fill(dx0 + 2 * dense_ow, dx0 + s.W, T(0));
          std::fill(dx1 + 2 * dense_ow, dx1 + s.W, T(0));
          ow_scatter = dense_ow;
        }
        if (ow_scatter >= s.OW) continue;
        // The window is a product of a row range and a column range, so the scatter is
        // separable: spread this output row's gradients along W into one row buffer (kernel_w
        // adds per output), then add that buffer to each input row the windows cover (a
        // contiguous loop that vectorises). Scattering every window element by element instead
        // is a chain of dependent scalar read-modify-writes: 3x3 stride 1 backward on
        // (64, 64, 56, 56) took 137 ms, now ~10 ms (AMD EPYC Zen 3, 1 thread). Each dx element
        // gets its contributions in output-row order, each row's summed in column order.
        // spread[iw] gathers g over the columns [lo, hi) covering iw (a table per call): a
        // short sum per element, where adding each g into spread would chain every store to
        // the next load of the same element.
        const Cover& cv = ow_scatter == 0 ? cover_all : cover_dense;
        const int64_t w_lo = cv.w_lo, w_hi = cv.w_hi;
        for (int64_t iw = w_lo; iw < w_hi; ++iw) {
          T acc = 0;
          for (int64_t ow = cv.lo[iw]; ow < cv.hi[iw]; ++ow) acc += g[ow];
          spread[iw] = acc;
        }
        for (int64_t ih = rows.start[oh]; ih < rows.end[oh]; ++ih) {
          T* __restrict dxrow = dxp + ih * s.W;
          const T* __restrict sp = spread.data();
          for (int64_t iw = w_lo; iw < w_hi; ++iw) dxrow[iw] += sp[iw];
        }
      }
      sink.finish(dx + p * HW);
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_forward_cpu(const Pool2dShape& s, const T* x, T* y) {
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  if (s.OH < 0 || s.OW < 0 || s.H < 0 || s.W < 0)
    throw std::invalid_argument("adaptive_avg_pool2d: sizes must be non-negative");
  if (OHW == 0 || s.planes == 0) return;
  parallel_blocks(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    std::vector<T> colsum(s.W);
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * HW;
      T* yp = y + p * OHW;
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        const int64_t hs = adaptive_start(oh, s.H, s.OH), he = adaptive_end(oh, s.H, s.OH);
        if (s.OW == 1) {  // the window is whole rows: one contiguous run (global pooling)
          const int64_t n = (he - hs) * s.W;
          yp[oh] = n > 0 ? contiguous_sum(xp + hs * s.W, n) / T(n) : T(0);
          continue;
        }
        // colsum[iw] = sum of the window rows at column iw: contiguous adds, which vectorise.
        std::fill(colsum.begin(), colsum.end(), T(0));
        for (int64_t ih = hs; ih < he; ++ih) {
          const T* xrow = xp + ih * s.W;
          for (int64_t iw = 0; iw < s.W; ++iw) colsum[iw] += xrow[iw];
        }
        for (int64_t ow = 0; ow < s.OW; ++ow) {
          const int64_t ws = adaptive_start(ow, s.W, s.OW), we = adaptive_end(ow, s.W, s.OW);
          // Eight partial sums break the add chain (a whole row for a 1x1 output).
          T part[8] = {};
          int64_t iw = ws;
          for (; iw + 8 <= we; iw += 8)
            for (int j = 0; j < 8; ++j) part[j] += colsum[iw + j];
          T sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
          for (; iw < we; ++iw) sum += colsum[iw];
          const int64_t n = (he - hs) * (we - ws);
          yp[oh * s.OW + ow] = n > 0 ? sum / T(n) : T(0);
        }
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_backward_cpu(const Pool2dShape& s, const T* dy, T* dx) {
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  if (s.OH < 0 || s.OW < 0 || s.H < 0 || s.W < 0)
    throw std::invalid_argument("adaptive_avg_pool2d: sizes must be non-negative");
  parallel_blocks(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    std::vector<T> rowg(s.W);
    PlaneSink<T> sink(s);
    for (int64_t p = p0; p < p1; ++p) {
      T* dxp = sink.target(dx + p * HW);
      const T* dyp = dy + p * OHW;
      // Each output row first spreads its gradients along a row buffer, then puts that into its
      // input rows: copied into a row no earlier window covered, added where windows overlap
      // (adaptive windows can share a row). The windows cover every row, so dx needs no zeroing
      // pass (for a 1x1 output this is one store per element).
      int64_t covered = 0;  // input rows [0, covered) hold the sums of earlier output rows
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        const int64_t hs = adaptive_start(oh, s.H, s.OH), he = adaptive_end(oh, s.H, s.OH);
        std::fill(rowg.begin(), rowg.end(), T(0));
        for (int64_t ow = 0; ow < s.OW; ++ow) {
          const int64_t ws = adaptive_start(ow, s.W, s.OW), we = adaptive_end(ow, s.W, s.OW);
          const int64_t n = (he - hs) * (we - ws);
          if (n <= 0) continue;
          const T g = dyp[oh * s.OW + ow] / T(n);
          for (int64_t iw = ws; iw < we; ++iw) rowg[iw] += g;
        }
        for (int64_t ih = hs; ih < he; ++ih) {
          T* dxrow = dxp + ih * s.W;
          if (ih < covered) {
            for (int64_t iw = 0; iw < s.W; ++iw) dxrow[iw] += rowg[iw];
          } else {
            std::copy(rowg.begin(), rowg.end(), dxrow);
          }
        }
        covered = std::max(covered, he);
      }
      std::fill(dxp + covered * s.W, dxp + HW, T(0));  // (only with an empty output)
      sink.finish(dx + p * HW);
    }
  });
}

#define PYDL_INSTANTIATE_POOL(T)                                                                 \
  template void max_pool2d_forward_cpu<T>(const Pool2dShape&, const T*, T*, int64_t*);           \
  template void max_pool2d_backward_cpu<T>(const Pool2dShape&, const T*, const int64_t*, T*);    \
  template void max_pool2d_forward_taps_cpu<T>(const Pool2dShape&, const T*, T*, uint8_t*);      \
  template void max_pool2d_backward_taps_cpu<T>(const Pool2dShape&, const T*, const uint8_t*,    \
                                                T*);                                             \
  template void avg_pool2d_forward_cpu<T>(const Pool2dShape&, bool, int64_t, const T*, T*);      \
  template void avg_pool2d_backward_cpu<T>(const Pool2dShape&, bool, int64_t, const T*, T*);     \
  template void adaptive_avg_pool2d_forward_cpu<T>(const Pool2dShape&, const T*, T*);            \
  template void adaptive_avg_pool2d_backward_cpu<T>(const Pool2dShape&, const T*, T*);
PYDL_INSTANTIATE_POOL(float)
PYDL_INSTANTIATE_POOL(double)
#undef PYDL_INSTANTIATE_POOL

}  // namespace pydl
