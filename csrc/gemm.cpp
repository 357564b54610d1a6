// Packed, cache-blocked GEMM (the BLIS algorithm) with a run-time choice of micro-kernel.
//
// The five loops around the micro-kernel, outermost first (op(A) is m x k, op(B) is k x n):
//   jc: n in steps of NC     -- one column panel of C and B
//   pc: k in steps of KC     -- pack op(B)[pc:pc+KC, jc:jc+NC] into Bp (lives in L3)
//   ic: m in steps of MC     -- pack op(A)[ic:ic+MC, pc:pc+KC] into Ap (lives in L2)
//   jr: NC in steps of NR    -- one kc x NR sliver of Bp (stays in L1 across the ir loop)
//   ir: MC in steps of MR    -- micro-kernel: MR x NR tile of C += Ap sliver @ Bp sliver
// Packing copies each operand into the exact order the micro-kernel reads it (unit stride,
// aligned, zero-padded to whole MR x NR tiles), so transposed and strided inputs cost nothing
// extra beyond the copy, edges need no special loop, and the kernel's inner loop reads two
// unit-stride streams that stay in L1/L2. beta is applied by the first pc block only (later ones accumulate, beta = 1),
// alpha when a tile is written back.
//
// Exception (AVX-512 only): when op(A) is row-major (contiguous along k) and the product (or a
// thread's rectangle of it) has at most kDirectAMaxElements = 2^20 elements of op(A), the
// kernel reads A in place, 14 rows at a time, and only B is packed. Packing A costs a
// transpose per element, which for small or skinny products is a large share of the work
// (64^3 spent ~12% of its time there); measured on the development VM, reading A in place ran
// float32/float64 64^3 22-24% faster, 128^3 8-14%, 4096x27x64 (2 threads) 325 instead of 280
// GFLOP/s, 64x2304x256 300 instead of 250, and 2048^3 no differently with a larger limit, which
// is kept at 2^20 so that long strided rows of big A blocks keep the packed, TLB-friendly form.
//
// Blocking (AVX2+FMA, float32: MR x NR = 6 x 16, MC = 144, KC = 256, NC = 4080; float64:
// 6 x 8, MC = 72, KC = 256, NC = 4080), chosen for the target machine's per-core 32 KiB L1d,
// 512 KiB L2 and shared 32 MiB L3 (BLIS uses the same for Zen 3):
//   L1: the kc x NR sliver of B is KC*NR*sizeof(T) = 16 KiB (both dtypes), half of L1d, and is
//       reused for all MC/MR slivers of A streaming through the other half (6 KiB each in fp32).
//   L2: the MC x KC block of A is 144 KiB (fp32: 144*256*4; fp64: 72*256*8), under a third of
//       L2, leaving room for the B slivers and C tiles passing through.
//   L3: the KC x NC panel of B is 4 MiB (fp32) / 8 MiB (fp64) per thread; two threads fit in a
//       32 MiB L3 together with their A blocks.
// Blocks are balanced (k = 300 is split 150 + 150, not 256 + 44) so no block is needlessly thin.
// On the development VM (48 KiB L1d, 2 MiB L2 per core) MC from 96 to 288 and KC from 256 to
// 512 all ran within 2% of each other (single thread ~118 GFLOP/s float32, 96% of AVX2 peak).
//
// Blocking (AVX-512, gemm_avx512.cpp; float32: MR x NR = 14 x 32, MC = 168, KC = 256,
// NC = 4064; float64: 14 x 16, MC = 84, KC = 256, NC = 4064), for the AVX-512 machines in use:
// Sapphire Rapids class, 48 KiB L1d and 2 MiB L2 per core (Skylake-SP and Zen 4 have 32 KiB /
// 1 MiB, for which the same blocks still fit L2 and leave the B sliver in L1):
//   MR x NR: 28 zmm accumulators + 2 B vectors + 1 broadcast of the 32 registers; NR = 2
//       vectors so each broadcast A value feeds 2 FMAs (BLIS's skx kernels, transposed).
//   L1: the kc x NR sliver of B is KC*NR*sizeof(T) = 32 KiB (both dtypes), reused by all MC/MR
//       slivers of A, which stream from L2 at 14 values per 14 cycles (fp32) -- a sliver
//       needs only to stay ahead of the kernel, not in L1 as a whole.
//   L2: the MC x KC block of A is 168 KiB (fp32: 168*256*4; fp64: 84*256*8), MC a multiple of
//       MR, under a tenth of L2: the B panel's slivers (KC*NC) pass through L2 too, and for
//       n up to ~1500 (fp32) the whole panel stays there.
//   L3: the KC x NC panel of B is 4 MiB (fp32) / 8 MiB (fp64) per thread; NC = 4064 = 127 * 32
//       keeps AVX2's panel budget in a multiple of NR.
//   Measured on the 2-core development VM (single thread, 1024^3): KC 128..512 x MC 84..336
//   all within the run-to-run noise (~5%) of each other, 180-190 GFLOP/s float32 (~80% of the
//   237 GFLOP/s FMA-only peak; the kernel alone on L1/L2-resident panels reaches ~210-217).
//   So the values are the middle of the flat region, chosen for the reuse reasoning above.
//
// Threads: C is cut into one rectangle per thread (a tm x tn grid of whole micro-tiles, chosen
// by choose_grid to balance multiply-adds against the packing each thread repeats), and each
// thread runs the serial loops above on its rectangle, packing its own rows of op(A) and
// columns of op(B) into its own buffers. Packing the shared operand once and dealing out blocks
// of C dynamically (what this file did before) packs nothing twice, but on the development VM
// (Sapphire Rapids class, 2 cores) every thread then reads panels that the other core wrote,
// and those cross-core reads cost more than the repeated packing: measured with 2 threads,
// private rectangles ran float32 256^3 at 290-315 GFLOP/s instead of 260-270, 512^3 at 310-330
// instead of 270-305, 1024^3 at 320-330 instead of 290-320, 2048^3 at 335-354 instead of
// 284-321, 4096x27x64 at 277-298 instead of 206-228 and 64x2304x256 at 250-264 instead of
// 213-215 (AVX-512; the AVX2 path gained alike: 512^3 220-225 instead of 192-197), float64
// 512^3-2048^3 by 8-15%. The repeated packing is at most a few percent of the work once a
// product is big enough to be threaded at all (min_macs_per_thread).
// The rectangles of a split along one side are further cut into a few pieces per thread that
// threads take on demand, so a worker that starts late shares the work instead of taking a
// whole half (choose_pieces). Sharing one packed B panel among the threads was measured again
// on the target Zen 3 (2 cores, SCHED_FIFO to keep other processes off): 20-25% more CPU time
// than private rectangles for 256 x 784 x 256 A @ B^T and 256 x 1024 x 1024, so it stays out.
// Which kernels run (unpacked, A in place, packed) is decided once for the whole product
// (choose_paths), so a thread's share never picks other kernels than one thread would.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include "cpu_features.h"
#include "parallel.h"

namespace pydl {
namespace {

using gemm_detail::MicroKernel;

// ---- Blocking parameters and kernel choice ----------------------------------------------------

using gemm_detail::PackLinesFn;

// Packs a block into R x kc slivers (see pack_block below); R = MR for A, NR for B.
template <typename T>
using PackFn = void (*)(T* dst, const T* src, int64_t rs, int64_t cs, int64_t extent,
                        int64_t kc, PackLinesFn<T> pack_lines);

template <typename T, int R>
void pack_block(T* __restrict dst, const T* __restrict src, int64_t rs, int64_t cs,
                int64_t extent, int64_t kc, PackLinesFn<T> pack_lines);

template <typename T>
struct Blocking {
  int64_t mr, nr;      // micro-tile computed by `micro`
  int64_t mc, kc, nc;  // cache blocks (mc multiple of mr, nc multiple of nr)
  MicroKernel<T> micro;
  PackFn<T> pack_a, pack_b;  // R = mr and R = nr
  // SIMD packs of a full sliver whose lines are contiguous along k, or nullptr.
  PackLinesFn<T> pack_lines_a, pack_lines_b;
  // Work (in multiply-adds) each thread must get before a product is split over threads. The
  // pool (parallel.h) wakes sleeping workers through a condition variable; on the development
  // VM a parallel_for costs ~30 us before the worker starts and ~30 us more before the caller
  // wakes at the end (workers spin for a while after each job, so back-to-back calls pay
  // less). A share must be worth well over 60 us: measured there (AVX2, float32), two threads
  // run 160^3 (4.1M multiply-adds) at 0.76x the speed of one, 192^3 (7.1M) at 0.96x,
  // 4096x27x64 (7.1M) at 1.25x and 224^3 (11.2M) at 1.15x; so two threads from 7M (3.5M
  // each), half that for float64, whose multiply-adds take twice as long.
  int64_t min_macs_per_thread;
  // The micro-kernel reading op(A) unpacked, for small products (see use_direct_a), or nullptr.
  // AVX2 has none: its unpacked tiles read A in place 1.07-1.2x slower than the packed path
  // ran (192^3, 224^3, 250^3 with B^T, 100 x 300 x 200, 64 x 1000 x 128 on 1 thread; 256 x 784
  // x 1024, 192 x 500 x 300 (1.4x) and 256 x 1000 x 100 on 2), measured in one process,
  // alternating, with other processes held off (SCHED_FIFO); 1.0x for 128-256 x 784 x 256 and
  // 64 x 2304 x 256. The unpacked small-product path (direct) still reads A in place.
  gemm_detail::DirectAMicroKernel<T> micro_direct_a = nullptr;
  // The unpacked small-product path (see use_direct), or nullptr.
  gemm_detail::DirectFn<T> direct = nullptr;
};

// Portable micro-kernel: plain C++ the compiler vectorises with the baseline ISA (SSE2 on
// x86-64). MR x NR is sized so the accumulators fit in 16 xmm registers: 4 x 8 floats or 4 x 4
// doubles is 8 registers, plus one B row and a broadcast.
template <typename T, int MR, int NR>
void micro_portable(int64_t kc, const T* __restrict a, const T* __restrict b, T alpha, T beta,
                    T* c, int64_t ldc, int64_t m_valid, int64_t n_valid) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
    b += NR;
  }
  for (int64_t i = 0; i < m_valid; ++i) {
    T* ci = c + i * ldc;
    if (beta == T(0)) {
      for (int64_t j = 0; j < n_valid; ++j) ci[j] = alpha * acc[i][j];
    } else {
      for (int64_t j = 0; j < n_valid; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
  }
}

template <typename T>
Blocking<T> blocking();

#ifdef PYDL_HAVE_AVX512_KERNELS
// AVX-512 blocking: see the comment at the top. The thread thresholds stay AVX2's: an
// AVX-512 multiply-add is faster, but the shapes near the threshold (4096x27x64, 64x2304x256)
// spend a large share of their time packing and writing C, which threads split just as well.
constexpr int64_t kAvx512SgemmMC = 168, kAvx512SgemmKC = 256, kAvx512SgemmNC = 4064;
constexpr int64_t kAvx512DgemmMC = 84, kAvx512DgemmKC = 256, kAvx512DgemmNC = 4064;
constexpr int64_t kAvx512SgemmMinMacs = 3500000, kAvx512DgemmMinMacs = 1750000;
#endif

template <>
Blocking<float> blocking<float>() {
#ifdef PYDL_HAVE_AVX512_KERNELS
  if (use_avx512())
    return {gemm_detail::kAvx512SgemmMR, gemm_detail::kAvx512SgemmNR, kAvx512SgemmMC,
            kAvx512SgemmKC, kAvx512SgemmNC, gemm_detail::sgemm_micro_14x32_avx512,
            gemm_detail::sgemm_pack_a_avx512, gemm_detail::sgemm_pack_b_avx512, nullptr, nullptr,
            kAvx512SgemmMinMacs, gemm_detail::sgemm_micro_14x32_direct_a_avx512};
#endif
  if (use_avx2())
    return {gemm_detail::kAvx2SgemmMR, gemm_detail::kAvx2SgemmNR, 144, 256, 4080,
            gemm_detail::sgemm_micro_6x16_avx2, pack_block<float, gemm_detail::kAvx2SgemmMR>,
            pack_block<float, gemm_detail::kAvx2SgemmNR>, gemm_detail::sgemm_pack_lines6_avx2,
            gemm_detail::sgemm_pack_lines16_avx2, 3500000,
            nullptr, gemm_detail::sgemm_direct_avx2};
  return {4, 8, 128, 256, 4080, micro_portable<float, 4, 8>, pack_block<float, 4>,
          pack_block<float, 8>, nullptr, nullptr, 250000};
}

template <>
Blocking<double> blocking<double>() {
#ifdef PYDL_HAVE_AVX512_KERNELS
  if (use_avx512())
    return {gemm_detail::kAvx512DgemmMR, gemm_detail::kAvx512DgemmNR, kAvx512DgemmMC,
            kAvx512DgemmKC, kAvx512DgemmNC, gemm_detail::dgemm_micro_14x16_avx512,
            gemm_detail::dgemm_pack_a_avx512, gemm_detail::dgemm_pack_b_avx512, nullptr, nullptr,
            kAvx512DgemmMinMacs, gemm_detail::dgemm_micro_14x16_direct_a_avx512};
#endif
  if (use_avx2())
    return {gemm_detail::kAvx2DgemmMR, gemm_detail::kAvx2DgemmNR, 72, 256, 4080,
            gemm_detail::dgemm_micro_6x8_avx2, pack_block<double, gemm_detail::kAvx2DgemmMR>,
            pack_block<double, gemm_detail::kAvx2DgemmNR>, gemm_detail::dgemm_pack_lines6_avx2,
            gemm_detail::dgemm_pack_lines8_avx2, 1750000,
            nullptr, gemm_detail::dgemm_direct_avx2};
  return {4, 4, 64, 256, 4080, micro_portable<double, 4, 4>, pack_block<double, 4>,
          pack_block<double, 4>, nullptr, nullptr, 125000};
}

// ---- Packing ------------------------------------------------------------------------------------

// Grows on demand and is never shrunk, so steady-state calls allocate nothing. Two per thread
// (A block and B panel); the pool's workers live as long as the pool, and so do their buffers.
class PackBuffer {
 public:
  static constexpr size_t kHugePage = size_t(2) << 20;
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  ~PackBuffer() { std::free(data_); }

  template <typename T>
  T* get(int64_t count) {
    size_t bytes = static_cast<size_t>(count) * sizeof(T);
    if (bytes > capacity_) {
      std::free(data_);
      data_ = nullptr;
      capacity_ = 0;
      // Buffers of 2 MiB and more are 2 MiB-aligned and, on Linux, asked to be backed by huge
      // pages (transparent huge pages are often madvise-only): a packed 2048 x 2048 operand
      // spans 4096 small pages, and the kernels' reads of it would miss the TLB.
      const size_t align = bytes >= kHugePage ? kHugePage : 64;
      size_t rounded = (bytes + align - 1) / align * align;  // aligned_alloc: multiple of align
      data_ = std::aligned_alloc(align, rounded);
      if (data_ == nullptr) throw std::bad_alloc();
#ifdef __linux__
      if (align == kHugePage) madvise(data_, rounded, MADV_HUGEPAGE);  // a hint: errors ignored
#endif
      capacity_ = rounded;
    }
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

thread_local PackBuffer tls_pack_a;
thread_local PackBuffer tls_pack_b;

// Packs an extent x kc block as consecutive R x kc slivers: sliver q holds rows [q*R, q*R + R)
// with dst[q*R*kc + p*R + i] = src[(q*R + i) * rs + p * cs], zero-padded past `extent`. For A,
// i runs over rows of op(A) and p over its columns; for B, i over columns of op(B), p over rows.
// R is a template argument so the per-step copy of R values is unrolled straight-line code.
template <typename T, int R>
void pack_block(T* __restrict dst, const T* __restrict src, int64_t rs, int64_t cs,
                int64_t extent, int64_t kc, PackLinesFn<T> pack_lines) {
  const int64_t full = extent / R, tail = extent % R;
  if (rs == 1) {
    // A step's values are contiguous across all slivers (op(B) row-major, or op(A) stored
    // transposed): stream each source line once, left to right, dealing it out to the slivers.
    for (int64_t p = 0; p < kc; ++p) {
      const T* s = src + p * cs;
      T* d = dst + p * R;
      for (int64_t q = 0; q < full; ++q, s += R, d += R * kc)
        for (int i = 0; i < R; ++i) d[i] = s[i];
      if (tail) {
        int i = 0;
        for (; i < tail; ++i) d[i] = s[i];
        for (; i < R; ++i) d[i] = T(0);
      }
    }
    return;
  }
  // Otherwise each sliver reads R source lines (contiguous along p when cs == 1).
  if (cs == 1 && pack_lines != nullptr) {
    for (int64_t q = 0; q < full; ++q) pack_lines(dst + q * R * kc, src + q * R * rs, rs, kc);
  } else {
    for (int64_t q = 0; q < full; ++q) {
      const T* s = src + q * R * rs;
      T* d = dst + q * R * kc;
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < R; ++i) d[p * R + i] = s[i * rs + p * cs];
    }
  }
  if (tail) {
    const T* s = src + full * R * rs;
    T* d = dst + full * R * kc;
    for (int64_t p = 0; p < kc; ++p) {
      int i = 0;
      for (; i < tail; ++i) d[p * R + i] = s[i * rs + p * cs];
      for (; i < R; ++i) d[p * R + i] = T(0);
    }
  }
}

// ---- Serial driver --------------------------------------------------------------------------

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Block size for a dimension of `extent` split into equal blocks of at most `max_block`,
// rounded up to a multiple of `unit`.
int64_t balanced_block(int64_t extent, int64_t max_block, int64_t unit) {
  int64_t blocks = ceil_div(extent, max_block);
  return std::min(max_block, round_up(ceil_div(extent, blocks), unit));
}

// Largest op(A) (elements) that gemm_serial reads unpacked when the kernel can.
constexpr int64_t kDirectAMaxElements = int64_t(1) << 20;

// op(A)(i, p) = a[i * a_rs + p * a_cs], op(B)(p, j) = b[p * b_rs + j * b_cs]; m, n, k > 0.
// Products up to this many multiply-adds may skip packing entirely (see use_direct).
constexpr double kDirectMaxMacs = 4.0e6;

// Whether gemm_serial runs the unpacked path (bk.direct): op(B) must be contiguous along n, and
// the product small enough that packing is a real share of it. Packing both operands costs
// about as much as 5-10% of the multiply-adds of a 64^3 product and 40% of LeNet's 576 x 25 x 6,
// and the packed kernel computes whole 6 x 16 tiles at the edges (64 x 400 x 120: 10% of its
// work is padding). Measured (AVX2, 1 thread, CPU time, loaded 2-core EPYC): the unpacked path
// ran 64^3 1.2x, 100^3 1.2x, 64 x 400 x 120 1.15x, 64 x 150 x 16 1.45x and 576 x 25 x 6 1.5x
// the packed one, 128^3..256^3 and 64 x 2304 x 256 the same within noise, 512^3 0.9x; in a
// sweep against NumPy/torch 192^3 and 200 x 300 x 100 (7e6 and 6e6) ran 0.85-0.87x of the
// best peer unpacked, 0.99x packed, so the limit is 4e6 (64 x 400 x 120 is 3.1e6). Short C
// (at most 32 rows) unpacked at any size was tried too: with other processes held off
// (SCHED_FIFO, wall medians) 8 x 4096 x 4096 ran 1.25x, but 16 x 2304 x 512, 16 x 784 x 1024
// and 24 x 2304 x 512 (A transposed) 0.77-0.89x the packed path on 1 thread, 0.8-1.0x on 2.
template <typename T>
bool use_direct(const Blocking<T>& bk, int64_t m, int64_t n, int64_t k, int64_t b_cs) {
  return bk.direct != nullptr && b_cs == 1 &&
         static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) <=
             kDirectMaxMacs;
}

// Small products with op(A) contiguous along k read A in place (see the top of the file): the
// transposing pack of A is then a large share of their work, and their A blocks are small
// enough for the kernel's strided rows per tile to stay cached across the slivers of B. Bigger
// ones pack A as usual.
template <typename T>
bool use_direct_a(const Blocking<T>& bk, int64_t m, int64_t k, int64_t a_cs) {
  return bk.micro_direct_a != nullptr && a_cs == 1 && m <= kDirectAMaxElements / k;
}

// Which kernels compute a product. Decided once from the whole product's shape and passed to
// every thread's part of it: the unpacked kernels treat short edge tiles differently from the
// packed ones (two accumulator sets, so another order of additions), and a choice made per
// thread from the size of its part would make the bits depend on the thread count.
struct Paths {
  bool direct = false;    // the unpacked small-product path (bk.direct)
  bool direct_a = false;  // packed B, op(A) read in place (bk.micro_direct_a)
};

template <typename T>
Paths choose_paths(const Blocking<T>& bk, int64_t m, int64_t n, int64_t k, int64_t a_rs,
                   int64_t a_cs, int64_t b_cs) {
  Paths paths;
  paths.direct = use_direct(bk, m, n, k, b_cs);
  paths.direct_a = !paths.direct && use_direct_a(bk, m, k, a_cs);
  return paths;
}

template <typename T>
void gemm_serial(const Blocking<T>& bk, const Paths& paths, int64_t m, int64_t n, int64_t k,
                 T alpha, const T* a, int64_t a_rs, int64_t a_cs, const T* b, int64_t b_rs,
                 int64_t b_cs, T beta, T* c, int64_t ldc) {
  if (paths.direct) {
    bk.direct(m, n, k, alpha, a, a_rs, a_cs, b, b_rs, beta, c, ldc);
    return;
  }
  const int64_t mr = bk.mr, nr = bk.nr;
  const int64_t nc_block = balanced_block(n, bk.nc, nr);
  const int64_t kc_block = balanced_block(k, bk.kc, 1);
  const int64_t mc_block = balanced_block(m, bk.mc, mr);
  const bool direct_a = paths.direct_a;
  T* bp = tls_pack_b.get<T>(kc_block * nc_block);
  T* ap = direct_a ? nullptr : tls_pack_a.get<T>(mc_block * kc_block);

  for (int64_t jc = 0; jc < n; jc += nc_block) {
    const int64_t nc = std::min(nc_block, n - jc);
    for (int64_t pc = 0; pc < k; pc += kc_block) {
      const int64_t kc = std::min(kc_block, k - pc);
      const T beta_block = pc == 0 ? beta : T(1);
      const T* b_block = b + pc * b_rs + jc * b_cs;
      bk.pack_b(bp, b_block, b_cs, b_rs, nc, kc, bk.pack_lines_b);

      for (int64_t ic = 0; ic < m; ic += mc_block) {
        const int64_t mc = std::min(mc_block, m - ic);
        const T* a_block = a + ic * a_rs + pc * a_cs;
        if (direct_a) {
          for (int64_t jr = 0; jr < nc; jr += nr) {
            const int64_t n_valid = std::min(nr, nc - jr);
            for (int64_t ir = 0; ir < mc; ir += mr)
              bk.micro_direct_a(kc, a_block + ir * a_rs, a_rs, bp + jr * kc, alpha, beta_block,
                                c + (ic + ir) * ldc + jc + jr, ldc, std::min(mr, mc - ir),
                                n_valid);
          }
          continue;
        }
        bk.pack_a(ap, a_block, a_rs, a_cs, mc, kc, bk.pack_lines_a);

        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t n_valid = std::min(nr, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += mr) {
            bk.micro(kc, ap + ir * kc, bp + jr * kc, alpha, beta_block,
                     c + (ic + ir) * ldc + jc + jr, ldc, std::min(mr, mc - ir), n_valid);
          }
        }
      }
    }
  }
}

// C = beta * C, the whole product when k == 0 or alpha == 0 (A and B are then not read).
template <typename T>
void scale_c(int64_t m, int64_t n, T beta, T* c, int64_t ldc) {
  if (beta == T(1)) return;
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    if (beta == T(0)) {
      for (int64_t j = 0; j < n; ++j) ci[j] = T(0);
    } else {
      for (int64_t j = 0; j < n; ++j) ci[j] *= beta;
    }
  }
}

// ---- Threading ------------------------------------------------------------------------------

struct Grid {
  int64_t tm = 1, tn = 1;
};

// Picks the tm x tn split of C (tm * tn <= threads) with the least estimated time per thread:
// its multiply-adds at `macs_per_unit` per unit of time, plus one unit per packed element (a
// thread packs its rows of op(A) once per NC panel and its columns of op(B) once).
template <typename T>
Grid choose_grid(const Blocking<T>& bk, int64_t m, int64_t n, int64_t k, int threads) {
  // Proportional to the vector width: NR is two vectors in the SIMD kernels (AVX2 float32:
  // 8 multiply-adds per unit, AVX-512: 16).
  const double macs_per_unit = static_cast<double>(bk.nr) / 2.0;
  const int64_t units_m = ceil_div(m, bk.mr), units_n = ceil_div(n, bk.nr);
  Grid best;
  double best_cost = -1;
  for (int64_t t = threads; t >= 1; --t) {
    for (int64_t tm = 1; tm <= t; ++tm) {
      if (t % tm != 0) continue;
      const int64_t tn = t / tm;
      if (tm > units_m || tn > units_n) continue;
      const double rows = static_cast<double>(ceil_div(units_m, tm) * bk.mr);
      const double cols = static_cast<double>(ceil_div(units_n, tn) * bk.nr);
      const double panels = static_cast<double>(ceil_div(static_cast<int64_t>(cols), bk.nc));
      const double cost = rows * cols * static_cast<double>(k) / macs_per_unit +
                          (rows * panels + cols) * static_cast<double>(k);
      if (best_cost < 0 || cost < best_cost) {
        best_cost = cost;
        best.tm = tm;
        best.tn = tn;
      }
    }
    if (best_cost >= 0) break;  // prefer using every thread that has work
  }
  return best;
}

// Cuts a one-dimensional split (grid tm x 1 or 1 x tn, one rectangle per thread) into up to
// kMaxPiecesPerThread pieces per thread, handed out on demand. The pool's worker often starts
// late: on the shared 2-core EPYC, a thread trace of 256 x 784 x 256 inside a training step
// showed it joining 0.5-1.3 ms after the caller, or not at all, against a 0.6 ms share. With
// one rectangle each, a worker that starts at t < T/2 then finishes at t + T/2 while the caller
// waits; with pieces, the two end together near (T + t) / 2. A piece repeats the packing of the
// operand it shares with the others (op(A) rows along n unless read in place, op(B) along m),
// so there are only as many pieces as keep that repeated packing within ~3% of the product
// (estimated as in choose_grid); each piece is at least 2 tiles along n or 4 along m (a sliver
// of B serves 4 tiles of rows). Measured with the other helpers' processes held off (SCHED_FIFO,
// 2 threads, medians): 256 x 784 x 256 A @ B^T, A read in place, ran the same within noise as
// one rectangle per thread with 2, 4 or 8 pieces per thread; with op(A) packed 8 pieces per
// thread cost 20% (256 x 256 x 784), 2 nothing measurable. Pieces are whole tiles, so every
// element of C is computed by the same kernel in the same order whatever the split: results
// do not depend on the thread count.
constexpr int64_t kMaxPiecesPerThread = 8;

template <typename T>
Grid choose_pieces(const Blocking<T>& bk, const Paths& paths, int64_t m, int64_t n, int64_t k,
                   int threads, Grid grid) {
  if (paths.direct || (grid.tm > 1 && grid.tn > 1) || grid.tm * grid.tn != threads) return grid;
  const bool along_n = grid.tn > 1;
  const double macs = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const double mac_cost = macs / (static_cast<double>(bk.nr) / 2.0);  // choose_grid's units
  // Along n every piece reads all of op(A): packs it, or, read in place, streams it from L3
  // (counted as a quarter of a pack: a read without the transposed write).
  const double repeated = along_n ? static_cast<double>(m) * static_cast<double>(k) *
                                        (paths.direct_a ? 0.25 : 1.0)
                                  : static_cast<double>(k) * static_cast<double>(n);
  const int64_t units = along_n ? ceil_div(n, bk.nr) / 2 : ceil_div(m, bk.mr) / 4;
  const int64_t per_thread = std::min<int64_t>(
      kMaxPiecesPerThread, 1 + static_cast<int64_t>(0.03 * mac_cost / (threads * repeated)));
  const int64_t pieces = std::max<int64_t>(threads, std::min(per_thread * threads, units));
  if (along_n)
    grid.tn = pieces;
  else
    grid.tm = pieces;
  return grid;
}

// Hands out items [0, n_items) to whichever thread asks next. parallel_for splits its range
// statically, so each of its `threads` chunks runs this loop instead: a worker that the pool
// wakes late simply takes fewer items, and the caller never waits for it to start.
template <typename Fn>
void for_each_item_dynamic(int threads, int64_t n_items, const Fn& item_fn) {
  std::atomic<int64_t> next{0};
  parallel_for(threads, 1, [&](int64_t, int64_t) {
    for (int64_t item = next.fetch_add(1, std::memory_order_relaxed); item < n_items;
         item = next.fetch_add(1, std::memory_order_relaxed))
      item_fn(item);
  });
}

template <typename T>
void gemm_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
               int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument("gemm: negative size m=" + std::to_string(m) +
                                " n=" + std::to_string(n) + " k=" + std::to_string(k));
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == T(0)) {
    scale_c(m, n, beta, c, ldc);
    return;
  }
  const int64_t a_rs = trans_a ? 1 : lda, a_cs = trans_a ? lda : 1;
  const int64_t b_rs = trans_b ? 1 : ldb, b_cs = trans_b ? ldb : 1;
  const Blocking<T> bk = blocking<T>();
  const Paths paths = choose_paths(bk, m, n, k, a_rs, a_cs, b_cs);

  int threads = in_parallel_region() ? 1 : num_threads();
  // In double: a product of three sizes can overflow int64 when some operands are stride-0 views.
  const double macs = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  threads = static_cast<int>(std::min<double>(
      threads, std::max<double>(1.0, macs / static_cast<double>(bk.min_macs_per_thread))));
  if (threads <= 1) {
    gemm_serial(bk, paths, m, n, k, alpha, a, a_rs, a_cs, b, b_rs, b_cs, beta, c, ldc);
    return;
  }
  // One rectangle of C per thread, each packing its own operands (see Threads above), cut
  // into pieces handed out on demand (see choose_pieces).
  const Grid grid = choose_pieces(bk, paths, m, n, k, threads, choose_grid(bk, m, n, k, threads));
  const int64_t units_m = ceil_div(m, bk.mr), units_n = ceil_div(n, bk.nr);
  auto piece = [&](int64_t t) {
    const int64_t ti = t / grid.tn, tj = t % grid.tn;
    const int64_t m0 = std::min(m, units_m * ti / grid.tm * bk.mr);
    const int64_t m1 = std::min(m, units_m * (ti + 1) / grid.tm * bk.mr);
    const int64_t n0 = std::min(n, units_n * tj / grid.tn * bk.nr);
    const int64_t n1 = std::min(n, units_n * (tj + 1) / grid.tn * bk.nr);
    if (m0 >= m1 || n0 >= n1) return;
    gemm_serial(bk, paths, m1 - m0, n1 - n0, k, alpha, a + m0 * a_rs, a_rs, a_cs, b + n0 * b_cs,
                b_rs, b_cs, beta, c + m0 * ldc + n0, ldc);
  };
  if (grid.tm * grid.tn == threads) {
    parallel_for(threads, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) piece(t);
    });
  } else {
    for_each_item_dynamic(threads, grid.tm * grid.tn, piece);
  }
}

// ---- Batched --------------------------------------------------------------------------------

constexpr int64_t kMaxBatchDims = 64;  // NumPy's limit on ndim

template <typename T>
void gemm_batched_impl(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha,
                       const T* a, int64_t lda, const T* b, int64_t ldb, T beta, T* c,
                       int64_t ldc, int64_t batch_ndim, const int64_t* batch_shape,
                       const int64_t* a_strides, const int64_t* b_strides,
                       const int64_t* c_strides) {
  if (batch_ndim < 0 || batch_ndim > kMaxBatchDims)
    throw std::invalid_argument("gemm_batched: batch_ndim must be in [0, 64], got " +
                                std::to_string(batch_ndim));
  int64_t batch = 1;
  for (int64_t d = 0; d < batch_ndim; ++d) {
    if (batch_shape[d] < 0)
      throw std::invalid_argument("gemm_batched: negative batch size " +
                                  std::to_string(batch_shape[d]));
    batch *= batch_shape[d];
  }
  if (batch == 0 || m == 0 || n == 0) return;

  // Items [t0, t1) in row-major order of the batch index, walked with an odometer.
  auto run_items = [&](int64_t t0, int64_t t1) {
    int64_t index[kMaxBatchDims];
    int64_t off_a = 0, off_b = 0, off_c = 0, rest = t0;
    for (int64_t d = batch_ndim - 1; d >= 0; --d) {
      index[d] = rest % batch_shape[d];
      rest /= batch_shape[d];
      off_a += index[d] * a_strides[d];
      off_b += index[d] * b_strides[d];
      off_c += index[d] * c_strides[d];
    }
    for (int64_t t = t0; t < t1; ++t) {
      gemm_impl<T>(trans_a, trans_b, m, n, k, alpha, a + off_a, lda, b + off_b, ldb, beta,
                   c + off_c, ldc);
      for (int64_t d = batch_ndim - 1; d >= 0; --d) {
        off_a += a_strides[d];
        off_b += b_strides[d];
        off_c += c_strides[d];
        if (++index[d] < batch_shape[d]) break;
        off_a -= index[d] * a_strides[d];
        off_b -= index[d] * b_strides[d];
        off_c -= index[d] * c_strides[d];
        index[d] = 0;
      }
    }
  };

  // Threads over batch items when each product is too small to thread by itself, or when the
  // items split evenly or are many enough that an uneven split costs little; otherwise threads
  // inside each product.
  const int threads = in_parallel_region() ? 1 : num_threads();
  const double macs = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const bool by_item =
      batch > 1 && threads > 1 &&
      (macs < 2.0 * static_cast<double>(blocking<T>().min_macs_per_thread) ||
       batch >= 4 * threads || batch % threads == 0);
  if (by_item) {
    // Groups of items, about 8 per thread, handed out on demand; each gemm_impl then runs on
    // the thread that took it.
    const int64_t group = ceil_div(batch, 8 * int64_t(threads));
    for_each_item_dynamic(threads, ceil_div(batch, group), [&](int64_t g) {
      run_items(g * group, std::min(batch, (g + 1) * group));
    });
  } else {
    run_items(0, batch);
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc) {
  gemm_impl<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
           const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
           int64_t ldc) {
  gemm_impl<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void sgemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                   const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                   int64_t ldc, int64_t batch_ndim, const int64_t* batch_shape,
                   const int64_t* a_batch_strides, const int64_t* b_batch_strides,
                   const int64_t* c_batch_strides) {
  gemm_batched_impl<float>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                           batch_ndim, batch_shape, a_batch_strides, b_batch_strides,
                           c_batch_strides);
}

void dgemm_batched(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                   const double* a, int64_t lda, const double* b, int64_t ldb, double beta,
                   double* c, int64_t ldc, int64_t batch_ndim, const int64_t* batch_shape,
                   const int64_t* a_batch_strides, const int64_t* b_batch_strides,
                   const int64_t* c_batch_strides) {
  gemm_batched_impl<double>(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                            batch_ndim, batch_shape, a_batch_strides, b_batch_strides,
                            c_batch_strides);
}

}  // namespace pydl
