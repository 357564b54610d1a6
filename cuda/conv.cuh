#pragma once
// Convolution device code: 2-D cross-correlation (NCHW, stride, padding, dilation, groups) as
// implicit GEMM, never materialising im2col. One register-blocked, double-buffered tiled kernel
// (implicit_gemm_kernel) runs all three passes; a "problem" struct says how element (m, k) of A
// and (k, j) of B are gathered from the tensors and where C's (m, j) goes:
//
//   pass            M         N              K                A (m, k)        B (k, j)
//   forward         Cout/g    batch*OH*OW    Cin/g*KH*KW      weight          input window
//   backward-data   Cin/g     batch*H*W      Cout/g*KH*KW     weight (gather) grad_output
//   backward-weight Cout/g    Cin/g*KH*KW    batch*OH*OW      grad_output     input window
//
// Group g is blockIdx.z % groups; backward-weight also splits its long K over blockIdx.z /
// groups and adds the partial tiles with atomicAdd into a zeroed grad_weight.
// Each thread derives its B column's coordinates (batch, output pixel) once per block and its A
// row's base pointer once, so the inner gathers only decompose k (32-bit; K < 2^31 is checked).
// Zero padding, dilation and the stride-divisibility test of backward-data happen in the gather.
#include "common.cuh"

namespace pydl::cuda {

struct Conv2dShape {
  index_t batch, cin, h, w, cout, oh, ow;
  int kh, kw, sh, sw, ph, pw, dh, dw, groups;
};

namespace igemm {
constexpr int BM = 64;
constexpr int BN = 64;
constexpr int BK = 8;
constexpr int kThreads = 256;
}  // namespace igemm

template <class T>
struct Conv2dForwardProblem {
  using value_type = T;
  const T* x;
  const T* w;
  const T* bias;  // may be null
  T* y;
  Conv2dShape s;
  index_t M, N;
  int K;
  index_t k_per_split;

  struct Row {
    const T* w;
    bool valid;
  };
  struct Col {
    const T* x;
    int ih0, iw0;
    bool valid;
  };
  __device__ Row row_a(int g, index_t m) const {
    const bool valid = m < M;
    return {w + (static_cast<index_t>(g) * M + (valid ? m : 0)) * K, valid};
  }
  __device__ T load_a(const Row& r, int k) const { return r.valid ? r.w[k] : T(0); }
  __device__ Col col_b(int g, index_t j) const {
    const bool valid = j < N;
    if (!valid) j = 0;
    const index_t plane = s.oh * s.ow;
    const index_t n = j / plane;
    const index_t r = j - n * plane;
    const int oy = static_cast<int>(r / s.ow);
    const int ox = static_cast<int>(r - static_cast<index_t>(oy) * s.ow);
    const index_t cin_g = s.cin / s.groups;
    return {x + (n * s.cin + g * cin_g) * s.h * s.w, oy * s.sh - s.ph, ox * s.sw - s.pw, valid};
  }
  __device__ T load_b(const Col& c, int k) const {
    if (!c.valid) return T(0);
    const int taps = s.kh * s.kw;
    const int ci = k / taps;
    const int r = k - ci * taps;
    const int ky = r / s.kw;
    const int kx = r - ky * s.kw;
    const int iy = c.ih0 + ky * s.dh;
    const int ix = c.iw0 + kx * s.dw;
    if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) return T(0);
    return c.x[(static_cast<index_t>(ci) * s.h + iy) * s.w + ix];
  }
  __device__ void store(int g, index_t m, index_t j, T v) const {
    const index_t plane = s.oh * s.ow;
    const index_t n = j / plane;
    const index_t r = j - n * plane;
    const index_t co = static_cast<index_t>(g) * M + m;
    y[(n * s.cout + co) * plane + r] = bias ? v + bias[co] : v;
  }
};

template <class T>
struct Conv2dBackwardDataProblem {
  using value_type = T;
  const T* dy;
  const T* w;
  T* dx;
  Conv2dShape s;
  index_t M, N;
  int K;
  index_t k_per_split;

  struct Row {
    const T* w;  // weight[g*Cout/g][m] with the co stride still to apply
    bool valid;
  };
  struct Col {
    const T* dy;
    int ty0, tx0;  // input pixel + padding
    bool valid;
  };
  __device__ Row row_a(int g, index_t m) const {
    const bool valid = m < M;
    const index_t cout_g = s.cout / s.groups;
    const index_t taps = static_cast<index_t>(s.kh) * s.kw;
    return {w + (static_cast<index_t>(g) * cout_g * M + (valid ? m : 0)) * taps, valid};
  }
  __device__ T load_a(const Row& r, int k) const {
    if (!r.valid) return T(0);
    const int taps = s.kh * s.kw;
    const int co = k / taps;
    const int t = k - co * taps;
    return r.w[static_cast<index_t>(co) * M * taps + t];
  }
  __device__ Col col_b(int g, index_t j) const {
    const bool valid = j < N;
    if (!valid) j = 0;
    const index_t plane = s.h * s.w;
    const index_t n = j / plane;
    const index_t r = j - n * plane;
    const int iy = static_cast<int>(r / s.w);
    const int ix = static_cast<int>(r - static_cast<index_t>(iy) * s.w);
    const index_t cout_g = s.cout / s.groups;
    return {dy + (n * s.cout + g * cout_g) * s.oh * s.ow, iy + s.ph, ix + s.pw, valid};
  }
  __device__ T load_b(const Col& c, int k) const {
    if (!c.valid) return T(0);
    const int taps = s.kh * s.kw;
    const int co = k / taps;
    const int r = k - co * taps;
    const int ky = r / s.kw;
    const int kx = r - ky * s.kw;
    const int ty = c.ty0 - ky * s.dh;
    const int tx = c.tx0 - kx * s.dw;
    // Output pixel oy contributes to input row iy when oy*sh - ph + ky*dh == iy.
    if (ty < 0 || tx < 0 || ty % s.sh != 0 || tx % s.sw != 0) return T(0);
    const int oy = ty / s.sh;
    const int ox = tx / s.sw;
    if (oy >= s.oh || ox >= s.ow) return T(0);
    return c.dy[(static_cast<index_t>(co) * s.oh + oy) * s.ow + ox];
  }
  __device__ void store(int g, index_t m, index_t j, T v) const {
    const index_t plane = s.h * s.w;
    const index_t n = j / plane;
    const index_t r = j - n * plane;
    dx[(n * s.cin + static_cast<index_t>(g) * M + m) * plane + r] = v;
  }
};

template <class T>
struct Conv2dBackwardWeightProblem {
  using value_type = T;
  const T* x;
  const T* dy;
  T* dw;
  Conv2dShape s;
  index_t M, N;
  index_t K;
  index_t k_per_split;
  bool accumulate;  // split K: partial tiles are added atomically into a zeroed dw

  struct Row {
    const T* dy;
    bool valid;
  };
  struct Col {
    const T* x;
    int off_y, off_x;
    bool valid;
  };
  __device__ Row row_a(int g, index_t m) const {
    const bool valid = m < M;
    return {dy + (static_cast<index_t>(g) * M + (valid ? m : 0)) * s.oh * s.ow, valid};
  }
  __device__ T load_a(const Row& r, index_t k) const {
    if (!r.valid) return T(0);
    const index_t plane = s.oh * s.ow;
    const index_t n = k / plane;
    return r.dy[n * s.cout * plane + (k - n * plane)];
  }
  __device__ Col col_b(int g, index_t j) const {
    const bool valid = j < N;
    if (!valid) j = 0;
    const int taps = s.kh * s.kw;
    const int ci = static_cast<int>(j / taps);
    const int r = static_cast<int>(j - static_cast<index_t>(ci) * taps);
    const int ky = r / s.kw;
    const int kx = r - ky * s.kw;
    const index_t cin_g = s.cin / s.groups;
    return {x + (g * cin_g + ci) * s.h * s.w, ky * s.dh - s.ph, kx * s.dw - s.pw, valid};
  }
  __device__ T load_b(const Col& c, index_t k) const {
    if (!c.valid) return T(0);
    const index_t plane = s.oh * s.ow;
    const index_t n = k / plane;
    const int r = static_cast<int>(k - n * plane);
    const int oy = r / static_cast<int>(s.ow);
    const int ox = r - oy * static_cast<int>(s.ow);
    const int iy = oy * s.sh + c.off_y;
    const int ix = ox * s.sw + c.off_x;
    if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) return T(0);
    return c.x[n * s.cin * s.h * s.w + static_cast<index_t>(iy) * s.w + ix];
  }
  __device__ void store(int g, index_t m, index_t j, T v) const {
    T* out = dw + (static_cast<index_t>(g) * M + m) * N + j;
    if (accumulate) {
      atomicAdd(out, v);
    } else {
      *out = v;
    }
  }
};

// C tile (64 x 64) of one implicit GEMM; 256 threads, each a 4 x 4 register tile; BK = 8 slices
// double-buffered through shared memory with one barrier per slice.
template <class P>
__global__ void __launch_bounds__(igemm::kThreads) implicit_gemm_kernel(P p) {
  using T = typename P::value_type;
  using namespace igemm;
  alignas(16) __shared__ T as[2][BK][BM];
  alignas(16) __shared__ T bs[2][BK][BN];

  const int tid = threadIdx.x;
  const int tx = tid % 16;
  const int ty = tid / 16;
  const int g = static_cast<int>(blockIdx.z % p.s.groups);
  const index_t split = blockIdx.z / p.s.groups;
  const index_t m0 = static_cast<index_t>(blockIdx.y) * BM;
  const index_t n0 = static_cast<index_t>(blockIdx.x) * BN;
  const index_t k_begin = split * p.k_per_split;
  const index_t k_end = k_begin + p.k_per_split < static_cast<index_t>(p.K)
                            ? k_begin + p.k_per_split
                            : static_cast<index_t>(p.K);

  // This thread gathers A(m0 + tid % 64, k) and B(k, n0 + tid % 64) for k = tid / 64 + {0, 4}.
  const auto row = p.row_a(g, m0 + tid % BM);
  const auto col = p.col_b(g, n0 + tid % BN);
  const int kl = tid / BM;

  T acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);

  T ra[2], rb[2];
  auto fetch = [&](index_t k0) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const index_t k = k0 + kl + 4 * i;
      const bool in = k < k_end;
      ra[i] = in ? p.load_a(row, k) : T(0);
      rb[i] = in ? p.load_b(col, k) : T(0);
    }
  };
  auto stash = [&](int buf) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      as[buf][kl + 4 * i][tid % BM] = ra[i];
      bs[buf][kl + 4 * i][tid % BN] = rb[i];
    }
  };

  const index_t ktiles = k_end > k_begin ? ceil_div(k_end - k_begin, BK) : 0;
  if (ktiles > 0) {
    fetch(k_begin);
    stash(0);
  }
  __syncthreads();
  for (index_t kt = 0; kt < ktiles; ++kt) {
    const int cur = static_cast<int>(kt & 1);
    const bool more = kt + 1 < ktiles;
    if (more) fetch(k_begin + (kt + 1) * BK);
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T fa[4], fb[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        fa[i] = as[cur][kk][ty * 4 + i];
        fb[i] = bs[cur][kk][tx * 4 + i];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += fa[i] * fb[j];
    }
    if (more) stash(cur ^ 1);
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const index_t m = m0 + ty * 4 + i;
    if (m >= p.M) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const index_t jj = n0 + tx * 4 + j;
      if (jj < p.N) p.store(g, m, jj, acc[i][j]);
    }
  }
}

}  // namespace pydl::cuda
