#pragma once
// GEMM device code: C = alpha * op(A) @ op(B) + beta * C, row-major, batched by blockIdx.z.
//
// Version notes (llm.c style; only the current version is kept):
//   v1 one thread per output, A and B from global memory: ~5% of cuBLAS in napkin terms (every
//      FMA needs two global loads).
//   v2 (this one) the classic register-blocked SGEMM: a 256-thread block computes a 128x128 tile
//      of C, each thread an 8x8 sub-tile held in 64 registers, split as rows {ty*4.., ty*4+64..}
//      and columns {tx*4.., tx*4+64..} so every 128-bit shared-memory read of a warp is
//      conflict-free. A and B stream through shared memory in BK=8 slices, loaded with 128-bit
//      global loads when the layout allows (leading dimension a multiple of 4, 16-byte aligned
//      base) and double-buffered: slice k+1 is fetched into registers while slice k is being
//      multiplied, so one __syncthreads per slice suffices.
// Napkin math at 4096^3: 2*4096^3 = 137 GFLOP; per slice a thread does 64 FMAs against 4 global
// loads and 16 shared loads (4 x LDS.128), the arithmetic intensity that lets this layout reach
// 70-90% of cuBLAS on A100/H100 class GPUs (not yet measured on hardware: see the report).
#include "common.cuh"

namespace pydl::cuda {

namespace gemm {
constexpr int BM = 128;
constexpr int BN = 128;
constexpr int BK = 8;
constexpr int kThreads = 256;
}  // namespace gemm

// Shape and layout of one (batched) GEMM problem, passed by value to the kernel.
template <class T>
struct GemmArgs {
  index_t m, n, k;
  T alpha, beta;
  const T* a;
  index_t lda, stride_a;  // stride_* = elements between batch entries (0 = broadcast)
  const T* b;
  index_t ldb, stride_b;
  T* c;
  index_t ldc, stride_c;
};

// Four consecutive elements from global memory starting at p; `valid` of them exist (0..4).
// VEC means p is 16-byte aligned whenever valid == 4 (checked by the launcher).
template <class T, bool VEC>
__device__ __forceinline__ void load4(const T* p, int valid, T out[4]) {
  if constexpr (VEC && std::is_same_v<T, float>) {
    if (valid == 4) {
      const float4 v = load_float4(p);
      out[0] = v.x;
      out[1] = v.y;
      out[2] = v.z;
      out[3] = v.w;
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) out[i] = i < valid ? p[i] : T(0);
}

// Four consecutive elements from shared memory (16-byte aligned for float).
template <class T>
__device__ __forceinline__ void lds4(const T* p, T out[4]) {
  if constexpr (std::is_same_v<T, float>) {
    const float4 v = *reinterpret_cast<const float4*>(p);
    out[0] = v.x;
    out[1] = v.y;
    out[2] = v.z;
    out[3] = v.w;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) out[i] = p[i];
  }
}

// Fetches this thread's share of the (BM x BK) slice of op(A) and the (BK x BN) slice of op(B)
// starting at k0 into registers: four elements of each, along whichever dimension is contiguous
// in memory so that the global load can be 128 bits wide.
template <class T, bool TRANS_A, bool TRANS_B, bool VEC>
__device__ __forceinline__ void gemm_fetch(const GemmArgs<T>& p, const T* a, const T* b,
                                           index_t m0, index_t n0, index_t k0, int tid,
                                           T ra[4], T rb[4]) {
  using namespace gemm;
  if (!TRANS_A) {  // A is m x k, k contiguous: thread loads row (tid/2), k0 + (tid%2)*4 .. +3
    const index_t row = m0 + tid / 2;
    const index_t col = k0 + (tid % 2) * 4;
    const index_t left = p.k - col;
    const int valid = row < p.m ? static_cast<int>(left < 0 ? 0 : (left > 4 ? 4 : left)) : 0;
    load4<T, VEC>(a + row * p.lda + col, valid, ra);
  } else {  // A is k x m, m contiguous: thread loads k row (tid/32), m0 + (tid%32)*4 .. +3
    const index_t krow = k0 + tid / 32;
    const index_t col = m0 + (tid % 32) * 4;
    const index_t left = p.m - col;
    const int valid = krow < p.k ? static_cast<int>(left < 0 ? 0 : (left > 4 ? 4 : left)) : 0;
    load4<T, VEC>(a + krow * p.lda + col, valid, ra);
  }
  if (!TRANS_B) {  // B is k x n, n contiguous
    const index_t krow = k0 + tid / 32;
    const index_t col = n0 + (tid % 32) * 4;
    const index_t left = p.n - col;
    const int valid = krow < p.k ? static_cast<int>(left < 0 ? 0 : (left > 4 ? 4 : left)) : 0;
    load4<T, VEC>(b + krow * p.ldb + col, valid, rb);
  } else {  // B is n x k, k contiguous
    const index_t row = n0 + tid / 2;
    const index_t col = k0 + (tid % 2) * 4;
    const index_t left = p.k - col;
    const int valid = row < p.n ? static_cast<int>(left < 0 ? 0 : (left > 4 ? 4 : left)) : 0;
    load4<T, VEC>(b + row * p.ldb + col, valid, rb);
  }
}

// Writes the fetched registers into shared memory laid out k-major: As[k][m], Bs[k][n].
template <class T, bool TRANS_A, bool TRANS_B>
__device__ __forceinline__ void gemm_stash(T (*as)[gemm::BM], T (*bs)[gemm::BN], int tid,
                                           const T ra[4], const T rb[4]) {
  if (!TRANS_A) {
#pragma unroll
    for (int i = 0; i < 4; ++i) as[(tid % 2) * 4 + i][tid / 2] = ra[i];
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) as[tid / 32][(tid % 32) * 4 + i] = ra[i];
  }
  if (!TRANS_B) {
#pragma unroll
    for (int i = 0; i < 4; ++i) bs[tid / 32][(tid % 32) * 4 + i] = rb[i];
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) bs[(tid % 2) * 4 + i][tid / 2] = rb[i];
  }
}

template <class T, bool TRANS_A, bool TRANS_B, bool VEC>
__global__ void __launch_bounds__(gemm::kThreads)
    gemm_tiled_kernel(GemmArgs<T> p) {
  using namespace gemm;
  alignas(16) __shared__ T as[2][BK][BM];
  alignas(16) __shared__ T bs[2][BK][BN];

  const int tid = threadIdx.x;
  const int tx = tid % 16;  // columns tx*4 .. +3 and 64 + tx*4 .. +3 of the tile
  const int ty = tid / 16;  // rows ty*4 .. +3 and 64 + ty*4 .. +3
  const index_t m0 = static_cast<index_t>(blockIdx.y) * BM;
  const index_t n0 = static_cast<index_t>(blockIdx.x) * BN;
  const index_t batch = blockIdx.z;
  const T* a = p.a + batch * p.stride_a;
  const T* b = p.b + batch * p.stride_b;
  T* c = p.c + batch * p.stride_c;

  T acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = T(0);

  T ra[4], rb[4];
  const index_t ktiles = ceil_div(p.k, BK);
  if (ktiles > 0) {
    gemm_fetch<T, TRANS_A, TRANS_B, VEC>(p, a, b, m0, n0, 0, tid, ra, rb);
    gemm_stash<T, TRANS_A, TRANS_B>(as[0], bs[0], tid, ra, rb);
  }
  __syncthreads();
  for (index_t kt = 0; kt < ktiles; ++kt) {
    const int cur = static_cast<int>(kt & 1);
    const bool more = kt + 1 < ktiles;
    if (more) gemm_fetch<T, TRANS_A, TRANS_B, VEC>(p, a, b, m0, n0, (kt + 1) * BK, tid, ra, rb);
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T fa[8], fb[8];
      lds4(&as[cur][kk][ty * 4], fa);
      lds4(&as[cur][kk][64 + ty * 4], fa + 4);
      lds4(&bs[cur][kk][tx * 4], fb);
      lds4(&bs[cur][kk][64 + tx * 4], fb + 4);
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] += fa[i] * fb[j];
    }
    // The other buffer was last read before the previous barrier: safe to overwrite now.
    if (more) gemm_stash<T, TRANS_A, TRANS_B>(as[cur ^ 1], bs[cur ^ 1], tid, ra, rb);
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const index_t row = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
    if (row >= p.m) continue;
    T* crow = c + row * p.ldc;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const index_t col = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + (j - 4));
      if (col >= p.n) continue;
      // beta == 0 never reads C, so NaNs already there do not propagate (BLAS semantics).
      const T v = p.alpha * acc[i][j];
      crow[col] = p.beta == T(0) ? v : v + p.beta * crow[col];
    }
  }
}

}  // namespace pydl::cuda
