// Pooling kernels. One task per (n, c) plane: a plane's input, output and gradient are touched by
// that task alone, so the backward scatter (dx[idx] += dy) needs no atomics, and the plane's dx
// (H*W elements) stays in L1/L2 between its zeroing and the scatter.
//
// Napkin math for the benchmark case, max_pool2d 2x2 on float32 (64, 64, 56, 56):
//   forward reads x (51.4 MB), writes y (12.8 MB) and int64 indices (25.7 MB): 89.9 MB;
//   backward reads dy and the indices (38.5 MB) and writes dx (51.4 MB): 89.9 MB;
//   at the ~30-45 GB/s DRAM moves here both passes are memory-bound near 2-3 ms each.
#include "pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <limits>
#include <stdexcept>
#include <string>

#include "parallel.h"

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

// m, best <- v, j when v > m or v is NaN (PyTorch's rule), without a branch: on random data
// the comparison is a coin flip, and a mispredicted branch per tap costs more than the tap.
template <typename T>
inline void take_max(T v, int64_t j, T& m, int64_t& best) {
  using Bits = typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type;
  const bool take = (v > m) | (v != v);
  const Bits mask = Bits(0) - Bits(take);
  Bits vb, mb;
  std::memcpy(&vb, &v, sizeof(T));
  std::memcpy(&mb, &m, sizeof(T));
  mb = (vb & mask) | (mb & ~mask);
  std::memcpy(&m, &mb, sizeof(T));
  const int64_t imask = -static_cast<int64_t>(take);
  best = (j & imask) | (best & ~imask);
}

// One max-pool plane, an output row at a time. Columns whose whole window lies inside the input
// (the interior) need no clipping and run branch-free (take_max); border columns take the
// clipped scalar loop. Taps run in PyTorch's order (row-major over the window, first maximum
// wins, a NaN always wins), so values and indices match it exactly. The shape comes by value:
// the int64 index stores could otherwise alias its fields and force reloads on every tap.
template <typename T>
void max_pool_plane(const Pool2dShape s, const T* __restrict xp, T* __restrict yp,
                    int64_t* __restrict ip) {
  const int64_t span_w = (s.kernel_w - 1) * s.dil_w;
  int64_t ow_lo = std::min(s.OW, (s.pad_w + s.stride_w - 1) / s.stride_w);
  int64_t ow_hi = s.W - 1 + s.pad_w - span_w < 0 ? 0 : (s.W - 1 + s.pad_w - span_w) / s.stride_w + 1;
  ow_hi = std::max(ow_lo, std::min(ow_hi, s.OW));
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    const int64_t h0 = oh * s.stride_h - s.pad_h;
    int64_t rlo, rhi;
    tap_range(h0, s.kernel_h, s.dil_h, s.H, &rlo, &rhi);
    T* yrow = yp + oh * s.OW;
    int64_t* irow = ip + oh * s.OW;
    auto scalar_window = [&](int64_t ow) {
      const int64_t w0 = ow * s.stride_w - s.pad_w;
      int64_t tlo, thi;
      tap_range(w0, s.kernel_w, s.dil_w, s.W, &tlo, &thi);
      T m = -std::numeric_limits<T>::infinity();
      int64_t best = -1;
      for (int64_t r = rlo; r < rhi; ++r) {
        const int64_t base = (h0 + r * s.dil_h) * s.W + w0;
        for (int64_t t = tlo; t < thi; ++t) {
          const int64_t j = base + t * s.dil_w;
          const T v = xp[j];
          if (v > m || std::isnan(v) || best < 0) {
            m = v;
            best = j;
          }
        }
      }
      yrow[ow] = m;
      irow[ow] = best;
    };
    for (int64_t ow = 0; ow < ow_lo; ++ow) scalar_window(ow);
    for (int64_t ow = ow_hi; ow < s.OW; ++ow) scalar_window(ow);
    if (ow_lo == ow_hi) continue;
    if (rlo == rhi) {  // no input row under these windows (only reachable through padding)
      std::fill(yrow + ow_lo, yrow + ow_hi, -std::numeric_limits<T>::infinity());
      std::fill(irow + ow_lo, irow + ow_hi, int64_t(-1));
      continue;
    }
    const int64_t taps_w = s.kernel_w, dil_h = s.dil_h, dil_w = s.dil_w, sw = s.stride_w;
    const int64_t first = (h0 + rlo * dil_h) * s.W - s.pad_w;  // index of tap (rlo, 0) at ow = 0
    for (int64_t ow = ow_lo; ow < ow_hi; ++ow) {
      int64_t best = first + ow * sw;
      T m = xp[best];
      for (int64_t r = rlo; r < rhi; ++r) {
        const int64_t base = (h0 + r * dil_h) * s.W - s.pad_w + ow * sw;
        for (int64_t t = (r == rlo ? 1 : 0); t < taps_w; ++t)
          take_max(xp[base + t * dil_w], base + t * dil_w, m, best);
      }
      yrow[ow] = m;
      irow[ow] = best;
    }
  }
}

// Divisor of the average-pool window starting at (h0, w0) (padded coordinates may be negative).
inline int64_t avg_divisor(const Pool2dShape& s, bool count_include_pad, int64_t divisor_override,
                           int64_t h0, int64_t w0, int64_t* hs, int64_t* he, int64_t* ws,
                           int64_t* we) {
  int64_t h1 = std::min(h0 + s.kernel_h, s.H + s.pad_h);
  int64_t w1 = std::min(w0 + s.kernel_w, s.W + s.pad_w);
  const int64_t padded = (h1 - h0) * (w1 - w0);
  *hs = std::max<int64_t>(h0, 0), *ws = std::max<int64_t>(w0, 0);
  *he = std::min(h1, s.H), *we = std::min(w1, s.W);
  if (divisor_override > 0) return divisor_override;
  return count_include_pad ? padded : (*he - *hs) * (*we - *ws);
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
  if (s.stride_h < 1 || s.stride_w < 1)
    throw std::invalid_argument("pool2d: stride must be positive, got (" +
                                std::to_string(s.stride_h) + ", " + std::to_string(s.stride_w) + ")");
  if (s.dil_h < 1 || s.dil_w < 1)
    throw std::invalid_argument("pool2d: dilation must be positive");
  if (s.pad_h < 0 || s.pad_w < 0)
    throw std::invalid_argument("pool2d: padding must be non-negative, got (" +
                                std::to_string(s.pad_h) + ", " + std::to_string(s.pad_w) + ")");
}

template <typename T>
void max_pool2d_forward_cpu(const Pool2dShape& s, const T* x, T* y, int64_t* idx) {
  check_pool2d_shape(s);
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  if (OHW == 0) return;
  parallel_for(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) max_pool_plane(s, x + p * HW, y + p * OHW, idx + p * OHW);
  });
}

template <typename T>
void max_pool2d_backward_cpu(const Pool2dShape& s, const T* dy, const int64_t* idx, T* dx) {
  check_pool2d_shape(s);
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  parallel_for(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* dxp = dx + p * HW;
      std::fill(dxp, dxp + HW, T(0));
      const T* dyp = dy + p * OHW;
      const int64_t* ip = idx + p * OHW;
      for (int64_t o = 0; o < OHW; ++o) {
        const int64_t j = ip[o];
        if (j >= 0 && j < HW) dxp[j] += dyp[o];  // indices are ours, but never write outside
      }
    }
  });
}

template <typename T>
void avg_pool2d_forward_cpu(const Pool2dShape& s, bool count_include_pad, int64_t divisor_override,
                            const T* x, T* y) {
  check_pool2d_shape(s);
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  parallel_for(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * HW;
      T* yp = y + p * OHW;
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        for (int64_t ow = 0; ow < s.OW; ++ow) {
          int64_t hs, he, ws, we;
          const int64_t div = avg_divisor(s, count_include_pad, divisor_override,
                                          oh * s.stride_h - s.pad_h, ow * s.stride_w - s.pad_w,
                                          &hs, &he, &ws, &we);
          T sum = 0;
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = ws; iw < we; ++iw) sum += xp[ih * s.W + iw];
          // An empty window (only reachable through padding) averages to 0, as in PyTorch.
          yp[oh * s.OW + ow] = div > 0 ? sum / T(div) : T(0);
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
  parallel_for(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* dxp = dx + p * HW;
      std::fill(dxp, dxp + HW, T(0));
      const T* dyp = dy + p * OHW;
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        for (int64_t ow = 0; ow < s.OW; ++ow) {
          int64_t hs, he, ws, we;
          const int64_t div = avg_divisor(s, count_include_pad, divisor_override,
                                          oh * s.stride_h - s.pad_h, ow * s.stride_w - s.pad_w,
                                          &hs, &he, &ws, &we);
          if (div <= 0) continue;
          const T g = dyp[oh * s.OW + ow] / T(div);
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = ws; iw < we; ++iw) dxp[ih * s.W + iw] += g;
        }
      }
    }
  });
}

template <typename T>
void adaptive_avg_pool2d_forward_cpu(const Pool2dShape& s, const T* x, T* y) {
  const int64_t HW = s.H * s.W, OHW = s.OH * s.OW;
  if (s.OH < 0 || s.OW < 0 || s.H < 0 || s.W < 0)
    throw std::invalid_argument("adaptive_avg_pool2d: sizes must be non-negative");
  parallel_for(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x + p * HW;
      T* yp = y + p * OHW;
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        const int64_t hs = adaptive_start(oh, s.H, s.OH), he = adaptive_end(oh, s.H, s.OH);
        for (int64_t ow = 0; ow < s.OW; ++ow) {
          const int64_t ws = adaptive_start(ow, s.W, s.OW), we = adaptive_end(ow, s.W, s.OW);
          T sum = 0;
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = ws; iw < we; ++iw) sum += xp[ih * s.W + iw];
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
  parallel_for(s.planes, plane_grain(s), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* dxp = dx + p * HW;
      std::fill(dxp, dxp + HW, T(0));
      const T* dyp = dy + p * OHW;
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        const int64_t hs = adaptive_start(oh, s.H, s.OH), he = adaptive_end(oh, s.H, s.OH);
        for (int64_t ow = 0; ow < s.OW; ++ow) {
          const int64_t ws = adaptive_start(ow, s.W, s.OW), we = adaptive_end(ow, s.W, s.OW);
          const int64_t n = (he - hs) * (we - ws);
          if (n <= 0) continue;
          const T g = dyp[oh * s.OW + ow] / T(n);
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = ws; iw < we; ++iw) dxp[ih * s.W + iw] += g;
        }
      }
    }
  });
}

#define PYDL_INSTANTIATE_POOL(T)                                                                 \
  template void max_pool2d_forward_cpu<T>(const Pool2dShape&, const T*, T*, int64_t*);           \
  template void max_pool2d_backward_cpu<T>(const Pool2dShape&, const T*, const int64_t*, T*);    \
  template void avg_pool2d_forward_cpu<T>(const Pool2dShape&, bool, int64_t, const T*, T*);      \
  template void avg_pool2d_backward_cpu<T>(const Pool2dShape&, bool, int64_t, const T*, T*);     \
  template void adaptive_avg_pool2d_forward_cpu<T>(const Pool2dShape&, const T*, T*);            \
  template void adaptive_avg_pool2d_backward_cpu<T>(const Pool2dShape&, const T*, T*);
PYDL_INSTANTIATE_POOL(float)
PYDL_INSTANTIATE_POOL(double)
#undef PYDL_INSTANTIATE_POOL

}  // namespace pydl
