#pragma once
// Pooling device code (NCHW, PyTorch's max_pool2d / avg_pool2d semantics). One thread per output
// element in a grid-stride loop, one pass over each window; backward gathers (each input element
// visits the few windows that contain it) instead of scattering with atomics, so it is
// deterministic and writes every grad_input element exactly once.
#include "common.cuh"

namespace pydl::cuda {

struct Pool2dShape {
  index_t planes;  // batch * channels
  int h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
};

// y = max over the window (padding never wins), indices = iy * W + ix of the maximum (the first
// one on ties, NaN wins as in PyTorch).
template <class T>
__global__ void max_pool2d_forward_kernel(const T* x, T* y, int64_t* indices, Pool2dShape s) {
  const index_t total = s.planes * s.oh * s.ow;
  for (index_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int ox = static_cast<int>(i % s.ow);
    const int oy = static_cast<int>((i / s.ow) % s.oh);
    const index_t plane = i / (static_cast<index_t>(s.ow) * s.oh);
    const T* xp = x + plane * s.h * s.w;
    int y0 = oy * s.sh - s.ph;
    int x0 = ox * s.sw - s.pw;
    const int y1 = y0 + (s.kh - 1) * s.dh + 1 < s.h ? y0 + (s.kh - 1) * s.dh + 1 : s.h;
    const int x1 = x0 + (s.kw - 1) * s.dw + 1 < s.w ? x0 + (s.kw - 1) * s.dw + 1 : s.w;
    while (y0 < 0) y0 += s.dh;
    while (x0 < 0) x0 += s.dw;
    T best = -INFINITY;
    int64_t best_at = static_cast<int64_t>(y0) * s.w + x0;
    for (int iy = y0; iy < y1; iy += s.dh) {
      for (int ix = x0; ix < x1; ix += s.dw) {
        const int64_t at = static_cast<int64_t>(iy) * s.w + ix;
        const T v = xp[at];
        if (v > best || v != v) {
          best = v;
          best_at = at;
          if (v != v) break;
        }
      }
      if (best != best) break;
    }
    y[i] = best;
    indices[i] = best_at;
  }
}

// grad_input[iy, ix] = sum of grad_output over the windows whose argmax is (iy, ix).
template <class T>
__global__ void max_pool2d_backward_kernel(const T* dy, const int64_t* indices, T* dx,
                                           Pool2dShape s) {
  const index_t total = s.planes * s.h * s.w;
  for (index_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int ix = static_cast<int>(i % s.w);
    const int iy = static_cast<int>((i / s.w) % s.h);
    const index_t plane = i / (static_cast<index_t>(s.w) * s.h);
    const int64_t at = static_cast<int64_t>(iy) * s.w + ix;
    // Windows oy with oy*sh - ph <= iy <= oy*sh - ph + (kh-1)*dh.
    const int span_y = (s.kh - 1) * s.dh + 1;
    const int span_x = (s.kw - 1) * s.dw + 1;
    const int oy0 = iy + s.ph < span_y ? 0 : (iy + s.ph - span_y) / s.sh + 1;
    const int oy1 = (iy + s.ph) / s.sh + 1 < s.oh ? (iy + s.ph) / s.sh + 1 : s.oh;
    const int ox0 = ix + s.pw < span_x ? 0 : (ix + s.pw - span_x) / s.sw + 1;
    const int ox1 = (ix + s.pw) / s.sw + 1 < s.ow ? (ix + s.pw) / s.sw + 1 : s.ow;
    const index_t base = plane * s.oh * s.ow;
    T sum = T(0);
    for (int oy = oy0; oy < oy1; ++oy)
      for (int ox = ox0; ox < ox1; ++ox) {
        const index_t o = base + static_cast<index_t>(oy) * s.ow + ox;
        if (indices[o] == at) sum += dy[o];
      }
    dx[i] = sum;
  }
}

// Divisor of window (oy, ox) as PyTorch's avg_pool2d defines it.
__device__ __forceinline__ int avg_pool_divisor(const Pool2dShape& s, int oy, int ox,
                                                bool count_include_pad, int divisor_override,
                                                int& y0, int& y1, int& x0, int& x1) {
  y0 = oy * s.sh - s.ph;
  x0 = ox * s.sw - s.pw;
  y1 = y0 + s.kh < s.h + s.ph ? y0 + s.kh : s.h + s.ph;
  x1 = x0 + s.kw < s.w + s.pw ? x0 + s.kw : s.w + s.pw;
  const int padded = (y1 - y0) * (x1 - x0);
  y0 = y0 > 0 ? y0 : 0;
  x0 = x0 > 0 ? x0 : 0;
  y1 = y1 < s.h ? y1 : s.h;
  x1 = x1 < s.w ? x1 : s.w;
  if (divisor_override) return divisor_override;
  return count_include_pad ? padded : (y1 - y0) * (x1 - x0);
}

template <class T>
__global__ void avg_pool2d_forward_kernel(const T* x, T* y, Pool2dShape s, bool count_include_pad,
                                          int divisor_override) {
  const index_t total = s.planes * s.oh * s.ow;
  for (index_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int ox = static_cast<int>(i % s.ow);
    const int oy = static_cast<int>((i / s.ow) % s.oh);
    const index_t plane = i / (static_cast<index_t>(s.ow) * s.oh);
    int y0, y1, x0, x1;
    const int div =
        avg_pool_divisor(s, oy, ox, count_include_pad, divisor_override, y0, y1, x0, x1);
    const T* xp = x + plane * s.h * s.w;
    T sum = T(0);
    for (int iy = y0; iy < y1; ++iy)
      for (int ix = x0; ix < x1; ++ix) sum += xp[static_cast<index_t>(iy) * s.w + ix];
    y[i] = sum / static_cast<T>(div);
  }
}

template <class T>
__global__ void avg_pool2d_backward_kernel(const T* dy, T* dx, Pool2dShape s,
                                           bool count_include_pad, int divisor_override) {
  const index_t total = s.planes * s.h * s.w;
  for (index_t i = global_thread_index(); i < total; i += grid_stride()) {
    const int ix = static_cast<int>(i % s.w);
    const int iy = static_cast<int>((i / s.w) % s.h);
    const index_t plane = i / (static_cast<index_t>(s.w) * s.h);
    const int oy0 = iy + s.ph < s.kh ? 0 : (iy + s.ph - s.kh) / s.sh + 1;
    const int oy1 = (iy + s.ph) / s.sh + 1 < s.oh ? (iy + s.ph) / s.sh + 1 : s.oh;
    const int ox0 = ix + s.pw < s.kw ? 0 : (ix + s.pw - s.kw) / s.sw + 1;
    const int ox1 = (ix + s.pw) / s.sw + 1 < s.ow ? (ix + s.pw) / s.sw + 1 : s.ow;
    const T* dyp = dy + plane * s.oh * s.ow;
    T sum = T(0);
    for (int oy = oy0; oy < oy1; ++oy)
      for (int ox = ox0; ox < ox1; ++ox) {
        int y0, y1, x0, x1;
        const int div =
            avg_pool_divisor(s, oy, ox, count_include_pad, divisor_override, y0, y1, x0, x1);
        // ceil_mode windows can end before this pixel's row/column: check containment.
        if (iy >= y0 && iy < y1 && ix >= x0 && ix < x1)
          sum += dyp[static_cast<index_t>(oy) * s.ow + ox] / static_cast<T>(div);
      }
    dx[i] = sum;
  }
}

}  // namespace pydl::cuda
