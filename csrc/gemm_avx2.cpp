// AVX2+FMA micro-kernels for the packed GEMM in gemm.cpp (this file alone is compiled with
// -mavx2 -mfma; gemm.cpp calls it only when use_avx2() is true).
//
// One kernel shape serves both dtypes: 6 rows x 2 vectors of C held in 12 ymm accumulators,
// i.e. 6x16 for float32 (8 lanes) and 6x8 for float64 (4 lanes), as in BLIS's Haswell/Zen
// kernels. Per step p of the kc loop it loads one row of the packed B sliver (2 vectors, aligned),
// broadcasts the 6 packed A values of column p one at a time and issues 12 FMAs: 12 accumulators
// + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers. 12 independent FMA chains cover the
// FMA latency (4 cycles) times the 2 FMA ports with room to spare, and the loop does 2 vector
// loads + 6 broadcasts (8 loads) per 12 FMAs, within the 2-3 loads per cycle the cores sustain.
//
// Everything here has internal linkage (anonymous namespace) except the two entry points, so no
// AVX-compiled inline function can be picked by the linker for the portable code.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include "gemm.h"

namespace pydl::gemm_detail {
namespace {

struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int kLanes = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_load_ps(p); }
  static V loadu(const T* p) { return _mm256_loadu_ps(p); }
  static void storeu(T* p, V v) { _mm256_storeu_ps(p, v); }
  static void store(T* p, V v) { _mm256_store_ps(p, v); }
  static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V set1(T x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
};

struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int kLanes = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_load_pd(p); }
  static V loadu(const T* p) { return _mm256_loadu_pd(p); }
  static void storeu(T* p, V v) { _mm256_storeu_pd(p, v); }
  static void store(T* p, V v) { _mm256_store_pd(p, v); }
  static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V set1(T x) { return _mm256_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
};

template <class S>
inline void micro_6x2v(int64_t kc, const typename S::T* __restrict a,
                       const typename S::T* __restrict b, typename S::T alpha,
                       typename S::T beta, typename S::T* c, int64_t ldc, int64_t m_valid,
                       int64_t n_valid) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::kLanes;
  constexpr int MR = 6;
  constexpr int NR = 2 * L;

  // Bring the C tile toward L1 while the kc loop runs (it is read or written only at the end).
  for (int i = 0; i < MR && i < m_valid; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + NR - 1), _MM_HINT_T0);
  }

  V c00 = S::zero(), c01 = S::zero(), c10 = S::zero(), c11 = S::zero();
  V c20 = S::zero(), c21 = S::zero(), c30 = S::zero(), c31 = S::zero();
  V c40 = S::zero(), c41 = S::zero(), c50 = S::zero(), c51 = S::zero();

#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const V b0 = S::load(b);
    const V b1 = S::load(b + L);
    V ai = S::bcast(a + 0);
    c00 = S::fma(ai, b0, c00);
    c01 = S::fma(ai, b1, c01);
    ai = S::bcast(a + 1);
    c10 = S::fma(ai, b0, c10);
    c11 = S::fma(ai, b1, c11);
    ai = S::bcast(a + 2);
    c20 = S::fma(ai, b0, c20);
    c21 = S::fma(ai, b1, c21);
    ai = S::bcast(a + 3);
    c30 = S::fma(ai, b0, c30);
    c31 = S::fma(ai, b1, c31);
    ai = S::bcast(a + 4);
    c40 = S::fma(ai, b0, c40);
    c41 = S::fma(ai, b1, c41);
    ai = S::bcast(a + 5);
    c50 = S::fma(ai, b0, c50);
    c51 = S::fma(ai, b1, c51);
    a += MR;
    b += NR;
  }

  const V va = S::set1(alpha);
  if (m_valid == MR && n_valid == NR) {
    T* r0 = c;
    T* r1 = c + ldc;
    T* r2 = c + 2 * ldc;
    T* r3 = c + 3 * ldc;
    T* r4 = c + 4 * ldc;
    T* r5 = c + 5 * ldc;
    if (beta == T(0)) {
      S::storeu(r0, S::mul(va, c00));
      S::storeu(r0 + L, S::mul(va, c01));
      S::storeu(r1, S::mul(va, c10));
      S::storeu(r1 + L, S::mul(va, c11));
      S::storeu(r2, S::mul(va, c20));
      S::storeu(r2 + L, S::mul(va, c21));
      S::storeu(r3, S::mul(va, c30));
      S::storeu(r3 + L, S::mul(va, c31));
      S::storeu(r4, S::mul(va, c40));
      S::storeu(r4 + L, S::mul(va, c41));
      S::storeu(r5, S::mul(va, c50));
      S::storeu(r5 + L, S::mul(va, c51));
    } else {
      const V vb = S::set1(beta);
      S::storeu(r0, S::fma(vb, S::loadu(r0), S::mul(va, c00)));
      S::storeu(r0 + L, S::fma(vb, S::loadu(r0 + L), S::mul(va, c01)));
      S::storeu(r1, S::fma(vb, S::loadu(r1), S::mul(va, c10)));
      S::storeu(r1 + L, S::fma(vb, S::loadu(r1 + L), S::mul(va, c11)));
      S::storeu(r2, S::fma(vb, S::loadu(r2), S::mul(va, c20)));
      S::storeu(r2 + L, S::fma(vb, S::loadu(r2 + L), S::mul(va, c21)));
      S::storeu(r3, S::fma(vb, S::loadu(r3), S::mul(va, c30)));
      S::storeu(r3 + L, S::fma(vb, S::loadu(r3 + L), S::mul(va, c31)));
      S::storeu(r4, S::fma(vb, S::loadu(r4), S::mul(va, c40)));
      S::storeu(r4 + L, S::fma(vb, S::loadu(r4 + L), S::mul(va, c41)));
      S::storeu(r5, S::fma(vb, S::loadu(r5), S::mul(va, c50)));
      S::storeu(r5 + L, S::fma(vb, S::loadu(r5 + L), S::mul(va, c51)));
    }
    return;
  }

  // Edge tile: spill the scaled product, then update only the valid corner of C.
  alignas(32) T tile[MR * NR];
  S::store(tile + 0 * NR, S::mul(va, c00));
  S::store(tile + 0 * NR + L, S::mul(va, c01));
  S::store(tile + 1 * NR, S::mul(va, c10));
  S::store(tile + 1 * NR + L, S::mul(va, c11));
  S::store(tile + 2 * NR, S::mul(va, c20));
  S::store(tile + 2 * NR + L, S::mul(va, c21));
  S::store(tile + 3 * NR, S::mul(va, c30));
  S::store(tile + 3 * NR + L, S::mul(va, c31));
  S::store(tile + 4 * NR, S::mul(va, c40));
  S::store(tile + 4 * NR + L, S::mul(va, c41));
  S::store(tile + 5 * NR, S::mul(va, c50));
  S::store(tile + 5 * NR + L, S::mul(va, c51));
  for (int64_t i = 0; i < m_valid; ++i) {
    T* ci = c + i * ldc;
    const T* ti = tile + i * NR;
    if (beta == T(0)) {
      for (int64_t j = 0; j < n_valid; ++j) ci[j] = ti[j];
    } else {
      for (int64_t j = 0; j < n_valid; ++j) ci[j] = ti[j] + beta * ci[j];
    }
  }
}

// ---- Unpacked small-product path ---------------------------------------------------------------
// For products too small for packing to pay (see gemm.cpp's use_direct), tiles read op(A) and
// op(B) where they lie: B's rows are loaded as vectors (op(B) contiguous along n), A's values
// broadcast from any strides. Edge tiles get a kernel of their own size, M rows (1..6) by NV
// vectors, the last vector masked when n is not a multiple of the lanes, so a 4 x 8 corner
// costs 4 x 8 work, not a full 6 x 16 tile plus a scalar copy-out.

template <class S>
struct Masks;
template <>
struct Masks<F32> {
  using MI = __m256i;
  static MI first(int64_t count) {  // lanes [0, count) set, count in 1..8
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), idx);
  }
  static __m256 load(const float* p, MI m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, MI m, __m256 v) { _mm256_maskstore_ps(p, m, v); }
};
template <>
struct Masks<F64> {
  using MI = __m256i;
  static MI first(int64_t count) {  // count in 1..4
    const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), idx);
  }
  static __m256d load(const double* p, MI m) { return _mm256_maskload_pd(p, m); }
  static void store(double* p, MI m, __m256d v) { _mm256_maskstore_pd(p, m, v); }
};

// C[0:M, 0:n_valid] = alpha * op(A)[0:M, 0:kc] @ op(B)[0:kc, 0:n_valid] + beta * C, with
// op(A)(i, p) = a[i * a_rs + p * a_cs] and op(B)(p, j) = b[p * ldb + j]; n_valid in
// ((NV - 1) * L, NV * L], the last vector masked when MASKED. Never reads C when beta == 0, and
// never touches memory past row M - 1 of A and C or column n_valid - 1 of B and C.
template <class S, int M, int NV, bool MASKED>
void direct_tile(int64_t kc, const typename S::T* __restrict a, int64_t a_rs, int64_t a_cs,
                 const typename S::T* __restrict b, int64_t ldb, typename S::T alpha,
                 typename S::T beta, typename S::T* c, int64_t ldc, int64_t n_valid) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::kLanes;
  using MK = Masks<S>;
  const typename MK::MI mask = MK::first(MASKED ? n_valid - (NV - 1) * L : L);
  // Tiles with few accumulators (M * NV <= 6: narrow or short edge tiles, n <= 8 float32) would
  // wait on the FMA latency (4 cycles, 2 ports: 8 chains needed), so they keep two sets, one
  // for even and one for odd p, added at the end.
  constexpr int SETS = M * NV <= 6 ? 2 : 1;
  V acc[SETS][M][NV];
#pragma GCC unroll 2
  for (int s = 0; s < SETS; ++s)
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[s][i][v] = S::zero();
  const T* a1 = a + a_rs;
  const T* a2 = a + 2 * a_rs;
  const T* a3 = a + 3 * a_rs;
  const T* a4 = a + 4 * a_rs;
  const T* a5 = a + 5 * a_rs;
  // One step p into accumulator set s.
  auto step = [&](int s) {
    V bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      bv[v] = (MASKED && v == NV - 1) ? MK::load(b + v * L, mask) : S::loadu(b + v * L);
    const T* rows[6] = {a, a1, a2, a3, a4, a5};
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i) {
      const V ai = S::bcast(rows[i]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[s][i][v] = S::fma(ai, bv[v], acc[s][i][v]);
    }
    a += a_cs;
    a1 += a_cs;
    a2 += a_cs;
    a3 += a_cs;
    a4 += a_cs;
    a5 += a_cs;
    b += ldb;
  };
  int64_t p = 0;
  if constexpr (SETS == 2) {
    for (; p + 2 <= kc; p += 2) {
      step(0);
      step(1);
    }
  }
#pragma GCC unroll 2
  for (; p < kc; ++p) step(0);
  if constexpr (SETS == 2) {
#pragma GCC unroll 6
    for (int i = 0; i < M; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[0][i][v] = S::add(acc[0][i][v], acc[1][i][v]);
  }
  const V va = S::set1(alpha);
  const V vb = S::set1(beta);
#pragma GCC unroll 6
  for (int i = 0; i < M; ++i) {
    T* ci = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      V r = S::mul(va, acc[0][i][v]);
      if (MASKED && v == NV - 1) {
        if (beta != T(0)) r = S::fma(vb, MK::load(ci + v * L, mask), r);
        MK::store(ci + v * L, mask, r);
      } else {
        if (beta != T(0)) r = S::fma(vb, S::loadu(ci + v * L), r);
        S::storeu(ci + v * L, r);
      }
    }
  }
}

template <class S>
using DirectTileFn = void (*)(int64_t, const typename S::T*, int64_t, int64_t,
                              const typename S::T*, int64_t, typename S::T, typename S::T,
                              typename S::T*, int64_t, int64_t);

// table[M - 1][kind]: kind 0 = two full vectors, 1 = one full + one masked, 2 = one full,
// 3 = one masked.
template <class S, int M>
constexpr DirectTileFn<S> direct_row[4] = {
    direct_tile<S, M, 2, false>, direct_tile<S, M, 2, true>, direct_tile<S, M, 1, false>,
    direct_tile<S, M, 1, true>};

template <class S>
DirectTileFn<S> direct_kernel(int64_t rows, int64_t n_valid) {
  constexpr int L = S::kLanes;
  const int kind = n_valid == 2 * L ? 0 : n_valid > L ? 1 : n_valid == L ? 2 : 3;
  switch (rows) {
    case 1: return direct_row<S, 1>[kind];
    case 2: return direct_row<S, 2>[kind];
    case 3: return direct_row<S, 3>[kind];
    case 4: return direct_row<S, 4>[kind];
    case 5: return direct_row<S, 5>[kind];
    default: return direct_row<S, 6>[kind];
  }
}

// Row copies of B for gemm_direct (see there); grows on demand, never shrinks.
template <typename T>
T* copy_buffer(int64_t count) {
  struct Buffer {
    T* data = nullptr;
    int64_t capacity = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buf;
  if (count > buf.capacity) {
    std::free(buf.data);
    buf.data = nullptr;
    buf.capacity = 0;
    const size_t bytes = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
    buf.data = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (buf.data == nullptr) throw std::bad_alloc();
    buf.capacity = count;
  }
  return buf.data;
}

// The whole product, K-blocked so a kc x NR sliver of B (at most 16 KiB) stays in L1 while the
// row tiles of A pass over it; beta applies to the first K block only. B is read in place
// unless its row stride is a multiple of 512 bytes (128 float32, as in 128^3 or 64 x 2304 x
// 256) and its K block does not fit in 16 KiB: such rows all map onto 1/8 of L1's sets and
// evict each other every tile (measured: 0.8x the packed path), so the K block is first copied
// row by row to a buffer whose stride is not (a plain copy, much cheaper than packing).
template <class S>
void gemm_direct(int64_t m, int64_t n, int64_t k, typename S::T alpha, const typename S::T* a,
                 int64_t a_rs, int64_t a_cs, const typename S::T* b, int64_t ldb,
                 typename S::T beta, typename S::T* c, int64_t ldc) {
  using T = typename S::T;
  constexpr int64_t L = S::kLanes, MR = 6, NR = 2 * L, KC = 256;
  const int64_t k_blocks = (k + KC - 1) / KC;
  const int64_t kc_block = (k + k_blocks - 1) / k_blocks;
  const bool block_fits_l1 = kc_block * n * static_cast<int64_t>(sizeof(T)) <= 16384;
  const bool copy_b = !block_fits_l1 && (ldb * static_cast<int64_t>(sizeof(T))) % 512 == 0;
  int64_t ld_copy = (n + L - 1) / L * L;
  if ((ld_copy * static_cast<int64_t>(sizeof(T))) % 512 == 0) ld_copy += L;
  T* b_copy = copy_b ? copy_buffer<T>(kc_block * ld_copy) : nullptr;
  for (int64_t pc = 0; pc < k; pc += kc_block) {
    const int64_t kc = std::min(kc_block, k - pc);
    const T beta_block = pc == 0 ? beta : T(1);
    const T* a_block = a + pc * a_cs;
    const T* b_block = b + pc * ldb;
    int64_t ldb_block = ldb;
    if (copy_b) {
      for (int64_t p = 0; p < kc; ++p)
        std::copy(b_block + p * ldb, b_block + p * ldb + n, b_copy + p * ld_copy);
      b_block = b_copy;
      ldb_block = ld_copy;
    }
    auto tile = [&](int64_t ir, int64_t jr) {
      const int64_t rows = std::min(MR, m - ir), cols = std::min(NR, n - jr);
      direct_kernel<S>(rows, cols)(kc, a_block + ir * a_rs, a_rs, a_cs, b_block + jr, ldb_block,
                                   alpha, beta_block, c + ir * ldc + jr, ldc, cols);
    };
    // When all of a K block of B fits in L1, walk C by rows of tiles so each 6-row strip of A
    // is read once (tall products such as im2col's 4096 x 27 @ 27 x 64); otherwise by columns
    // of tiles so the B sliver is what stays in L1.
    if (block_fits_l1) {
      for (int64_t ir = 0; ir < m; ir += MR)
        for (int64_t jr = 0; jr < n; jr += NR) tile(ir, jr);
    } else {
      for (int64_t jr = 0; jr < n; jr += NR)
        for (int64_t ir = 0; ir < m; ir += MR) tile(ir, jr);
    }
  }
}

// ---- Transposing packs ------------------------------------------------------------------------
// The driver's portable packing handles sources that are contiguous across a sliver (a row copy
// per step); these handle the other common case, R lines each contiguous along p (op(A) = A
// stored row-major, op(B) = B^T as in x @ W^T), with in-register transposes instead of R
// scalar loads and stores per step.

// 8 x 8 float transpose: on return r[j] holds lane j of every input, in order.
inline void transpose8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// 4 x 4 double transpose, same convention.
inline void transpose4x4(__m256d r[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

}  // namespace

void sgemm_pack_lines6_avx2(float* dst, const float* src, int64_t ld, int64_t kc) {
  // 8 steps at a time: 6 lines (+2 zero lines) x 8 floats, transposed to 8 steps x 6 values.
  // Steps are 6 floats apart, so each 8-lane store overlaps the next step, which overwrites the
  // 2 extra lanes; the last step of a group stores 6 lanes only (masked), never past the sliver.
  const __m256i first6 = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    __m256 r[8];
    for (int i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(src + i * ld + p);
    r[6] = r[7] = _mm256_setzero_ps();
    transpose8x8(r);
    float* d = dst + p * 6;
    for (int q = 0; q < 7; ++q) _mm256_storeu_ps(d + q * 6, r[q]);
    _mm256_maskstore_ps(d + 7 * 6, first6, r[7]);
  }
  for (; p < kc; ++p)
    for (int i = 0; i < 6; ++i) dst[p * 6 + i] = src[i * ld + p];
}

void sgemm_pack_lines16_avx2(float* dst, const float* src, int64_t ld, int64_t kc) {
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    for (int half = 0; half < 2; ++half) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (half * 8 + i) * ld + p);
      transpose8x8(r);
      for (int q = 0; q < 8; ++q) _mm256_store_ps(dst + (p + q) * 16 + half * 8, r[q]);
    }
  }
  for (; p < kc; ++p)
    for (int i = 0; i < 16; ++i) dst[p * 16 + i] = src[i * ld + p];
}

void dgemm_pack_lines6_avx2(double* dst, const double* src, int64_t ld, int64_t kc) {
  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    __m256d r[4];
    for (int i = 0; i < 4; ++i) r[i] = _mm256_loadu_pd(src + i * ld + p);
    transpose4x4(r);
    const __m256d l4 = _mm256_loadu_pd(src + 4 * ld + p), l5 = _mm256_loadu_pd(src + 5 * ld + p);
    const __m256d lo = _mm256_unpacklo_pd(l4, l5);  // (4,p) (5,p) (4,p+2) (5,p+2)
    const __m256d hi = _mm256_unpackhi_pd(l4, l5);  // (4,p+1) (5,p+1) (4,p+3) (5,p+3)
    double* d = dst + p * 6;
    for (int q = 0; q < 4; ++q) _mm256_storeu_pd(d + q * 6, r[q]);
    _mm_storeu_pd(d + 0 * 6 + 4, _mm256_castpd256_pd128(lo));
    _mm_storeu_pd(d + 1 * 6 + 4, _mm256_castpd256_pd128(hi));
    _mm_storeu_pd(d + 2 * 6 + 4, _mm256_extractf128_pd(lo, 1));
    _mm_storeu_pd(d + 3 * 6 + 4, _mm256_extractf128_pd(hi, 1));
  }
  for (; p < kc; ++p)
    for (int i = 0; i < 6; ++i) dst[p * 6 + i] = src[i * ld + p];
}

void dgemm_pack_lines8_avx2(double* dst, const double* src, int64_t ld, int64_t kc) {
  int64_t p = 0;
  for (; p + 4 <= kc; p += 4) {
    for (int half = 0; half < 2; ++half) {
      __m256d r[4];
      for (int i = 0; i < 4; ++i) r[i] = _mm256_loadu_pd(src + (half * 4 + i) * ld + p);
      transpose4x4(r);
      for (int q = 0; q < 4; ++q) _mm256_store_pd(dst + (p + q) * 8 + half * 4, r[q]);
    }
  }
  for (; p < kc; ++p)
    for (int i = 0; i < 8; ++i) dst[p * 8 + i] = src[i * ld + p];
}

void sgemm_micro_6x16_avx2(int64_t kc, const float* a_panel, const float* b_panel, float alpha,
                           float beta, float* c, int64_t ldc, int64_t m_valid, int64_t n_valid) {
  micro_6x2v<F32>(kc, a_panel, b_panel, alpha, beta, c, ldc, m_valid, n_valid);
}

void sgemm_direct_avx2(int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                       int64_t a_rs, int64_t a_cs, const float* b, int64_t ldb, float beta,
                       float* c, int64_t ldc) {
  gemm_direct<F32>(m, n, k, alpha, a, a_rs, a_cs, b, ldb, beta, c, ldc);
}

void dgemm_direct_avx2(int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                       int64_t a_rs, int64_t a_cs, const double* b, int64_t ldb, double beta,
                       double* c, int64_t ldc) {
  gemm_direct<F64>(m, n, k, alpha, a, a_rs, a_cs, b, ldb, beta, c, ldc);
}

void dgemm_micro_6x8_avx2(int64_t kc, const double* a_panel, const double* b_panel, double alpha,
                          double beta, double* c, int64_t ldc, int64_t m_valid, int64_t n_valid) {
  micro_6x2v<F64>(kc, a_panel, b_panel, alpha, beta, c, ldc, m_valid, n_valid);
}

}  // namespace pydl::gemm_detail
