// AVX2+FMA loops for batch normalization (see batchnorm_avx2.h). This file alone is compiled
// with -mavx2 -mfma; batchnorm.cpp calls into it only when use_avx2() is true.
//
// The channel sums keep four accumulators of eight float lanes (32 independent add chains: the
// loop runs at load speed instead of add latency) over blocks of kFlushBlock values, which are
// then added into double. Only the entry points have external linkage, and nothing from the
// standard library is used, so no AVX-compiled inline function can stand in for a portable one.
#include "batchnorm_avx2.h"

#include <immintrin.h>

#include <cstdint>

namespace pydl::bn_detail {
namespace {

inline double hsum(__m256 v) {
  const __m256d d = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                  _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

inline double hsum(__m256d v) {
  const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

}  // namespace

void shifted_sums_avx2(const float* x, int64_t n, float shift, double* s1, double* s2) {
  const __m256 sh = _mm256_set1_ps(shift);
  double d1 = 0, d2 = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kFlushBlock) {
    const int64_t b1 = min64(n, b0 + kFlushBlock);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m256 q0 = a0, q1 = a0, q2 = a0, q3 = a0;
    int64_t l = b0;
    for (; l + 32 <= b1; l += 32) {
      _mm_prefetch(reinterpret_cast<const char*>(x + l + 512), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(x + l + 528), _MM_HINT_T0);
      const __m256 v0 = _mm256_sub_ps(_mm256_loadu_ps(x + l), sh);
      const __m256 v1 = _mm256_sub_ps(_mm256_loadu_ps(x + l + 8), sh);
      const __m256 v2 = _mm256_sub_ps(_mm256_loadu_ps(x + l + 16), sh);
      const __m256 v3 = _mm256_sub_ps(_mm256_loadu_ps(x + l + 24), sh);
      a0 = _mm256_add_ps(a0, v0), a1 = _mm256_add_ps(a1, v1);
      a2 = _mm256_add_ps(a2, v2), a3 = _mm256_add_ps(a3, v3);
      q0 = _mm256_fmadd_ps(v0, v0, q0), q1 = _mm256_fmadd_ps(v1, v1, q1);
      q2 = _mm256_fmadd_ps(v2, v2, q2), q3 = _mm256_fmadd_ps(v3, v3, q3);
    }
    for (; l + 8 <= b1; l += 8) {
      const __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + l), sh);
      a0 = _mm256_add_ps(a0, v);
      q0 = _mm256_fmadd_ps(v, v, q0);
    }
    float ta = 0, tq = 0;
    for (; l < b1; ++l) {
      const float d = x[l] - shift;
      ta += d;
      tq += d * d;
    }
    d1 += hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) + ta;
    d2 += hsum(_mm256_add_ps(_mm256_add_ps(q0, q1), _mm256_add_ps(q2, q3))) + tq;
  }
  *s1 += d1, *s2 += d2;
}

void grad_sums_avx2(const float* dy, const float* x, int64_t n, float mean, double* s1,
                    double* s2) {
  const __m256 mu = _mm256_set1_ps(mean);
  double d1 = 0, d2 = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kFlushBlock) {
    const int64_t b1 = min64(n, b0 + kFlushBlock);
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m256 q0 = a0, q1 = a0, q2 = a0, q3 = a0;
    int64_t l = b0;
    for (; l + 32 <= b1; l += 32) {
      const __m256 g0 = _mm256_loadu_ps(dy + l), g1 = _mm256_loadu_ps(dy + l + 8);
      const __m256 g2 = _mm256_loadu_ps(dy + l + 16), g3 = _mm256_loadu_ps(dy + l + 24);
      a0 = _mm256_add_ps(a0, g0), a1 = _mm256_add_ps(a1, g1);
      a2 = _mm256_add_ps(a2, g2), a3 = _mm256_add_ps(a3, g3);
      q0 = _mm256_fmadd_ps(g0, _mm256_sub_ps(_mm256_loadu_ps(x + l), mu), q0);
      q1 = _mm256_fmadd_ps(g1, _mm256_sub_ps(_mm256_loadu_ps(x + l + 8), mu), q1);
      q2 = _mm256_fmadd_ps(g2, _mm256_sub_ps(_mm256_loadu_ps(x + l + 16), mu), q2);
      q3 = _mm256_fmadd_ps(g3, _mm256_sub_ps(_mm256_loadu_ps(x + l + 24), mu), q3);
    }
    for (; l + 8 <= b1; l += 8) {
      const __m256 g = _mm256_loadu_ps(dy + l);
      a0 = _mm256_add_ps(a0, g);
      q0 = _mm256_fmadd_ps(g, _mm256_sub_ps(_mm256_loadu_ps(x + l), mu), q0);
    }
    float ta = 0, tq = 0;
    for (; l < b1; ++l) {
      ta += dy[l];
      tq += dy[l] * (x[l] - mean);
    }
    d1 += hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3))) + ta;
    d2 += hsum(_mm256_add_ps(_mm256_add_ps(q0, q1), _mm256_add_ps(q2, q3))) + tq;
  }
  *s1 += d1, *s2 += d2;
}

void scale_shift_avx2(const float* x, int64_t n, float scale, float bias, float* y,
                      bool stream) {
  // (Streaming stores were once measured twice as slow as ordinary ones here: that was into
  // fresh pages, which fault on first touch; into the host cache's reused blocks they win.)
  const __m256 sc = _mm256_set1_ps(scale), bi = _mm256_set1_ps(bias);
  int64_t l = 0;
  if (stream) {
    for (; l < n && (reinterpret_cast<uintptr_t>(y + l) & 31) != 0; ++l)
      y[l] = x[l] * scale + bias;
    for (; l + 16 <= n; l += 16) {
      _mm256_stream_ps(y + l, _mm256_fmadd_ps(_mm256_loadu_ps(x + l), sc, bi));
      _mm256_stream_ps(y + l + 8, _mm256_fmadd_ps(_mm256_loadu_ps(x + l + 8), sc, bi));
    }
    _mm_sfence();  // streaming stores are weakly ordered: make them visible before returning
  }
  for (; l + 16 <= n; l += 16) {
    _mm256_storeu_ps(y + l, _mm256_fmadd_ps(_mm256_loadu_ps(x + l), sc, bi));
    _mm256_storeu_ps(y + l + 8, _mm256_fmadd_ps(_mm256_loadu_ps(x + l + 8), sc, bi));
  }
  for (; l + 8 <= n; l += 8) _mm256_storeu_ps(y + l, _mm256_fmadd_ps(_mm256_loadu_ps(x + l), sc, bi));
  for (; l < n; ++l) y[l] = x[l] * scale + bias;
}

void grad_input_avx2(const float* dy, const float* x, int64_t n, float mdy, float mean, float k,
                     float a, float* dx, bool stream) {
  const __m256 vm = _mm256_set1_ps(mdy), vmu = _mm256_set1_ps(mean);
  const __m256 vk = _mm256_set1_ps(k), va = _mm256_set1_ps(a);
  int64_t l = 0;
  if (stream) {
    for (; l < n && (reinterpret_cast<uintptr_t>(dx + l) & 31) != 0; ++l)
      dx[l] = (dy[l] - mdy - (x[l] - mean) * k) * a;
    for (; l + 8 <= n; l += 8) {
      const __m256 u = _mm256_sub_ps(_mm256_loadu_ps(dy + l), vm);
      const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x + l), vmu);
      _mm256_stream_ps(dx + l, _mm256_mul_ps(_mm256_fnmadd_ps(t, vk, u), va));
    }
    _mm_sfence();
  }
  for (; l + 8 <= n; l += 8) {
    const __m256 u = _mm256_sub_ps(_mm256_loadu_ps(dy + l), vm);
    const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x + l), vmu);
    _mm256_storeu_ps(dx + l, _mm256_mul_ps(_mm256_fnmadd_ps(t, vk, u), va));
  }
  for (; l < n; ++l) dx[l] = (dy[l] - mdy - (x[l] - mean) * k) * a;
}

namespace {

// Adds eight float lanes into eight doubles: d[0..8) += v.
inline void add_to_double(double* d, __m256 v) {
  _mm256_storeu_pd(d, _mm256_add_pd(_mm256_loadu_pd(d), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
  _mm256_storeu_pd(d + 4,
                   _mm256_add_pd(_mm256_loadu_pd(d + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

// Channels [c0, c0 + nc) of a block of rows, four rows at a time: every row's channels are
// read front to back (a few sequential streams the hardware prefetcher follows), and each
// channel's float accumulators a and q (nc <= kTile of them, in L1) are loaded and stored once
// per four rows. Each lane still adds its rows in row order, one after the other. (Keeping the
// accumulators of 32 channels in registers down the whole block instead reads the block in
// 128-byte pieces at a stride of C floats, which ran at a third of the bandwidth.)
// Grad: a += dy, q += dy * (x - centre); else a += d, q += d * d with d = x - centre.
constexpr int64_t kTile = 1024;

template <bool kGrad>
inline void tile_sums(const float* dy, const float* x, int64_t rows, int64_t C, int64_t nc,
                      const float* centre, float* a, float* q) {
  const int64_t nv = nc / 8 * 8;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* x0 = x + r * C;
    const float* g0 = kGrad ? dy + r * C : nullptr;
    // The next four rows, one line per 16 channels: the hardware prefetcher alone loses each
    // row's short stream (2 KB at C = 512) at the jump to the next group; with this the pass
    // reads at memcpy speed (16 MB of dy and x: 1.19 -> 0.85 ms, about the time of an 8 MB
    // memcpy, 1 thread, AMD EPYC Zen 3).
    const float* nx = x0 + 4 * C;
    const float* ng = kGrad ? g0 + 4 * C : nullptr;
    const bool ahead = r + 8 <= rows;
    for (int64_t c = 0; c < nv; c += 8) {
      if (ahead && (c & 15) == 0) {
        for (int k = 0; k < 4; ++k) {
          _mm_prefetch(reinterpret_cast<const char*>(nx + k * C + c), _MM_HINT_T0);
          if (kGrad) _mm_prefetch(reinterpret_cast<const char*>(ng + k * C + c), _MM_HINT_T0);
        }
      }
      const __m256 m = _mm256_loadu_ps(centre + c);
      __m256 va = _mm256_load_ps(a + c), vq = _mm256_load_ps(q + c);
      for (int k = 0; k < 4; ++k) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x0 + k * C + c), m);
        if (kGrad) {
          const __m256 g = _mm256_loadu_ps(g0 + k * C + c);
          va = _mm256_add_ps(va, g);
          vq = _mm256_fmadd_ps(g, d, vq);
        } else {
          va = _mm256_add_ps(va, d);
          vq = _mm256_fmadd_ps(d, d, vq);
        }
      }
      _mm256_store_ps(a + c, va);
      _mm256_store_ps(q + c, vq);
    }
    for (int k = 0; k < 4; ++k)
      for (int64_t c = nv; c < nc; ++c) {
        const float d = x0[k * C + c] - centre[c];
        const float g = kGrad ? g0[k * C + c] : d;
        a[c] += g;
        q[c] += g * d;
      }
  }
  for (; r < rows; ++r) {
    const float* xr = x + r * C;
    const float* gr = kGrad ? dy + r * C : nullptr;
    int64_t c = 0;
    for (; c < nv; c += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + c), _mm256_loadu_ps(centre + c));
      const __m256 g = kGrad ? _mm256_loadu_ps(gr + c) : d;
      _mm256_store_ps(a + c, _mm256_add_ps(_mm256_load_ps(a + c), g));
      _mm256_store_ps(q + c, _mm256_fmadd_ps(g, d, _mm256_load_ps(q + c)));
    }
    for (; c < nc; ++c) {
      const float d = xr[c] - centre[c];
      const float g = kGrad ? gr[c] : d;
      a[c] += g;
      q[c] += g * d;
    }
  }
}

template <bool kGrad>
void rows_block(const float* dy, const float* x, int64_t rows, int64_t C, const float* centre,
                double* s1, double* s2) {
  alignas(32) float a[kTile], q[kTile];
  for (int64_t c0 = 0; c0 < C; c0 += kTile) {
    const int64_t nc = min64(kTile, C - c0);
    for (int64_t c = 0; c < nc; ++c) a[c] = q[c] = 0.0f;
    tile_sums<kGrad>(kGrad ? dy + c0 : nullptr, x + c0, rows, C, nc, centre + c0, a, q);
    int64_t c = 0;
    for (; c + 8 <= nc; c += 8) {
      add_to_double(s1 + c0 + c, _mm256_load_ps(a + c));
      add_to_double(s2 + c0 + c, _mm256_load_ps(q + c));
    }
    for (; c < nc; ++c) s1[c0 + c] += double(a[c]), s2[c0 + c] += double(q[c]);
  }
}

}  // namespace

void rows_sums_avx2(const float* x, int64_t rows, int64_t C, const float* shift, double* s1,
                    double* s2) {
  rows_block<false>(nullptr, x, rows, C, shift, s1, s2);
}

void rows_grad_sums_avx2(const float* dy, const float* x, int64_t rows, int64_t C,
                         const float* mean, double* s1, double* s2) {
  rows_block<true>(dy, x, rows, C, mean, s1, s2);
}

void channel_scale_shift_avx2(const float* x, const float* scale, const float* bias, int64_t nc,
                              float* y, bool stream) {
  int64_t c = 0;
  if (stream) {  // the caller issues the sfence after its last row
    for (; c < nc && (reinterpret_cast<uintptr_t>(y + c) & 31) != 0; ++c)
      y[c] = x[c] * scale[c] + bias[c];
    for (; c + 8 <= nc; c += 8)
      _mm256_stream_ps(y + c, _mm256_fmadd_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(scale + c),
                                              _mm256_loadu_ps(bias + c)));
  }
  for (; c + 8 <= nc; c += 8)
    _mm256_storeu_ps(y + c, _mm256_fmadd_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(scale + c),
                                            _mm256_loadu_ps(bias + c)));
  for (; c < nc; ++c) y[c] = x[c] * scale[c] + bias[c];
}

namespace {

inline __m256 grad_input8(const float* dy, const float* x, const float* mdy, const float* mean,
                          const float* k, const float* a) {
  const __m256 u = _mm256_sub_ps(_mm256_loadu_ps(dy), _mm256_loadu_ps(mdy));
  const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x), _mm256_loadu_ps(mean));
  return _mm256_mul_ps(_mm256_fnmadd_ps(t, _mm256_loadu_ps(k), u), _mm256_loadu_ps(a));
}

}  // namespace

void channel_grad_input_avx2(const float* dy, const float* x, const float* mdy, const float* mean,
                             const float* k, const float* a, int64_t nc, float* dx, bool stream) {
  int64_t c = 0;
  if (stream) {
    for (; c < nc && (reinterpret_cast<uintptr_t>(dx + c) & 31) != 0; ++c)
      dx[c] = (dy[c] - mdy[c] - (x[c] - mean[c]) * k[c]) * a[c];
    for (; c + 8 <= nc; c += 8)
      _mm256_stream_ps(dx + c, grad_input8(dy + c, x + c, mdy + c, mean + c, k + c, a + c));
  }
  for (; c + 8 <= nc; c += 8)
    _mm256_storeu_ps(dx + c, grad_input8(dy + c, x + c, mdy + c, mean + c, k + c, a + c));
  for (; c < nc; ++c) dx[c] = (dy[c] - mdy[c] - (x[c] - mean[c]) * k[c]) * a[c];
}

void store_fence() { _mm_sfence(); }

}  // namespace pydl::bn_detail
