// Convolution kernels: tiled im2col + GEMM, a GEMM-only 1x1 path, direct depthwise loops, and
// for float32 with AVX2 direct stride-1 loops, tap lists (depthwise, grouped) and Winograd
// F(2x2, 3x3).
//
// Versions, side by side (each is checked against the float64 NumPy loop reference in
// tests/ops/test_conv.py, and timed in benchmarks/conv.py):
//   1. tiled im2col + GEMM. For image n and group g the column matrix col[(c, r, s), p] (the
//      input pixel that output pixel p sees through kernel tap (r, s) of channel c) is built
//      `tile` output pixels at a time; then
//        forward          y_g[:, tile]  = W_g (Kg x CgRS) @ col (CgRS x tile)
//        backward input   col           = W_g^T @ dy_g[:, tile],  then col2im adds it into dx
//        backward weight  dW_g         += dy_g[:, tile] @ col^T
//      The buffer holds CgRS x tile elements per thread, with tile chosen so that it stays near
//      1 MiB (in L2 while the GEMM streams it), never the whole CgRS x OH*OW matrix of a batch.
//   2. 1x1 kernel, stride 1, no padding: the input image is already the column matrix, so the
//      GEMM reads it in place (no copy at all).
//   3. depthwise (one input channel per group): the GEMM would have m = 1; direct loops over
//      output rows and kernel taps vectorise along the row instead.
//   4. direct stride-1 (float32, AVX2, no dilation; see use_direct for the bounds, e.g.
//      LeNet's layers with 6 and 16 output channels): with few output channels each column
//      element would feed only Kg FMAs after being written, packed and read, so conv_avx2.cpp
//      reads the input in place (zero-padded copies where padding or a partial last vector need
//      them): forward as register tiles of up to 6 output channels x 2-6 vectors of 8 columns
//      with the weights packed per channel block, backward-input as the same correlation of the
//      padded dy with the flipped kernel (skipping rows that are all padding), backward-weight
//      (up to 16 output channels) as lane sums of dy * shifted x over L1-sized image chunks.
//   5. Winograd F(2x2, 3x3) (float32, AVX2, 3x3 stride 1, >= 16 channels in and out): forward
//      and backward-input transform 4x4 input tiles (V = B^T d B), run 16 GEMMs
//      M[xi] = U[xi] (Kout x Cin) @ V[xi] (Cin x tiles) and transform back (Y = A^T M A); the
//      weight gradient is F(3x3, 2x2), 16 GEMMs reducing dy-tile transforms against V over the
//      tiles. 16 multiply-adds per 2x2 output tile and channel pair instead of 36.
//   6. row-flat (float32, AVX-512, stride 1 down the rows, any column stride, padding and
//      dilation; small layers, see use_rowflat; taken before 4 where both apply): planes whose
//      rows are exactly OW wide, so each kernel row is one shift of the flattened plane and 16
//      consecutive output pixels fill a zmm whatever OW is (LeNet's 8- and 12-wide rows waste
//      a third of the AVX2 path's 8-lane vectors in the backward-input pass). The S column taps
//      become S shifted copies of the input (forward, weight) or a gather after the correlation
//      (backward-input, which so never multiplies a zero padding column); conv_avx512.cpp.
//      Backward-input, backward-weight and the bias sums run as one pass over the batch when a
//      training step asks for all of them (conv2d_backward_cpu).
//      LeNet conv2 (N64 C6 H12 K16 R5), two threads, timed alternately with the AVX2 direct
//      loops: forward ~0.7x their time, the three gradients ~0.5x (~90 us and ~250 us when
//      the machine is quiet). LeNet conv1: forward ~0.8x to 1.15x (noise), gradients ~0.55x.
//   7. tap lists (float32, AVX2, groups > 1 with at most 4 input channels per group, strides up
//      to 4; taken before 3): each output plane is a list of (weight, offset) taps into padded,
//      column-phase-split input planes, 8 columns per vector (see "tap lists" below).
//      Depthwise 3x3 C64 H28 N8, one Zen 3 core: forward 1.43 -> 0.37 ms, backward input
//      1.39 -> 0.36 ms, backward weight 1.44 -> 0.48 ms (torch 0.45 / 0.47-0.59 / 0.46-0.52 ms).
//   8. im2col + GEMM over several images (output planes smaller than a column tile, VGG's 4x4
//      layers): one column matrix holds the tiles of several images side by side, so the GEMMs
//      have n (or k) = images * OH * OW instead of 16.
// Measured on ResNet's 64x64 3x3 layer (one core, CPU time): im2col + GEMM ~90 GF/s, direct ~107,
// Winograd 145-160 GF/s effective (direct-convolution FLOPs over time; the AVX2 FMA peak of a
// core is ~130-145 GF/s).
// Threads: work items (image, group, tile) go to one slot per thread, each with its own scratch,
// in blocks taken from a shared counter (run_slots); weight-gradient blocks keep partial sums of
// their own, added in block order (reduction_blocks), so the result is the same every run. With
// a single item the GEMM itself runs on all threads.
#include "conv.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common/checked.h"
#include "conv_avx2.h"
#include "conv_avx512.h"
#include "cpu_features.h"
#include "gemm.h"
#include "parallel.h"

namespace pydl {
namespace {

constexpr int64_t kColumnTileBytes = 1 << 20;  // target size of one thread's column tile
constexpr int64_t kMinTilePixels = 64;         // below this the GEMM's packing dominates

inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                 int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Integer division rounding toward -inf / +inf, for numerators of either sign (b > 0).
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// Output columns [lo, hi) of [ow0, ow1) whose input column ow*stride + offset lies in [0, W).
inline void valid_range(int64_t ow0, int64_t ow1, int64_t offset, int64_t stride, int64_t W,
                        int64_t* lo, int64_t* hi) {
  int64_t a = std::max(ow0, ceil_div(-offset, stride));
  int64_t b = std::min(ow1, floor_div(W - 1 - offset, stride) + 1);
  *lo = std::min(a, ow1);
  *hi = std::max(b, *lo);
}

bool is_pointwise(const Conv2dShape& s) {
  return s.R == 1 && s.S == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
         s.pad_w == 0 && s.OH == s.H && s.OW == s.W;
}

bool is_depthwise(const Conv2dShape& s) { return s.groups > 1 && s.groups == s.C; }

int64_t tile_pixels(const Conv2dShape& s, int64_t elem_size) {
  const int64_t P = s.OH * s.OW;
  const int64_t rows = std::max<int64_t>(1, s.Cg() * s.R * s.S);
  int64_t t = kColumnTileBytes / (rows * elem_size);
  if (t > 16) t -= t % 16;
  t = std::max(t, kMinTilePixels);
  return std::max<int64_t>(1, std::min(t, P));
}

// Runs fn(slot, begin, end) over blocks [begin, end) of [0, items), `slots` of them at a time on
// the thread pool. A slot owns its scratch buffers (and partial sums) for the whole call; it
// takes blocks of `block` items (default: about a quarter of a slot's share) from a shared
// counter until none are left, so a pool worker that wakes late (tens of microseconds on a
// VM, as long as a LeNet layer's whole pass) just takes fewer blocks instead of holding the
// caller up with a fixed half of the work. Slots that get no block leave their partials zero.
template <typename Fn>
void run_slots(int64_t items, int64_t slots, Fn&& fn, int64_t block = 0) {
  if (block <= 0) block = std::max<int64_t>(1, items / (4 * slots));
  std::atomic<int64_t> next{0};
  parallel_for(slots, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t slot = s0; slot < s1; ++slot) {
      for (;;) {
        const int64_t b = next.fetch_add(block);
        if (b >= items) break;
        fn(slot, b, std::min(items, b + block));
      }
    }
  });
}

int64_t slot_count(int64_t items) { return std::max<int64_t>(1, std::min<int64_t>(num_threads(), items)); }

// The weight gradient (and the bias gradient of the row-flat pass) is a sum over images. run_slots
// hands blocks of images to whichever thread asks first, so summing per thread would group the
// images differently from run to run (2-3 different results in 10 identical calls on 2 threads).
// Instead every block adds into partial sums of its own, and the partials are added in block
// order: bitwise the same result from run to run. The split follows the thread count (about
// four blocks per thread, as run_slots' default) except under deterministic_algorithms(), where
// it is a fixed number of blocks, so the result is the same for any thread count.
constexpr int64_t kDeterministicBlocks = 8;
// Partial sums beyond one set per thread stay under this (huge layers on many threads).
constexpr int64_t kMaxPartialBytes = int64_t(64) << 20;

struct ReductionBlocks {
  int64_t block, count;  // items per block (a multiple of `multiple`), blocks
};

ReductionBlocks reduction_blocks(int64_t items, int64_t slots, int64_t multiple,
                                 int64_t partial_bytes) {
  multiple = std::max<int64_t>(1, multiple);
  const int64_t by_memory = kMaxPartialBytes / std::max<int64_t>(1, partial_bytes);
  int64_t target = deterministic_algorithms()
                       ? std::max<int64_t>(1, std::min(kDeterministicBlocks, by_memory))
                       : std::max(slots, std::min(4 * slots, by_memory));
  int64_t block = (items + target - 1) / target;
  block = (block + multiple - 1) / multiple * multiple;
  block = std::max<int64_t>(block, 1);
  return {block, std::max<int64_t>(1, (items + block - 1) / block)};
}

// Partial sums of `count` blocks, `size` elements each: block 0 writes the output itself.
template <typename T>
class BlockPartials {
 public:
  BlockPartials(T* out, int64_t size, int64_t count)
      : out_(out), size_(size), count_(count), rest_((count - 1) * size) {}
  T* block(int64_t b) { return b == 0 ? out_ : rest_.data() + (b - 1) * size_; }
  // out += block 1 + block 2 + ... in that order, element by element.
  void add_up() {
    if (count_ <= 1) return;
    auto add = [&](int64_t e0, int64_t e1) {
      for (int64_t b = 1; b < count_; ++b) {
        const T* part = rest_.data() + (b - 1) * size_;
        for (int64_t e = e0; e < e1; ++e) out_[e] += part[e];
      }
    };
    // Few elements (one layer's weights): summed here rather than waking the pool again.
    if (size_ * (count_ - 1) < 16384)
      add(0, size_);
    else
      parallel_for(size_, 4096, add);
  }

 private:
  T* out_;
  int64_t size_, count_;
  std::vector<T> rest_;
};

// col[row][q] = x_g[c, ih, iw] for rows (c, r, s), q = p - p0 over output pixels p in [p0, p1).
// x_g points at channel 0 of the group in image n. Rows are ld apart (default p1 - p0; wider
// when several images' tiles sit side by side in one column matrix).
template <typename T>
void im2col_tile(const Conv2dShape& s, const T* x_g, int64_t p0, int64_t p1, T* col,
                 int64_t ld = -1) {
  const int64_t P = ld < 0 ? p1 - p0 : ld, HW = s.H * s.W;
  for (int64_t c = 0; c < s.Cg(); ++c) {
    const T* xc = x_g + c * HW;
    for (int64_t r = 0; r < s.R; ++r) {
      for (int64_t t = 0; t < s.S; ++t) {
        T* row = col + ((c * s.R + r) * s.S + t) * P;
        const int64_t iw_off = t * s.dil_w - s.pad_w;
        for (int64_t p = p0; p < p1;) {
          const int64_t oh = p / s.OW, ow0 = p % s.OW, ow1 = std::min(s.OW, ow0 + (p1 - p));
          const int64_t n = ow1 - ow0;
          T* out = row + (p - p0) - ow0;  // out[ow] is column ow of this output row
          const int64_t ih = oh * s.stride_h - s.pad_h + r * s.dil_h;
          if (ih < 0 || ih >= s.H) {
            std::fill(out + ow0, out + ow1, T(0));
          } else {
            const T* xrow = xc + ih * s.W + iw_off;  // xrow[ow * stride] is the tap's input
            int64_t lo, hi;
            valid_range(ow0, ow1, iw_off, s.stride_w, s.W, &lo, &hi);
            std::fill(out + ow0, out + lo, T(0));
            if (s.stride_w == 1) {
              std::memcpy(out + lo, xrow + lo, sizeof(T) * (hi - lo));
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) out[ow] = xrow[ow * s.stride_w];
            }
            std::fill(out + hi, out + ow1, T(0));
          }
          p += n;
        }
      }
    }
  }
}

// The adjoint of im2col_tile: dx_g[c, ih, iw] += col[row][q].
template <typename T>
void col2im_tile_add(const Conv2dShape& s, const T* col, int64_t p0, int64_t p1, T* dx_g,
                     int64_t ld = -1) {
  const int64_t P = ld < 0 ? p1 - p0 : ld, HW = s.H * s.W;
  for (int64_t c = 0; c < s.Cg(); ++c) {
    T* dxc = dx_g + c * HW;
    for (int64_t r = 0; r < s.R; ++r) {
      for (int64_t t = 0; t < s.S; ++t) {
        const T* row = col + ((c * s.R + r) * s.S + t) * P;
        const int64_t iw_off = t * s.dil_w - s.pad_w;
        for (int64_t p = p0; p < p1;) {
          const int64_t oh = p / s.OW, ow0 = p % s.OW, ow1 = std::min(s.OW, ow0 + (p1 - p));
          const int64_t ih = oh * s.stride_h - s.pad_h + r * s.dil_h;
          if (ih >= 0 && ih < s.H) {
            const T* in = row + (p - p0) - ow0;
            T* dxrow = dxc + ih * s.W + iw_off;
            int64_t lo, hi;
            valid_range(ow0, ow1, iw_off, s.stride_w, s.W, &lo, &hi);
            if (s.stride_w == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) dxrow[ow] += in[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) dxrow[ow * s.stride_w] += in[ow];
            }
          }
          p += ow1 - ow0;
        }
      }
    }
  }
}

// ---- im2col + GEMM over several images at once (small output planes) -----------------------
// An output plane smaller than a column tile (VGG's 4x4 layers: P = 16) makes a GEMM with n = 16
// (forward, backward input) or k = 16 (weight) per image, which runs at 0.4-0.6x of the same
// product for 128 columns. Here a column matrix holds the tiles of several images side by side
// (rows ld = images * P apart); dy is gathered the same way, and the forward result is spread
// back to the images' planes. The image count depends only on the shape (not on the thread
// count), so the weight gradient's reduction blocks stay fixed.
// Larger planes gain nothing: their GEMMs already have n >= 64, and gathering dy only adds a
// copy (fwd+bwd 3-4% slower batched: VGG conv1 C3 H32 N8/N32 and ResNet 1x1/2 C128 H28 N8/N32,
// A/B in one process, one Zen 3 core).
constexpr int64_t kBatchMaxPixels = 64;

template <typename T>
int64_t images_per_matrix(const Conv2dShape& s) {
  const int64_t P = s.OH * s.OW, rows = s.Cg() * s.R * s.S;
  if (s.N < 2 || P == 0 || P > kBatchMaxPixels || rows == 0 || is_pointwise(s)) return 1;
  const int64_t tile = std::max(kMinTilePixels, kColumnTileBytes / (rows * int64_t(sizeof(T))));
  const int64_t most = std::min(s.N, tile / P);
  if (most < 2) return 1;
  const int64_t chunks = (s.N + most - 1) / most;  // even chunks: 8 images as 4 + 4, not 7 + 1
  return (s.N + chunks - 1) / chunks;
}

template <typename T>
int64_t batched_scratch_elements(const Conv2dShape& s, int64_t nb) {
  return (s.Cg() * s.R * s.S + s.Kg()) * nb * s.OH * s.OW;
}

// What the three batched passes share: the work items (chunk of nb images, group), one scratch
// per thread slot holding a column matrix (rows x nb P) and then a Kg x nb P block of y / dy.
template <typename T>
struct BatchedPlan {
  int64_t P, Kg, Cg, G, HW, rows, items, slots, per_slot;
  std::unique_ptr<T[]> scratch;  // written before read

  BatchedPlan(const Conv2dShape& s, int64_t nb)
      : P(s.OH * s.OW), Kg(s.Kg()), Cg(s.Cg()), G(s.groups), HW(s.H * s.W),
        rows(Cg * s.R * s.S), items((s.N + nb - 1) / nb * G), slots(slot_count(items)),
        per_slot(batched_scratch_elements<T>(s, nb)), scratch(new T[slots * per_slot]) {}
  T* slot_scratch(int64_t slot) const { return scratch.get() + slot * per_slot; }
};

// rows_out[k][j * P + p] = dy[n0 + j][g * Kg + k][p] for the cnt images of a chunk.
template <typename T>
void gather_dy(const Conv2dShape& s, const T* dy, int64_t n0, int64_t cnt, int64_t g, T* out) {
  const int64_t P = s.OH * s.OW, Kg = s.Kg(), ld = cnt * P;
  for (int64_t j = 0; j < cnt; ++j)
    for (int64_t k = 0; k < Kg; ++k)
      std::memcpy(out + k * ld + j * P, dy + ((n0 + j) * s.K + g * Kg + k) * P, sizeof(T) * P);
}

template <typename T>
void batched_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y,
                     int64_t nb) {
  const BatchedPlan<T> plan(s, nb);
  const int64_t P = plan.P, Kg = plan.Kg, Cg = plan.Cg, G = plan.G, HW = plan.HW, rows = plan.rows;
  run_slots(plan.items, plan.slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    T* col = plan.slot_scratch(slot);
    T* out = col + rows * nb * P;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i % G, n0 = (i / G) * nb, cnt = std::min(nb, s.N - n0), ld = cnt * P;
      for (int64_t j = 0; j < cnt; ++j)
        im2col_tile(s, x + ((n0 + j) * s.C + g * Cg) * HW, 0, P, col + j * P, ld);
      gemm(false, false, Kg, ld, rows, T(1), w + g * Kg * rows, rows, col, ld, T(0), out, ld);
      for (int64_t j = 0; j < cnt; ++j) {
        for (int64_t k = 0; k < Kg; ++k) {
          T* yrow = y + ((n0 + j) * s.K + g * Kg + k) * P;
          const T* src = out + k * ld + j * P;
          const T bk = bias ? bias[g * Kg + k] : T(0);
          for (int64_t p = 0; p < P; ++p) yrow[p] = src[p] + bk;
        }
      }
    }
  });
}

template <typename T>
void batched_backward_input(const Conv2dShape& s, const T* dy, const T* w, T* dx, int64_t nb) {
  const BatchedPlan<T> plan(s, nb);
  const int64_t P = plan.P, Kg = plan.Kg, Cg = plan.Cg, G = plan.G, HW = plan.HW, rows = plan.rows;
  // (A copy of W_g^T for an A B product instead of A^T B was no faster: the GEMM packs W_g
  // either way, and the copy cost as much as one packing; VGG conv4 N8 and N32, one Zen 3 core.
  // Neither were 4x larger column matrices: 20.97 against 20.84 ms at N32.)
  run_slots(plan.items, plan.slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    T* col = plan.slot_scratch(slot);
    T* dyb = col + rows * nb * P;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i % G, n0 = (i / G) * nb, cnt = std::min(nb, s.N - n0), ld = cnt * P;
      gather_dy(s, dy, n0, cnt, g, dyb);
      gemm(true, false, rows, ld, Kg, T(1), w + g * Kg * rows, rows, dyb, ld, T(0), col, ld);
      for (int64_t j = 0; j < cnt; ++j) {
        T* dx_g = dx + ((n0 + j) * s.C + g * Cg) * HW;
        std::fill(dx_g, dx_g + Cg * HW, T(0));
        col2im_tile_add(s, col + j * P, 0, P, dx_g, ld);
      }
    }
  });
}

template <typename T>
void batched_backward_weight(const Conv2dShape& s, const T* x, const T* dy, T* dw, int64_t nb) {
  const BatchedPlan<T> plan(s, nb);
  const int64_t P = plan.P, Kg = plan.Kg, Cg = plan.Cg, G = plan.G, HW = plan.HW, rows = plan.rows;
  const int64_t w_size = s.K * rows;
  const ReductionBlocks rb = reduction_blocks(plan.items, plan.slots, 1, w_size * sizeof(T));
  BlockPartials<T> partials(dw, w_size, rb.count);
  run_slots(plan.items, plan.slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    T* col = plan.slot_scratch(slot);
    T* dyb = col + rows * nb * P;
    T* acc = partials.block(i0 / rb.block);
    std::fill(acc, acc + w_size, T(0));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i % G, n0 = (i / G) * nb, cnt = std::min(nb, s.N - n0), ld = cnt * P;
      for (int64_t j = 0; j < cnt; ++j)
        im2col_tile(s, x + ((n0 + j) * s.C + g * Cg) * HW, 0, P, col + j * P, ld);
      gather_dy(s, dy, n0, cnt, g, dyb);
      // dW_g (Kg x rows) += dy chunk (Kg x ld) @ col^T (ld x rows)
      gemm(false, true, Kg, rows, ld, T(1), dyb, ld, col, ld, T(1), acc + g * Kg * rows, rows);
    }
  }, rb.block);
  partials.add_up();
}

// ---- depthwise: direct loops ------------------------------------------------------------------

// y_plane (OH x OW) += sum_{r,s} w[r, s] * x_plane shifted; x_plane is H x W.
template <typename T>
void depthwise_plane_forward(const Conv2dShape& s, const T* xp, const T* wk, T* yp) {
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    T* yrow = yp + oh * s.OW;
    for (int64_t r = 0; r < s.R; ++r) {
      const int64_t ih = oh * s.stride_h - s.pad_h + r * s.dil_h;
      if (ih < 0 || ih >= s.H) continue;
      for (int64_t t = 0; t < s.S; ++t) {
        const T wv = wk[r * s.S + t];
        const int64_t iw_off = t * s.dil_w - s.pad_w;
        const T* xrow = xp + ih * s.W + iw_off;
        int64_t lo, hi;
        valid_range(0, s.OW, iw_off, s.stride_w, s.W, &lo, &hi);
        if (s.stride_w == 1) {
          for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) yrow[ow] += wv * xrow[ow * s.stride_w];
        }
      }
    }
  }
}

template <typename T>
void depthwise_plane_backward_input(const Conv2dShape& s, const T* dyp, const T* wk, T* dxp) {
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    const T* dyrow = dyp + oh * s.OW;
    for (int64_t r = 0; r < s.R; ++r) {
      const int64_t ih = oh * s.stride_h - s.pad_h + r * s.dil_h;
      if (ih < 0 || ih >= s.H) continue;
      for (int64_t t = 0; t < s.S; ++t) {
        const T wv = wk[r * s.S + t];
        const int64_t iw_off = t * s.dil_w - s.pad_w;
        T* dxrow = dxp + ih * s.W + iw_off;
        int64_t lo, hi;
        valid_range(0, s.OW, iw_off, s.stride_w, s.W, &lo, &hi);
        if (s.stride_w == 1) {
          for (int64_t ow = lo; ow < hi; ++ow) dxrow[ow] += wv * dyrow[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) dxrow[ow * s.stride_w] += wv * dyrow[ow];
        }
      }
    }
  }
}

// acc[r*S + t] += sum_{oh, ow} dy[oh, ow] * x[ih, iw].
template <typename T>
void depthwise_plane_backward_weight(const Conv2dShape& s, const T* xp, const T* dyp, T* acc) {
  for (int64_t oh = 0; oh < s.OH; ++oh) {
    const T* dyrow = dyp + oh * s.OW;
    for (int64_t r = 0; r < s.R; ++r) {
      const int64_t ih = oh * s.stride_h - s.pad_h + r * s.dil_h;
      if (ih < 0 || ih >= s.H) continue;
      for (int64_t t = 0; t < s.S; ++t) {
        const int64_t iw_off = t * s.dil_w - s.pad_w;
        const T* xrow = xp + ih * s.W + iw_off;
        int64_t lo, hi;
        valid_range(0, s.OW, iw_off, s.stride_w, s.W, &lo, &hi);
        // Four partial sums: breaks the add chain so the loop pipelines without -ffast-math.
        T a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int64_t ow = lo;
        if (s.stride_w == 1) {
          for (; ow + 4 <= hi; ow += 4) {
            a0 += dyrow[ow] * xrow[ow];
            a1 += dyrow[ow + 1] * xrow[ow + 1];
            a2 += dyrow[ow + 2] * xrow[ow + 2];
            a3 += dyrow[ow + 3] * xrow[ow + 3];
          }
          for (; ow < hi; ++ow) a0 += dyrow[ow] * xrow[ow];
        } else {
          for (; ow < hi; ++ow) a0 += dyrow[ow] * xrow[ow * s.stride_w];
        }
        acc[r * s.S + t] += (a0 + a1) + (a2 + a3);
      }
    }
  }
}

template <typename T>
void depthwise_forward(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t P = s.OH * s.OW, HW = s.H * s.W, Kg = s.Kg(), RS = s.R * s.S;
  parallel_for(s.N * s.K, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n = i / s.K, k = i % s.K, c = k / Kg;
      T* yp = y + i * P;
      std::fill(yp, yp + P, bias ? bias[k] : T(0));
      depthwise_plane_forward(s, x + (n * s.C + c) * HW, w + k * RS, yp);
    }
  });
}

template <typename T>
void depthwise_backward_input(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  const int64_t P = s.OH * s.OW, HW = s.H * s.W, Kg = s.Kg(), RS = s.R * s.S;
  // One task per input plane: the Kg outputs of its group all add into it.
  parallel_for(s.N * s.C, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n = i / s.C, c = i % s.C;
      T* dxp = dx + i * HW;
      std::fill(dxp, dxp + HW, T(0));
      for (int64_t k = c * Kg; k < (c + 1) * Kg; ++k)
        depthwise_plane_backward_input(s, dy + (n * s.K + k) * P, w + k * RS, dxp);
    }
  });
}

template <typename T>
void depthwise_backward_weight(const Conv2dShape& s, const T* x, const T* dy, T* dw) {
  const int64_t P = s.OH * s.OW, HW = s.H * s.W, Kg = s.Kg(), RS = s.R * s.S;
  // One task per output channel: it sums over the batch, so no two tasks write the same dw.
  parallel_for(s.K, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      T* acc = dw + k * RS;
      std::fill(acc, acc + RS, T(0));
      for (int64_t n = 0; n < s.N; ++n)
        depthwise_plane_backward_weight(s, x + (n * s.C + k / Kg) * HW, dy + (n * s.K + k) * P,
                                        acc);
    }
  });
}

// ---- direct stride-1 path (AVX2, float32): no column matrix ---------------------------------

// When the direct loops beat im2col + GEMM (measured on the benchmark shapes: LeNet's 6 and 16
// output channels, where the GEMM's m is tiny, and ResNet's 64x64 3x3, where the forward and
// backward-input passes run at ~107 GF/s per core against ~90 through the column matrix).
// The forward kernel keeps a pair of output vectors' input rows (Cg * R rows) in L1 while every
// block of output channels streams its weights (Kg * Cg * R * S) from L2, so both are bounded.
constexpr int64_t kDirectMaxWeights = 64 * 1024;  // floats of one group's weights (256 KiB)
constexpr int64_t kDirectMaxInputRows = 256;       // Cg * R input rows per output vector pair
constexpr int64_t kDirectMinWidth = 6;             // output columns (of 8 lanes per vector)
// The weight gradient's lane sums (dy * shifted x per output channel pair and tap row) only win
// for few output channels; larger layers take the GEMM.
constexpr int64_t kDirectWeightMaxKg = 16;
constexpr int64_t kDirectWeightMaxRows = 1024;     // Cg * R * S
constexpr int64_t kDirectWeightChunk = 16;         // most images per chunk in the weight pass
constexpr int64_t kDirectWeightChunkBytes = 32 * 1024;  // x and dy of one chunk (L1)

enum class Pass { kForward, kBackwardInput, kBackwardWeight };

// Stride 1, no dilation, float32 with AVX2, and within the bounds above for the pass (the
// backward-input correlation swaps the channel roles and produces H x W).
// Dilation: the forward and backward-input kernels read taps at any offsets (a dilated tap is a
// farther offset into the padded copy), so they take dilated layers too (3x3 d2 C32 H28 N32,
// one Zen 3 core: forward 13 -> 8.6 ms, backward input 9.1 -> 7.2 ms against im2col + GEMM);
// the weight lanes assume adjacent taps.
template <typename T>
bool use_direct(const Conv2dShape& s, Pass pass) {
  if (!std::is_same<T, float>::value || !use_avx2() || s.stride_h != 1 || s.stride_w != 1 ||
      is_depthwise(s) || is_pointwise(s))
    return false;
  if ((s.dil_h != 1 || s.dil_w != 1) && pass == Pass::kBackwardWeight) return false;
  const int64_t weights = s.Kg() * s.Cg() * s.R * s.S;
  switch (pass) {
    case Pass::kForward:
      return weights <= kDirectMaxWeights && s.Cg() * s.R <= kDirectMaxInputRows &&
             s.OW >= kDirectMinWidth;
    case Pass::kBackwardInput:
      return weights <= kDirectMaxWeights && s.Kg() * s.R <= kDirectMaxInputRows &&
             s.W >= kDirectMinWidth;
    default:
      return s.Kg() <= kDirectWeightMaxKg && s.Cg() * s.R * s.S <= kDirectWeightMaxRows;
  }
}

inline int64_t round8(int64_t v) { return (v + 7) / 8 * 8; }

// dst[c][hh][ww] = src[c][hh - off_h][ww - off_w] (0 outside src), for C planes of hp x wp.
void pad_planes(const float* src, int64_t C, int64_t H, int64_t W, int64_t off_h, int64_t off_w,
                int64_t hp, int64_t wp, float* dst) {
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t hh = 0; hh < hp; ++hh) {
      float* d = dst + (c * hp + hh) * wp;
      const int64_t ih = hh - off_h;
      if (ih < 0 || ih >= H) {
        std::fill(d, d + wp, 0.0f);
        continue;
      }
      const int64_t lo = std::min(wp, std::max<int64_t>(0, off_w));
      const int64_t hi = std::max(lo, std::min(wp, W + off_w));
      std::fill(d, d + lo, 0.0f);
      std::memcpy(d + lo, src + (c * H + ih) * W + (lo - off_w), sizeof(float) * (hi - lo));
      std::fill(d + hi, d + wp, 0.0f);
    }
  }
}

// Input planes of one image and group as the direct kernel reads them: in place when no padding
// is needed and the reads past a row's end (for OW not a multiple of 8) cannot leave the buffer,
// else a zero-padded copy in `scratch`.
struct DirectInput {
  int64_t hp, wp;  // padded plane: rows OH + R - 1, columns round8(OW) + S - 1
  bool copy;
  DirectInput(const Conv2dShape& s, int64_t H, int64_t W, int64_t pad_h, int64_t pad_w)
      : hp(s.OH + (s.R - 1) * s.dil_h), wp(round8(s.OW) + (s.S - 1) * s.dil_w),
        copy(pad_h != 0 || pad_w != 0 || s.OW % 8 != 0 || H < hp ||
             W < s.OW + (s.S - 1) * s.dil_w) {}
  conv_detail::Planes planes(const float* x, int64_t C, int64_t H, int64_t W, int64_t pad_h,
                             int64_t pad_w, float* scratch) const {
    if (!copy) return {x, H * W, W};
    pad_planes(x, C, H, W, pad_h, pad_w, hp, wp, scratch);
    return {scratch, hp * wp, wp};
  }
  int64_t scratch_floats(int64_t C) const { return copy ? C * hp * wp : 0; }
};

// Weights of one group in the direct kernel's layout (see conv_detail::DirectWeights): output
// channel k, input channel c, tap (r, s) is w[k * w_k + c * w_c + r * S + s], or with flip the
// tap (R-1-r, S-1-s) (the backward-input correlation).
struct PackedDirectWeights {
  std::vector<float> packed;
  std::vector<int64_t> offsets;
  conv_detail::DirectWeights view;
  PackedDirectWeights(const float* w, int64_t K, int64_t C, int64_t R, int64_t S, int64_t w_k,
                      int64_t w_c, bool flip, int64_t plane, int64_t row_stride, int64_t dil_h,
                      int64_t dil_w) {
    const int64_t KB = conv_detail::kDirectKB, taps = C * R * S, blocks = (K + KB - 1) / KB;
    packed.assign(blocks * taps * KB, 0.0f);
    offsets.resize(taps);
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t c = 0; c < C; ++c) {
        for (int64_t t = 0; t < S; ++t) {
          const int64_t tap = (r * C + c) * S + t;
          offsets[tap] = c * plane + r * dil_h * row_stride + t * dil_w;
          const int64_t src = flip ? (R - 1 - r) * S + (S - 1 - t) : r * S + t;
          for (int64_t k = 0; k < K; ++k)
            packed[((k / KB) * taps + tap) * KB + k % KB] = w[k * w_k + c * w_c + src];
        }
      }
    }
    view = {packed.data(), offsets.data(), K, R, taps};
  }
};

void direct_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                    float* y) {
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups, HW = s.H * s.W, P = s.OH * s.OW;
  const int64_t RS = s.R * s.S;
  const DirectInput din(s, s.H, s.W, s.pad_h, s.pad_w);
  const int64_t plane = din.copy ? din.hp * din.wp : HW, row = din.copy ? din.wp : s.W;
  std::vector<PackedDirectWeights> wg;
  for (int64_t g = 0; g < G; ++g)
    wg.emplace_back(w + g * Kg * Cg * RS, Kg, Cg, s.R, s.S, Cg * RS, RS, false, plane, row,
                    s.dil_h, s.dil_w);
  // Rows outside [live_lo, live_hi) of the padded copy are zero: the kernel skips their taps,
  // assuming tap row r reads row oh + r; dilated layers skip nothing.
  const bool dilated = s.dil_h != 1 || s.dil_w != 1;
  const int64_t live_lo = dilated ? -s.OH - s.R : s.pad_h;
  const int64_t live_hi = dilated ? s.OH + s.R + s.H + 2 * s.pad_h : s.pad_h + s.H;
  const int64_t items = s.N * G, slots = slot_count(items);
  std::vector<float> scratch(slots * din.scratch_floats(Cg));
  run_slots(items, slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    float* buf = scratch.data() + slot * din.scratch_floats(Cg);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i % G, n = i / G;
      const conv_detail::Planes in =
          din.planes(x + (n * s.C + g * Cg) * HW, Cg, s.H, s.W, s.pad_h, s.pad_w, buf);
      conv_detail::direct_conv_forward_avx2(in, wg[g].view, bias ? bias + g * Kg : nullptr,
                                            s.OH, s.OW, live_lo, live_hi,
                                            y + (n * s.K + g * Kg) * P);
    }
  });
}

// dx is the stride-1 correlation of dy, padded by (R - 1 - pad_h, S - 1 - pad_w), with the
// kernel flipped and its channel axes swapped: w'[c][k][r][s] = w[k][c][R-1-r][S-1-s].
void direct_backward_input(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups, HW = s.H * s.W, P = s.OH * s.OW;
  const int64_t RS = s.R * s.S;
  // The correlation producing dx: input dy (Kg planes OH x OW), output H x W.
  Conv2dShape t = s;
  t.OH = s.H, t.OW = s.W;
  const int64_t off_h = (s.R - 1) * s.dil_h - s.pad_h, off_w = (s.S - 1) * s.dil_w - s.pad_w;
  const DirectInput din(t, s.OH, s.OW, off_h, off_w);
  const bool dilated = s.dil_h != 1 || s.dil_w != 1;
  const int64_t live_lo = dilated ? -s.H - s.R : off_h;
  const int64_t live_hi = dilated ? s.H + s.R + s.OH + std::abs(off_h) : off_h + s.OH;
  const int64_t plane = din.copy ? din.hp * din.wp : P, row = din.copy ? din.wp : s.OW;
  std::vector<PackedDirectWeights> wg;
  for (int64_t g = 0; g < G; ++g)
    wg.emplace_back(w + g * Kg * Cg * RS, Cg, Kg, s.R, s.S, RS, Cg * RS, true, plane, row,
                    s.dil_h, s.dil_w);
  const int64_t items = s.N * G, slots = slot_count(items);
  std::vector<float> scratch(slots * din.scratch_floats(Kg));
  run_slots(items, slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    float* buf = scratch.data() + slot * din.scratch_floats(Kg);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i % G, n = i / G;
      const conv_detail::Planes in =
          din.planes(dy + (n * s.K + g * Kg) * P, Kg, s.OH, s.OW, off_h, off_w, buf);
      conv_detail::direct_conv_forward_avx2(in, wg[g].view, nullptr, s.H, s.W, live_lo,
                                            live_hi, dx + (n * s.C + g * Cg) * HW);
    }
  });
}

// Images per chunk of the direct weight pass: x and dy of a chunk fit in L1 together.
int64_t weight_chunk(int64_t x_image_floats, int64_t dy_image_floats) {
  const int64_t bytes = int64_t(sizeof(float)) * (x_image_floats + dy_image_floats);
  return std::max<int64_t>(1, std::min(kDirectWeightChunk, kDirectWeightChunkBytes / bytes));
}

// dw[k][c][r][s] = sum over images and output pixels of dy[n][k][oh][ow] * x_pad[n][c][oh+r][ow+s].
// Images are split into blocks (reduction_blocks), each thread with its own lane accumulators
// (8 per tap); a block is walked in chunks of images whose x and dy fit in L1 together, and its
// lanes are summed into the block's partials, which are added in block order at the end.
void direct_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups, HW = s.H * s.W, P = s.OH * s.OW;
  const int64_t RS = s.R * s.S, w_size = s.K * Cg * RS, group_taps = Kg * Cg * RS;
  const DirectInput din(s, s.H, s.W, s.pad_h, s.pad_w);
  const int64_t owp = round8(s.OW);
  const bool dy_copy = owp != s.OW;  // lanes past OW must read zeros: they are summed
  const int64_t x_image = din.copy ? din.scratch_floats(Cg) : Cg * HW;
  const int64_t dy_image = Kg * s.OH * owp;
  const int64_t chunk = weight_chunk(x_image, dy_image);
  const int64_t x_floats = din.copy ? chunk * x_image : 0;
  const int64_t dy_floats = dy_copy ? chunk * dy_image : 0;
  const int64_t slots = slot_count(s.N);
  std::vector<float> scratch(slots * (x_floats + dy_floats));
  std::vector<float> lanes(slots * group_taps * 8);
  const ReductionBlocks rb = reduction_blocks(s.N, slots, chunk, w_size * sizeof(float));
  BlockPartials<float> partials(dw, w_size, rb.count);
  run_slots(s.N, slots, [&](int64_t slot, int64_t n0, int64_t n1) {
    float* xbuf = scratch.data() + slot * (x_floats + dy_floats);
    float* dybuf = xbuf + x_floats;
    float* lane = lanes.data() + slot * group_taps * 8;
    float* acc = partials.block(n0 / rb.block);
    std::fill(acc, acc + w_size, 0.0f);
    for (int64_t g = 0; g < G; ++g) {
      std::fill(lane, lane + group_taps * 8, 0.0f);
      for (int64_t c0 = n0; c0 < n1; c0 += chunk) {
        const int64_t nb = std::min(chunk, n1 - c0);
        conv_detail::Planes in{x + (c0 * s.C + g * Cg) * HW, HW, s.W};
        int64_t in_n = s.C * HW;
        if (din.copy) {
          for (int64_t j = 0; j < nb; ++j)
            din.planes(x + ((c0 + j) * s.C + g * Cg) * HW, Cg, s.H, s.W, s.pad_h, s.pad_w,
                       xbuf + j * x_image);
          in = {xbuf, din.hp * din.wp, din.wp};
          in_n = x_image;
        }
        conv_detail::Planes g_planes{dy + (c0 * s.K + g * Kg) * P, P, s.OW};
        int64_t dy_n = s.K * P;
        if (dy_copy) {
          for (int64_t j = 0; j < nb; ++j)
            pad_planes(dy + ((c0 + j) * s.K + g * Kg) * P, Kg, s.OH, s.OW, 0, 0, s.OH, owp,
                       dybuf + j * dy_image);
          g_planes = {dybuf, s.OH * owp, owp};
          dy_n = dy_image;
        }
        conv_detail::direct_conv_weight_lanes_avx2(in, in_n, g_planes, dy_n, nb, s.OH, s.OW, Kg,
                                                   Cg, s.R, s.S, lane);
      }
      conv_detail::sum_lanes_avx2(lane, group_taps, acc + g * group_taps);
    }
  }, rb.block);
  partials.add_up();
}

// ---- tap lists (AVX2, float32): depthwise and few input channels per group ------------------
// With one (or few) input channels per group the GEMM of the im2col path has k = Cg * R * S
// (9 for depthwise 3x3) and a column matrix 9x the input; the direct loops above run one scalar
// multiply-add per tap and output pixel. Here every output plane is a list of taps (weight,
// offset into a padded input buffer; conv_avx2.h) and the kernel runs 8 columns per vector:
//   forward          taps (c, r, s) of output channel k over the padded x planes of its group,
//                    columns split by phase (column % stride) so strided taps read unit-stride
//                    rows;
//   backward input   dx split into stride_h x stride_w phases; phase (a, b) is a stride-1
//                    correlation of the padded dy planes of the group with the taps (k, r, s)
//                    that reach it (for stride 1 the one phase is dx itself);
//   backward weight  tap_weight_avx2 per (k, c) over the same x buffer as forward, summed over
//                    the batch in image order within each group (one work item per group): the
//                    same bits for any thread count.
// Depthwise 3x3, C64 H28 N8, one core of an AMD EPYC Zen 3: see benchmarks/conv.py.
constexpr int64_t kTapMaxCg = 4;                         // input channels per group
constexpr int64_t kTapMaxStride = 4;                     // phases: stride_h * stride_w buffers
constexpr double kTapMaxBufferFloats = double(4 << 20);  // one thread's padded planes (16 MiB)

// Padded, column-phase-split input planes of one (image, group), as forward and weight read them:
// buf[c][b][hh][j] = x[c][hh - pad_h][j * stride_w + b - pad_w] (0 outside x), hh < hp, j < lb.
struct TapInput {
  int64_t hp, lb, phase, plane;
  explicit TapInput(const Conv2dShape& s)
      : hp((s.OH - 1) * s.stride_h + (s.R - 1) * s.dil_h + 1),
        lb(round8(s.OW) + (s.S - 1) * s.dil_w / s.stride_w + 1), phase(hp * lb),
        plane(s.stride_w * hp * lb) {}
  // The planes, then one padded input row of 2 * lb floats (the stride-2 split's source).
  int64_t floats(const Conv2dShape& s) const { return s.Cg() * plane + 2 * lb; }
  // Offset of tap (c, r, t) for output row 0, column 0; output row i adds i * row().
  int64_t offset(const Conv2dShape& s, int64_t c, int64_t r, int64_t t) const {
    const int64_t col = t * s.dil_w;
    return c * plane + (col % s.stride_w) * phase + r * s.dil_h * lb + col / s.stride_w;
  }
  int64_t row(const Conv2dShape& s) const { return s.stride_h * lb; }
  void fill(const Conv2dShape& s, const float* x_g, float* buf) const {
    const int64_t sw = s.stride_w;
    if (sw == 2) {
      // A padded row, then split into even and odd columns 8 at a time (the scalar stride-2
      // gather took 3/4 of a MobileNet stride-2 depthwise forward).
      float* row = buf + s.Cg() * plane;
      for (int64_t c = 0; c < s.Cg(); ++c) {
        for (int64_t hh = 0; hh < hp; ++hh) {
          float* e = buf + c * plane + hh * lb;
          const int64_t ih = hh - s.pad_h;
          if (ih < 0 || ih >= s.H) {
            std::fill(e, e + lb, 0.0f);
            std::fill(e + phase, e + phase + lb, 0.0f);
            continue;
          }
          pad_planes(x_g + (c * s.H + ih) * s.W, 1, 1, s.W, 0, s.pad_w, 1, 2 * lb, row);
          conv_detail::split_columns_avx2(row, lb, e, e + phase);
        }
      }
      return;
    }
    for (int64_t c = 0; c < s.Cg(); ++c) {
      for (int64_t b = 0; b < sw; ++b) {
        // Columns j whose input column j * sw + b - pad_w lies in [0, W).
        const int64_t lo = std::min(lb, std::max<int64_t>(0, ceil_div(s.pad_w - b, sw)));
        const int64_t hi = std::max(lo, std::min(lb, floor_div(s.W - 1 + s.pad_w - b, sw) + 1));
        for (int64_t hh = 0; hh < hp; ++hh) {
          float* d = buf + c * plane + b * phase + hh * lb;
          const int64_t ih = hh - s.pad_h;
          if (ih < 0 || ih >= s.H) {
            std::fill(d, d + lb, 0.0f);
            continue;
          }
          const float* src = x_g + (c * s.H + ih) * s.W + b - s.pad_w;  // src[j * sw]
          std::fill(d, d + lo, 0.0f);
          if (sw == 1) {
            std::memcpy(d + lo, src + lo, sizeof(float) * (hi - lo));
          } else {
            for (int64_t j = lo; j < hi; ++j) d[j] = src[j * sw];
          }
          std::fill(d + hi, d + lb, 0.0f);
        }
      }
    }
  }
};

// Padded dy planes of one (image, group) for the backward-input phases:
// buf[k][pt + oh][pl + ow] = dy[k][oh][ow], 0 elsewhere; rows x cols per plane.
struct TapGrad {
  int64_t pt, pl, rows, cols, plane;
  explicit TapGrad(const Conv2dShape& s) {
    const int64_t sh = s.stride_h, sw = s.stride_w;
    // Phase (a, b) output (i, j) reads dy[i + qr][j + qs], qr = (a + pad_h - r * dil_h) / sh.
    pt = std::max<int64_t>(0, -floor_div(s.pad_h - (s.R - 1) * s.dil_h, sh));
    pl = std::max<int64_t>(0, -floor_div(s.pad_w - (s.S - 1) * s.dil_w, sw));
    rows = pt + std::max(s.OH, ceil_div(s.H, sh) + floor_div(sh - 1 + s.pad_h, sh));
    cols = pl + std::max(s.OW, round8(ceil_div(s.W, sw)) + floor_div(sw - 1 + s.pad_w, sw));
    plane = rows * cols;
  }
  int64_t floats(const Conv2dShape& s) const { return s.Kg() * plane; }
  void fill(const Conv2dShape& s, const float* dy_g, float* buf) const {
    for (int64_t k = 0; k < s.Kg(); ++k) {
      float* p = buf + k * plane;
      std::fill(p, p + pt * cols, 0.0f);
      for (int64_t oh = 0; oh < s.OH; ++oh) {
        float* d = p + (pt + oh) * cols;
        std::fill(d, d + pl, 0.0f);
        std::memcpy(d + pl, dy_g + (k * s.OH + oh) * s.OW, sizeof(float) * s.OW);
        std::fill(d + pl + s.OW, d + cols, 0.0f);
      }
      std::fill(p + (pt + s.OH) * cols, p + plane, 0.0f);
    }
  }
};

// Whether the tap path takes the layer: float32 with AVX2, grouped with few input channels per
// group, small strides, and padded buffers of a bounded size (huge paddings or dilations keep
// the generic loops, which never copy).
template <typename T>
bool use_taps(const Conv2dShape& s) {
  if (!std::is_same<T, float>::value || !use_avx2() || s.groups == 1 || s.Cg() > kTapMaxCg ||
      s.stride_h > kTapMaxStride || s.stride_w > kTapMaxStride || s.OH < 1 || s.OW < 1)
    return false;
  // In double first: the int64 sizes below must not overflow for hostile paddings.
  const double hp = double(s.OH - 1) * s.stride_h + double(s.R - 1) * s.dil_h + 1;
  const double lb = double(s.OW) + 8 + double(s.S - 1) * s.dil_w / s.stride_w + 1;
  const double in_floats = double(s.Cg()) * s.stride_w * hp * lb;
  const double grad_rows = double(s.OH) + double(s.H) + double(s.R) * s.dil_h + s.pad_h + 2;
  const double grad_cols = double(s.OW) + double(s.W) + double(s.S) * s.dil_w + s.pad_w + 10;
  const double grad_floats = double(s.Kg()) * grad_rows * grad_cols + double(s.H) * s.W;
  return in_floats <= kTapMaxBufferFloats && grad_floats <= kTapMaxBufferFloats;
}

// Tap offsets of the forward layout, (c, r, s) order: the order of w[k]'s Cg * R * S values.
std::vector<int64_t> tap_offsets(const Conv2dShape& s, const TapInput& l) {
  std::vector<int64_t> off;
  for (int64_t c = 0; c < s.Cg(); ++c)
    for (int64_t r = 0; r < s.R; ++r)
      for (int64_t t = 0; t < s.S; ++t) off.push_back(l.offset(s, c, r, t));
  return off;
}

void taps_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                  float* y) {
  const TapInput l(s);
  const std::vector<int64_t> off = tap_offsets(s, l);
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups, taps = Cg * s.R * s.S;
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
  const int64_t items = s.N * G, slots = slot_count(items), per_slot = l.floats(s);
  std::vector<float> scratch(slots * per_slot);
  run_slots(items, slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    float* buf = scratch.data() + slot * per_slot;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n = i / G, g = i % G;
      l.fill(s, x + (n * s.C + g * Cg) * HW, buf);
      for (int64_t kk = 0; kk < Kg; ++kk) {
        const int64_t k = g * Kg + kk;
        conv_detail::tap_correlate_avx2(buf, l.row(s), off.data(), w + k * taps, taps, s.OH,
                                        s.OW, bias ? bias[k] : 0.0f, y + (n * s.K + k) * P,
                                        s.OW);
      }
    }
  });
}

// One phase (a, b) of dx: rows a + i * stride_h, columns b + j * stride_w.
struct TapPhase {
  int64_t a, b, rows, cols;
  std::vector<int64_t> off;                 // into the TapGrad buffer, per tap
  std::vector<int64_t> kk, r, t;            // the tap's output channel (in the group) and (r, s)
};

std::vector<TapPhase> tap_phases(const Conv2dShape& s, const TapGrad& l) {
  std::vector<TapPhase> phases;
  const int64_t sh = s.stride_h, sw = s.stride_w;
  for (int64_t a = 0; a < std::min(sh, s.H); ++a) {
    for (int64_t b = 0; b < std::min(sw, s.W); ++b) {
      TapPhase ph{a, b, ceil_div(s.H - a, sh), ceil_div(s.W - b, sw), {}, {}, {}, {}};
      for (int64_t kk = 0; kk < s.Kg(); ++kk) {
        for (int64_t r = 0; r < s.R; ++r) {
          const int64_t nr = a + s.pad_h - r * s.dil_h;
          if (nr - floor_div(nr, sh) * sh != 0) continue;
          for (int64_t t = 0; t < s.S; ++t) {
            const int64_t nc = b + s.pad_w - t * s.dil_w;
            if (nc - floor_div(nc, sw) * sw != 0) continue;
            ph.off.push_back(kk * l.plane + (floor_div(nr, sh) + l.pt) * l.cols +
                             floor_div(nc, sw) + l.pl);
            ph.kk.push_back(kk), ph.r.push_back(r), ph.t.push_back(t);
          }
        }
      }
      phases.push_back(std::move(ph));
    }
  }
  return phases;
}

void taps_backward_input(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const TapGrad l(s);
  const std::vector<TapPhase> phases = tap_phases(s, l);
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups, RS = s.R * s.S;
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
  const bool one_phase = s.stride_h == 1 && s.stride_w == 1;
  int64_t most_taps = 0;
  for (const TapPhase& ph : phases) most_taps = std::max<int64_t>(most_taps, ph.off.size());
  const int64_t items = s.N * G, slots = slot_count(items);
  // Strided layers: all phases of one dx plane in tmp (phase by phase, each rows x cols), then
  // written to dx row by row (two column phases interleaved 8 at a time when stride_w is 2).
  std::vector<int64_t> phase_at;
  int64_t tmp_floats = 0;
  for (const TapPhase& ph : phases) phase_at.push_back(tmp_floats), tmp_floats += ph.rows * ph.cols;
  const int64_t per_slot = l.floats(s) + (one_phase ? 0 : tmp_floats) + most_taps;
  std::vector<float> scratch(slots * per_slot);
  run_slots(items, slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    float* buf = scratch.data() + slot * per_slot;
    float* tmp = buf + l.floats(s);           // one phase of a dx plane (strided layers)
    float* wl = tmp + (one_phase ? 0 : tmp_floats);  // a phase's tap weights, one channel
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t n = i / G, g = i % G;
      l.fill(s, dy + (n * s.K + g * Kg) * P, buf);
      for (int64_t c = 0; c < Cg; ++c) {
        float* dxp = dx + (n * s.C + g * Cg + c) * HW;
        for (size_t q_ph = 0; q_ph < phases.size(); ++q_ph) {
          const TapPhase& ph = phases[q_ph];
          const int64_t taps = ph.off.size();
          for (int64_t q = 0; q < taps; ++q)
            wl[q] = w[((g * Kg + ph.kk[q]) * Cg + c) * RS + ph.r[q] * s.S + ph.t[q]];
          float* out = one_phase ? dxp : tmp + phase_at[q_ph];
          conv_detail::tap_correlate_avx2(buf, l.cols, ph.off.data(), wl, taps, ph.rows,
                                          ph.cols, 0.0f, out, one_phase ? s.W : ph.cols);
        }
        if (one_phase) continue;
        // Phases are in (a, b) order, b fastest: phase (a, b) is phases[a * nb + b].
        const int64_t nb = std::min(s.stride_w, s.W);
        for (int64_t ih = 0; ih < s.H; ++ih) {
          const int64_t a = ih % s.stride_h, ii = ih / s.stride_h;
          float* d = dxp + ih * s.W;
          const TapPhase& p0 = phases[a * nb];
          const float* r0 = tmp + phase_at[a * nb] + ii * p0.cols;
          if (nb == 2) {
            const float* r1 = tmp + phase_at[a * nb + 1] + ii * phases[a * nb + 1].cols;
            conv_detail::interleave_columns_avx2(r0, r1, s.W, d);
            continue;
          }
          for (int64_t b = 0; b < nb; ++b) {
            const float* src = tmp + phase_at[a * nb + b] + ii * phases[a * nb + b].cols;
            for (int64_t j = 0; j < phases[a * nb + b].cols; ++j) d[b + j * s.stride_w] = src[j];
          }
        }
      }
    }
  });
}

void taps_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const TapInput l(s);
  const std::vector<int64_t> off = tap_offsets(s, l);
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups, RS = s.R * s.S, taps = Cg * RS;
  const int64_t HW = s.H * s.W, P = s.OH * s.OW;
  // One item per group: its images in order, so the sums do not depend on the thread count.
  const int64_t slots = slot_count(G), per_slot = l.floats(s);
  std::vector<float> scratch(slots * per_slot);
  std::vector<double> acc(slots * Kg * taps);
  run_slots(G, slots, [&](int64_t slot, int64_t g0, int64_t g1) {
    float* buf = scratch.data() + slot * per_slot;
    double* a = acc.data() + slot * Kg * taps;
    for (int64_t g = g0; g < g1; ++g) {
      std::fill(a, a + Kg * taps, 0.0);
      for (int64_t n = 0; n < s.N; ++n) {
        l.fill(s, x + (n * s.C + g * Cg) * HW, buf);
        for (int64_t kk = 0; kk < Kg; ++kk)
          for (int64_t c = 0; c < Cg; ++c)
            conv_detail::tap_weight_avx2(buf, l.row(s), off.data() + c * RS, RS,
                                         dy + (n * s.K + g * Kg + kk) * P, s.OW, s.OH, s.OW,
                                         a + (kk * Cg + c) * RS);
      }
      for (int64_t e = 0; e < Kg * taps; ++e) dw[g * Kg * taps + e] = float(a[e]);
    }
  }, 1);
}

int64_t taps_scratch_floats(const Conv2dShape& s, Pass pass) {
  if (pass == Pass::kBackwardInput) {
    const TapGrad l(s);
    const int64_t most_taps = s.Kg() * s.R * s.S;
    // The phases of a dx plane hold H x W values (plus nothing when stride is 1: dx itself).
    return slot_count(s.N * s.groups) * (l.floats(s) + s.H * s.W + most_taps);
  }
  const TapInput l(s);
  if (pass == Pass::kForward) return slot_count(s.N * s.groups) * l.floats(s);
  return slot_count(s.groups) * (l.floats(s) + 2 * s.Kg() * s.Cg() * s.R * s.S);
}

// ---- row-flat path (AVX-512, float32): stride 1 down the rows, no column matrix ---------------
//
// Planes whose rows are exactly OW wide make every kernel row r one shift of the flattened plane
// (conv_avx512.h), so all 16 lanes of a vector hold output pixels even for 8- or 12-wide rows.
//   forward          y[k][q]   = sum_{c, s, r} w[k][c][r][s] * X_s[c][q + r * dil_h * OW]
//                    with the S shifted copies X_s[c][h][ow] = x_pad[c][h][ow * stride_w + s * dil_w]
//   backward input   DX_s[c][q] = sum_{k, r'} w[k][c][R-1-r'][s] * dy_pad[k][q + r' * dil_h * OW]
//                    (dy with (R - 1) * dil_h zero rows above and below), then
//                    dx[c][h][ow * stride_w + s * dil_w - pad_w] += DX_s[c][h + pad_h][ow]:
//                    the column taps are the cheap scatter, so no lane reads a zero column
//   backward weight  dw[k][c][r][s] = sum_{n, q} dy[n][k][q] * X_s[n][c][q + r * dil_h * OW]
// (See version 6 at the top of the file for why and how fast.)
#ifdef PYDL_HAVE_AVX512_KERNELS
constexpr int64_t kRowflatMaxKg = 32;
constexpr int64_t kRowflatMaxWeights = 16 * 1024;       // Kg * Cg * R * S (lanes: x16 floats)
constexpr int64_t kRowflatMaxImageFloats = 32 * 1024;   // one image's shifted copies (128 KiB)
constexpr int64_t kRowflatSlack = 16;                   // floats read past a plane's last pixel
constexpr int64_t kRowflatChunkFloats = 64 * 1024;      // shifted copies of a weight-pass chunk
constexpr int64_t kRowflatMaxChunk = 8;  // dy of 8 images, 4 KiB apart, share L1 sets

// Scratch kept from one call to the next (per calling thread; kernel calls do not nest). The
// row-flat passes take a few hundred KiB, and a fresh allocation that large comes from mmap:
// every call would fault its pages in again, which costs as much as a LeNet layer's pass.
// Bounded by the row-flat size limits (a few MiB per calling thread).
// Returned 64-byte aligned: with every per-image block a multiple of 16 floats (round16), the
// kernels' planes start on cache lines and fewer of their loads straddle two.
float* reusable_scratch(int64_t floats) {
  thread_local std::vector<float> buffer;
  if (int64_t(buffer.size()) < floats + 16) buffer.resize(floats + 16);
  const uintptr_t p = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + ((64 - p % 64) % 64) / sizeof(float);
}

inline int64_t round16(int64_t v) { return (v + 15) / 16 * 16; }

// Sizes of the row-flat buffers for one image and group.
struct RowflatLayout {
  int64_t rr;          // (R - 1) * dil_h: rows a kernel spans past its first
  int64_t x_plane;     // (OH + rr) * OW: one shifted copy X_s[c]
  int64_t x_image;     // Cg * S copies + slack
  int64_t dy_plane;    // (OH + 2 rr) * OW: dy with rr zero rows above and below
  int64_t dy_image;    // Kg planes + slack
  int64_t h0, h1;      // padded-input rows whose dx the backward-input pass computes
  int64_t dx_image;    // Cg * S planes of (h1 - h0) * OW
  explicit RowflatLayout(const Conv2dShape& s)
      : rr((s.R - 1) * s.dil_h), x_plane((s.OH + rr) * s.OW),
        x_image(round16(s.Cg() * s.S * x_plane + kRowflatSlack)),
        dy_plane((s.OH + 2 * rr) * s.OW), dy_image(round16(s.Kg() * dy_plane + kRowflatSlack)),
        h0(s.pad_h), h1(std::max(h0, std::min(s.pad_h + s.H, s.OH + rr))),
        dx_image(round16(s.Cg() * s.S * (h1 - h0) * s.OW)) {}
};

template <typename T>
bool use_rowflat(const Conv2dShape& s, Pass pass) {
  if (!std::is_same<T, float>::value || !use_avx512() || s.stride_h != 1 || is_depthwise(s) ||
      is_pointwise(s) || s.Kg() > kRowflatMaxKg ||
      s.Kg() * s.Cg() * s.R * s.S > kRowflatMaxWeights)
    return false;
  const RowflatLayout l(s);
  if (pass == Pass::kBackwardInput)
    return l.dy_image <= kRowflatMaxImageFloats && l.dx_image <= kRowflatMaxImageFloats;
  if (pass == Pass::kBackwardWeight && s.K * s.Cg() * s.R * s.S > kRowflatMaxWeights)
    return false;  // the weight lanes hold every group's taps (16 floats each) per thread
  return l.x_image <= kRowflatMaxImageFloats;
}

// X_s[c][h][ow] = x_g[c][h - pad_h][ow * stride_w + s * dil_w - pad_w] (0 outside x) for the
// Cg channels of x_g, and the slack zeroed; unit column stride through masked AVX-512 rows.
void rowflat_shifted_copies(const Conv2dShape& s, const RowflatLayout& l, const float* x_g,
                            float* dst) {
  const int64_t OW = s.OW, hp = s.OH + l.rr;
  std::fill(dst + s.Cg() * s.S * l.x_plane, dst + l.x_image, 0.0f);  // slack and rounding
  if (s.stride_w == 1)
    return conv_detail::rowflat_shifted_copies_avx512(x_g, s.Cg(), s.H, s.W, s.S, s.dil_w,
                                                      s.pad_h, s.pad_w, hp, OW, dst);
  for (int64_t c = 0; c < s.Cg(); ++c) {
    for (int64_t t = 0; t < s.S; ++t) {
      const int64_t col0 = t * s.dil_w - s.pad_w;  // input column of ow = 0
      int64_t lo, hi;
      valid_range(0, OW, col0, s.stride_w, s.W, &lo, &hi);
      for (int64_t h = 0; h < hp; ++h) {
        float* d = dst + ((c * s.S + t) * hp + h) * OW;
        const int64_t ih = h - s.pad_h;
        if (ih < 0 || ih >= s.H) {
          std::fill(d, d + OW, 0.0f);
          continue;
        }
        const float* src = x_g + (c * s.H + ih) * s.W + col0;  // src[ow * stride_w]
        std::fill(d, d + lo, 0.0f);
        for (int64_t ow = lo; ow < hi; ++ow) d[ow] = src[ow * s.stride_w];
        std::fill(d + hi, d + OW, 0.0f);
      }
    }
  }
}

// One group's weights for rowflat_correlate_avx512 (blocks of kDirectKB output rows, taps
// t = r * J + j): value(m, r, j) and offset(r, j) are given by the pass.
struct RowflatWeights {
  std::vector<float> packed;
  std::vector<int64_t> offsets;
  conv_detail::DirectWeights view;
  template <typename Value, typename Offset>
  RowflatWeights(int64_t M, int64_t R, int64_t J, Value value, Offset offset) {
    const int64_t KB = conv_detail::kDirectKB, taps = R * J, blocks = (M + KB - 1) / KB;
    packed.assign(blocks * taps * KB, 0.0f);
    offsets.resize(taps);
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t j = 0; j < J; ++j) {
        const int64_t t = r * J + j;
        offsets[t] = offset(r, j);
        for (int64_t m = 0; m < M; ++m) packed[((m / KB) * taps + t) * KB + m % KB] = value(m, r, j);
      }
    }
    view = {packed.data(), offsets.data(), M, R, taps};
  }
};

void rowflat_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                     float* y) {
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups, HW = s.H * s.W, P = s.OH * s.OW;
  const int64_t R = s.R, S = s.S, RS = R * S, J = Cg * S;
  const RowflatLayout l(s);
  std::vector<RowflatWeights> wg;
  for (int64_t g = 0; g < G; ++g) {
    const float* w_g = w + g * Kg * Cg * RS;
    wg.emplace_back(
        Kg, R, J, [&](int64_t m, int64_t r, int64_t j) { return w_g[m * Cg * RS + (j / S) * RS + r * S + j % S]; },
        [&](int64_t r, int64_t j) { return j * l.x_plane + r * s.dil_h * s.OW; });
  }
  const int64_t items = s.N * G, slots = slot_count(items);
  float* scratch = reusable_scratch(slots * l.x_image);  // written before read
  run_slots(items, slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    float* buf = scratch + slot * l.x_image;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i % G, n = i / G;
      rowflat_shifted_copies(s, l, x + (n * s.C + g * Cg) * HW, buf);
      conv_detail::rowflat_correlate_avx512(buf, wg[g].view, bias ? bias + g * Kg : nullptr, P,
                                            s.OW, s.dil_h, s.pad_h, s.pad_h + s.H,
                                            y + (n * s.K + g * Kg) * P, P);
    }
  });
}

// Backward-input of one image and group at a time (the scratch holds dy_pad and the DX_s planes).
class RowflatBackwardInput {
 public:
  RowflatBackwardInput(const Conv2dShape& s, const float* w)
      : s_(s), l_(s), q_((l_.h1 - l_.h0) * s.OW) {
    const int64_t Kg = s.Kg(), Cg = s.Cg(), R = s.R, S = s.S, RS = R * S;
    for (int64_t g = 0; g < s.groups; ++g) {
      const float* w_g = w + g * Kg * Cg * RS;
      // Output rows m = (c, s), taps (r', k): w[k][c][R-1-r'][s] on dy_pad shifted r' rows.
      wg_.emplace_back(
          Cg * S, R, Kg,
          [&](int64_t m, int64_t r, int64_t k) {
            return w_g[k * Cg * RS + (m / S) * RS + (R - 1 - r) * S + m % S];
          },
          [&](int64_t r, int64_t k) { return k * l_.dy_plane + r * s.dil_h * s.OW; });
    }
  }
  int64_t scratch_floats() const { return l_.dy_image + l_.dx_image; }

  // dx of image n, group g (its Cg planes, overwritten).
  void image(const float* dy, float* dx, int64_t n, int64_t g, float* scratch) const {
    const Conv2dShape& s = s_;
    const int64_t Kg = s.Kg(), Cg = s.Cg(), HW = s.H * s.W, P = s.OH * s.OW, OW = s.OW;
    const int64_t S = s.S;
    float* dyp = scratch;
    float* dxs = dyp + l_.dy_image;
    const float* dy_g = dy + (n * s.K + g * Kg) * P;
    for (int64_t k = 0; k < Kg; ++k) {
      float* d = dyp + k * l_.dy_plane;
      std::fill(d, d + l_.rr * OW, 0.0f);
      std::memcpy(d + l_.rr * OW, dy_g + k * P, sizeof(float) * P);
      std::fill(d + l_.rr * OW + P, d + l_.dy_plane, 0.0f);
    }
    std::fill(dyp + Kg * l_.dy_plane, dyp + l_.dy_image, 0.0f);  // slack and rounding
    float* dx_g = dx + (n * s.C + g * Cg) * HW;
    std::fill(dx_g, dx_g + Cg * HW, 0.0f);
    if (q_ == 0) return;
    conv_detail::rowflat_correlate_avx512(dyp + l_.h0 * OW, wg_[g].view, nullptr, q_, OW, s.dil_h,
                                          l_.rr - l_.h0, l_.rr + s.OH - l_.h0, dxs, q_);
    // The column taps: DX_s[c] row h adds into dx row h - pad_h at columns ow * stride_w + col0.
    if (s.stride_w == 1) {
      conv_detail::rowflat_gather_columns_avx512(dxs, Cg, S, l_.h1 - l_.h0, OW, s.dil_w,
                                                 s.pad_w, s.W, dx_g + (l_.h0 - s.pad_h) * s.W,
                                                 HW);
      return;
    }
    for (int64_t c = 0; c < Cg; ++c) {
      for (int64_t t = 0; t < S; ++t) {
        const int64_t col0 = t * s.dil_w - s.pad_w;
        int64_t lo, hi;
        valid_range(0, OW, col0, s.stride_w, s.W, &lo, &hi);
        for (int64_t h = l_.h0; h < l_.h1; ++h) {
          const float* src = dxs + (c * S + t) * q_ + (h - l_.h0) * OW;
          float* d = dx_g + (c * s.H + h - s.pad_h) * s.W + col0;
          for (int64_t ow = lo; ow < hi; ++ow) d[ow * s.stride_w] += src[ow];
        }
      }
    }
  }

 private:
  const Conv2dShape& s_;
  RowflatLayout l_;
  int64_t q_;  // pixels of the DX_s planes
  std::vector<RowflatWeights> wg_;
};

// Images per chunk of the row-flat weight pass: their shifted copies stay in L2.
int64_t rowflat_weight_chunk(const RowflatLayout& l) {
  return std::max<int64_t>(1, std::min(kRowflatMaxChunk, kRowflatChunkFloats / l.x_image));
}

// Weight gradient of a block of images, chunk by chunk, in lanes (16 partial sums per tap, all
// groups) that are summed once per block into that block's partials (reduction_blocks).
class RowflatBackwardWeight {
 public:
  explicit RowflatBackwardWeight(const Conv2dShape& s)
      : s_(s), l_(s), chunk_(rowflat_weight_chunk(l_)), taps_(s.Kg() * s.Cg() * s.R * s.S) {}
  int64_t chunk() const { return chunk_; }
  int64_t scratch_floats() const { return chunk_ * l_.x_image + s_.groups * taps_ * 17; }

  // Adds images [n0, n1) into the lanes in scratch (first: the thread's first block, which
  // overwrites them instead).
  void images(const float* x, const float* dy, int64_t n0, int64_t n1, float* scratch,
              bool first) const {
    const Conv2dShape& s = s_;
    const int64_t Kg = s.Kg(), Cg = s.Cg(), HW = s.H * s.W, P = s.OH * s.OW;
    float* xbuf = scratch;
    float* lanes = xbuf + chunk_ * l_.x_image;
    for (int64_t g = 0; g < s.groups; ++g) {
      for (int64_t c0 = n0; c0 < n1; c0 += chunk_) {
        const int64_t nb = std::min(chunk_, n1 - c0);
        for (int64_t j = 0; j < nb; ++j)
          rowflat_shifted_copies(s, l_, x + ((c0 + j) * s.C + g * Cg) * HW, xbuf + j * l_.x_image);
        conv_detail::rowflat_weight_lanes_avx512(
            xbuf, l_.x_image, l_.x_plane, Cg * s.S, s.R, s.dil_h * s.OW,
            dy + (c0 * s.K + g * Kg) * P, s.K * P, Kg, P, nb, !(first && c0 == n0),
            lanes + g * taps_ * 16);
      }
    }
  }

  // Adds the lanes' sums into acc (K x Cg x R x S).
  void finish(float* scratch, float* acc) const {
    const Conv2dShape& s = s_;
    const int64_t Kg = s.Kg(), Cg = s.Cg(), R = s.R, S = s.S, RS = R * S, J = Cg * S;
    float* lanes = scratch + chunk_ * l_.x_image;
    float* sums = lanes + s.groups * taps_ * 16;
    conv_detail::sum_lanes16_avx512(lanes, s.groups * taps_, sums);
    // Lane sums come in (g, k, (c, s), r) order; dw is (g, k, c, r, s).
    for (int64_t g = 0; g < s.groups; ++g) {
      const float* sums_g = sums + g * taps_;
      float* acc_g = acc + g * taps_;
      for (int64_t k = 0; k < Kg; ++k)
        for (int64_t j = 0; j < J; ++j)
          for (int64_t r = 0; r < R; ++r)
            acc_g[k * Cg * RS + (j / S) * RS + r * S + j % S] += sums_g[(k * J + j) * R + r];
    }
  }

 private:
  const Conv2dShape& s_;
  RowflatLayout l_;
  int64_t chunk_, taps_;
};

void rowflat_backward_input(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const RowflatBackwardInput bwd(s, w);
  const int64_t items = s.N * s.groups, slots = slot_count(items);
  float* scratch = reusable_scratch(slots * bwd.scratch_floats());  // written before read
  run_slots(items, slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      bwd.image(dy, dx, i / s.groups, i % s.groups, scratch + slot * bwd.scratch_floats());
  });
}

// The sum of dy over pixels, per output channel of image n, added into acc (double: a batch
// of such sums is long).
void add_bias_grad_image(const Conv2dShape& s, const float* dy, int64_t n, double* acc) {
  const int64_t P = s.OH * s.OW;
  for (int64_t k = 0; k < s.K; ++k) {
    const float* row = dy + (n * s.K + k) * P;
    float a[16] = {};  // independent add chains that the compiler vectorises
    int64_t p = 0;
    for (; p + 16 <= P; p += 16)
      for (int j = 0; j < 16; ++j) a[j] += row[p + j];
    float t = 0;
    for (int j = 0; j < 16; ++j) t += a[j];
    for (; p < P; ++p) t += row[p];
    acc[k] += double(t);
  }
}

// dx, dw and dbias (any may be null: not wanted) in one pass over the batch: each block of
// images gets its weight lanes, then its dx and bias sums while its dy is still in cache, and
// the thread pool is woken once instead of three times.
void rowflat_backward(const Conv2dShape& s, const float* x, const float* dy, const float* w,
                      float* dx, float* dw, float* dbias) {
  const int64_t w_size = s.K * s.Cg() * s.R * s.S;
  std::optional<RowflatBackwardInput> bwd_in;
  if (dx) bwd_in.emplace(s, w);
  const RowflatBackwardWeight bwd_w(s);
  const int64_t in_floats = dx ? bwd_in->scratch_floats() : 0;
  const int64_t w_floats = dw ? bwd_w.scratch_floats() : 0;
  const int64_t slots = slot_count(s.N), per_slot = round16(in_floats + w_floats);
  float* scratch = reusable_scratch(slots * per_slot);  // written before read
  // Blocks of whole weight chunks; each block sums its weight lanes (and bias sums) into partials
  // of its own, added in block order afterwards (reduction_blocks: the same result every run).
  const ReductionBlocks rb =
      reduction_blocks(s.N, slots, bwd_w.chunk(), (dw ? w_size : 0) * sizeof(float));
  BlockPartials<float> w_partials(dw, dw ? w_size : 0, dw ? rb.count : 1);
  std::vector<double> bias_acc(dbias ? rb.count * s.K : 0);
  std::atomic<int64_t> next{0};
  parallel_for(slots, 1, [&](int64_t s0, int64_t s1) {
    for (int64_t slot = s0; slot < s1; ++slot) {
      float* buf = scratch + slot * per_slot;
      for (;;) {
        const int64_t n0 = next.fetch_add(rb.block);
        if (n0 >= s.N) break;
        const int64_t n1 = std::min(s.N, n0 + rb.block), b = n0 / rb.block;
        if (dw) {
          bwd_w.images(x, dy, n0, n1, buf + in_floats, true);
          float* acc = w_partials.block(b);
          std::fill(acc, acc + w_size, 0.0f);
          bwd_w.finish(buf + in_floats, acc);
        }
        for (int64_t n = n0; n < n1; ++n) {
          if (dx)
            for (int64_t g = 0; g < s.groups; ++g) bwd_in->image(dy, dx, n, g, buf);
          if (dbias) add_bias_grad_image(s, dy, n, bias_acc.data() + b * s.K);
        }
      }
    }
  });
  if (dw) w_partials.add_up();
  if (dbias) {
    for (int64_t b = 1; b < rb.count; ++b)
      for (int64_t k = 0; k < s.K; ++k) bias_acc[k] += bias_acc[b * s.K + k];
    for (int64_t k = 0; k < s.K; ++k) dbias[k] = float(bias_acc[k]);
  }
}

int64_t rowflat_scratch_floats(const Conv2dShape& s, Pass pass) {
  const RowflatLayout l(s);
  if (pass == Pass::kForward) return slot_count(s.N * s.groups) * l.x_image;
  if (pass == Pass::kBackwardInput) return slot_count(s.N * s.groups) * (l.dy_image + l.dx_image);
  // The weight pass, fused with the backward-input one when both are wanted.
  const int64_t w_size = s.K * s.Cg() * s.R * s.S;
  return slot_count(s.N) * (rowflat_weight_chunk(l) * l.x_image + w_size * 17 + l.dy_image +
                            l.dx_image) +
         (reduction_blocks(s.N, slot_count(s.N), rowflat_weight_chunk(l), w_size * 4).count - 1) *
             w_size;
}
#else
template <typename T>
bool use_rowflat(const Conv2dShape&, Pass) { return false; }
#endif

// ---- Winograd F(2x2, 3x3) (AVX2, float32): 3x3, stride 1, enough channels for the GEMMs -------
// 2.25x fewer multiplications than the direct loops: each 2x2 output tile costs 16 multiply-adds
// per (input, output) channel pair instead of 36, in 16 GEMMs (one per position of the 4x4
// transformed tile) of Kout x Cin by Cin x tiles. Transforms add ~25 float adds per tile and
// channel. Errors grow by a small constant factor over the direct sum (the transforms' entries
// are 0, +-1/2, +-1), well inside float32 tolerances for 3x3 kernels.

constexpr int64_t kWinogradMinChannels = 16;  // Cg and Kg: below, the 16 GEMMs are too thin
constexpr int64_t kWinogradMinWidth = 8;      // output columns (four tiles)
constexpr int64_t kWinogradChunkTiles = 128;  // tiles per chunk: V and M chunks stay in L2

template <typename T>
bool use_winograd(const Conv2dShape& s, Pass pass) {
  if (!std::is_same<T, float>::value || !use_avx2() || s.R != 3 || s.S != 3 ||
      s.stride_h != 1 || s.stride_w != 1 || s.dil_h != 1 || s.dil_w != 1 ||
      s.Cg() < kWinogradMinChannels || s.Kg() < kWinogradMinChannels)
    return false;
  if (pass == Pass::kBackwardInput) return s.W >= kWinogradMinWidth && s.H >= 2;
  return s.OW >= kWinogradMinWidth && s.OH >= 2;  // forward and weight: tiles of the output
}

// Whether none of a[0..n) is inf or NaN (exponent bits all ones), in one read.
bool all_finite(const float* a, int64_t n) {
  if (n <= 0) return true;
  std::atomic<bool> finite{true};
  parallel_for(n, 1 << 16, [&](int64_t i0, int64_t i1) {
    uint32_t bad = 0;  // integer test: vectorises without -ffast-math, no FP exceptions
    for (int64_t i = i0; i < i1; ++i) {
      uint32_t bits;
      std::memcpy(&bits, a + i, sizeof bits);
      bad |= uint32_t((bits & 0x7f800000u) == 0x7f800000u);
    }
    if (bad) finite.store(false, std::memory_order_relaxed);
  });
  return finite.load();
}

// Winograd's transforms add and subtract neighbouring inputs (B^T d B) and products (A^T m A),
// so one inf in a tile turns into inf - inf = NaN in outputs that a direct convolution (and
// PyTorch) gives as +-inf. Tensors holding inf or NaN therefore take the next path down; the scan
// reads each tensor once, about 1% of a convolution large enough for Winograd (>= 288 FLOPs per
// input element).
template <typename T>
bool take_winograd(const Conv2dShape& s, Pass pass, const T* a, int64_t na, const T* b,
                   int64_t nb) {
  if (!use_winograd<T>(s, pass)) return false;
  if constexpr (std::is_same<T, float>::value)
    return all_finite(a, na) && all_finite(b, nb);
  return true;
}

// U[xi][k][c] = (G g G^T)[xi] for the 3x3 kernel g = w[k * w_k + c * w_c + ...] (flipped for
// the backward-input correlation), G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]].
std::unique_ptr<float[]> winograd_weights(const float* w, int64_t Kout, int64_t Cin,
                                          int64_t w_k, int64_t w_c, bool flip) {
  std::unique_ptr<float[]> u(new float[16 * Kout * Cin]);  // every value written below
  // The backward-input call reads w with its channel axes swapped, consecutive c Kout * 9 floats
  // apart: one copy in (Kout, Cin, 9) order first, read in storage order, so the gathers below
  // read consecutive kernels (the scattered gathers were 16% of a batch-1 ResNet C256 H14
  // backward-input pass).
  std::vector<float> swapped;
  if (w_c != 9) {
    swapped.resize(Kout * Cin * 9);
    for (int64_t c = 0; c < Cin; ++c)
      for (int64_t k = 0; k < Kout; ++k)
        std::memcpy(swapped.data() + (k * Cin + c) * 9, w + k * w_k + c * w_c, 9 * sizeof(float));
    w = swapped.data(), w_k = Cin * 9, w_c = 9;
  }
  // One output channel at a time, its Cin kernels gathered tap by tap into rows g[tap][c]:
  // every step below is then the same arithmetic on whole rows (vectorised over c), with the
  // 16 results stored contiguously (the per-(k, c) scalar version, with the flipped reads
  // Cin * 9 floats apart, took a third of a batch-1 ResNet C256 H14 forward).
  std::vector<float> g(9 * Cin), gg(12 * Cin);
  for (int64_t k = 0; k < Kout; ++k) {
    for (int tap = 0; tap < 9; ++tap) {
      const int64_t src = flip ? 8 - tap : tap;
      float* row = g.data() + tap * Cin;
      for (int64_t c = 0; c < Cin; ++c) row[c] = w[k * w_k + c * w_c + src];
    }
    for (int t = 0; t < 3; ++t) {  // G g: rows 0..3 of column t
      const float* g0 = g.data() + (0 * 3 + t) * Cin;
      const float* g1 = g.data() + (1 * 3 + t) * Cin;
      const float* g2 = g.data() + (2 * 3 + t) * Cin;
      float* o0 = gg.data() + (0 * 3 + t) * Cin;
      float* o1 = gg.data() + (1 * 3 + t) * Cin;
      float* o2 = gg.data() + (2 * 3 + t) * Cin;
      float* o3 = gg.data() + (3 * 3 + t) * Cin;
      for (int64_t c = 0; c < Cin; ++c) {
        o0[c] = g0[c];
        o1[c] = 0.5f * (g0[c] + g1[c] + g2[c]);
        o2[c] = 0.5f * (g0[c] - g1[c] + g2[c]);
        o3[c] = g2[c];
      }
    }
    for (int a = 0; a < 4; ++a) {  // (G g) G^T
      const float* h0 = gg.data() + (a * 3 + 0) * Cin;
      const float* h1 = gg.data() + (a * 3 + 1) * Cin;
      const float* h2 = gg.data() + (a * 3 + 2) * Cin;
      float* u0 = u.get() + ((4 * a + 0) * Kout + k) * Cin;
      float* u1 = u.get() + ((4 * a + 1) * Kout + k) * Cin;
      float* u2 = u.get() + ((4 * a + 2) * Kout + k) * Cin;
      float* u3 = u.get() + ((4 * a + 3) * Kout + k) * Cin;
      for (int64_t c = 0; c < Cin; ++c) {
        u0[c] = h0[c];
        u1[c] = 0.5f * (h0[c] + h1[c] + h2[c]);
        u2[c] = 0.5f * (h0[c] - h1[c] + h2[c]);
        u3[c] = h2[c];
      }
    }
  }
  return u;
}

// y (Kout planes OH x OW) = the stride-1 3x3 correlation of `in` (Cin planes H x W, read as
// in[oh + r - off_h][ow + s - off_w], zero outside) with the transformed weights u, plus bias.
// One image per work item; each thread has its padded input, V and M chunks.
// n rounded up past the next multiple of 1024 floats (4 KiB) by 16 floats (64 bytes) when it
// would otherwise be one, so that matrices n apart do not share L1 sets.
int64_t skew_4k(int64_t n) {
  const int64_t r = n % 1024;
  return (r < 16 || r > 1024 - 16) ? (n - r) + 1024 + 16 : n;
}

// Padded planes split by column parity: even[c][hh][j] = padded[c][hh][2j], odd[..][j] =
// padded[..][2j + 1], where padded[c][hh][ww] = src[c][hh - off_h][ww - off_w] (0 outside).
// The Winograd input transform reads its stride-2 tiles from them with unit-stride loads.
void pad_split_planes(const float* src, int64_t C, int64_t H, int64_t W, int64_t off_h,
                      int64_t off_w, int64_t hp, int64_t half, float* row, float* even,
                      float* odd) {
  const int64_t wp = 2 * half;
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t hh = 0; hh < hp; ++hh) {
      float* e = even + (c * hp + hh) * half;
      float* o = odd + (c * hp + hh) * half;
      const int64_t ih = hh - off_h;
      if (ih < 0 || ih >= H) {
        std::fill(e, e + half, 0.0f);
        std::fill(o, o + half, 0.0f);
        continue;
      }
      pad_planes(src + (c * H + ih) * W, 1, 1, W, 0, off_w, 1, wp, row);  // one padded row
      conv_detail::split_columns_avx2(row, half, e, o);
    }
  }
}

// y (Kout planes OH x OW) = the stride-1 3x3 correlation of `in` (Cin planes H x W, read as
// in[oh + r - off_h][ow + s - off_w], zero outside) with the transformed weights u, plus bias.
// One image per work item; each thread has its split padded input, V and M chunks.
// Scratch layout of winograd_correlate, per thread: the split padded input, V and M chunks.
struct WinogradLayout {
  int64_t tiles_h, tiles_w, hp, half, rows_per_chunk, T, v_xi, m_xi, split_floats, v_floats,
      m_floats, per_slot;
  WinogradLayout(int64_t Cin, int64_t Kout, int64_t OH, int64_t OW)
      : tiles_h((OH + 1) / 2), tiles_w((OW + 1) / 2), hp(2 * tiles_h + 2),
        half(round8(tiles_w) + 1),
        rows_per_chunk(std::max<int64_t>(1, kWinogradChunkTiles / tiles_w)),
        T(rows_per_chunk * tiles_w),  // row length of the V and M matrices
        // The transforms touch all 16 matrices V[xi] (M[xi]) at once: their strides are skewed
        // off multiples of 4 KiB, which would put all 16 streams in one L1 set.
        v_xi(skew_4k(Cin * T)), m_xi(skew_4k(Kout * T)),
        split_floats(2 * Cin * hp * half + 2 * half), v_floats(16 * v_xi + 8),
        m_floats(16 * m_xi + 8), per_slot(split_floats + v_floats + m_floats) {}
};

void winograd_correlate(const float* in, int64_t in_image, int64_t Cin, int64_t H, int64_t W,
                        int64_t off_h, int64_t off_w, const float* u, int64_t Kout,
                        const float* bias, int64_t OH, int64_t OW, float* y, int64_t y_image,
                        int64_t images) {
  const WinogradLayout l(Cin, Kout, OH, OW);
  const int64_t tiles_h = l.tiles_h, tiles_w = l.tiles_w, hp = l.hp, half = l.half;
  const int64_t rows_per_chunk = l.rows_per_chunk, T = l.T, v_xi = l.v_xi, m_xi = l.m_xi;
  const int64_t v_floats = l.v_floats, per_slot = l.per_slot;
  const int64_t slots = slot_count(images);
  // Not zeroed (a few MiB per call for 256 channels): every value is written before it is read,
  // except lanes past a tile row that the output transform loads and never stores.
  const std::unique_ptr<float[]> scratch(new float[slots * per_slot]);
  run_slots(images, slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    float* even = scratch.get() + slot * per_slot;
    float* odd = even + Cin * hp * half;
    float* row = odd + Cin * hp * half;
    float* v = row + 2 * half;
    float* m = v + v_floats;
    for (int64_t i = i0; i < i1; ++i) {
      pad_split_planes(in + i * in_image, Cin, H, W, off_h, off_w, hp, half, row, even, odd);
      for (int64_t ti0 = 0; ti0 < tiles_h; ti0 += rows_per_chunk) {
        const int64_t ti1 = std::min(tiles_h, ti0 + rows_per_chunk);
        const int64_t t = (ti1 - ti0) * tiles_w;
        for (int64_t c = 0; c < Cin; ++c)
          conv_detail::winograd_input_avx2(even + c * hp * half, odd + c * hp * half, half, ti0,
                                           ti1, tiles_w, v + c * T, v_xi);
        for (int64_t xi = 0; xi < 16; ++xi)
          sgemm(false, false, Kout, t, Cin, 1.0f, u + xi * Kout * Cin, Cin, v + xi * v_xi, T,
                0.0f, m + xi * m_xi, T);
        for (int64_t k = 0; k < Kout; ++k)
          conv_detail::winograd_output_avx2(m + k * T, m_xi, ti0, ti1, tiles_w,
                                            bias ? bias[k] : 0.0f, OH, OW,
                                            y + i * y_image + k * OH * OW);
      }
    }
  });
}

void winograd_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias,
                      float* y) {
  const int64_t Kg = s.Kg(), Cg = s.Cg();
  for (int64_t g = 0; g < s.groups; ++g) {
    const std::unique_ptr<float[]> u =
        winograd_weights(w + g * Kg * Cg * 9, Kg, Cg, Cg * 9, 9, false);
    winograd_correlate(x + g * Cg * s.H * s.W, s.C * s.H * s.W, Cg, s.H, s.W, s.pad_h, s.pad_w,
                       u.get(), Kg, bias ? bias + g * Kg : nullptr, s.OH, s.OW,
                       y + g * Kg * s.OH * s.OW, s.K * s.OH * s.OW, s.N);
  }
}

// dx: the correlation of dy, shifted by (2 - pad_h, 2 - pad_w), with the flipped kernel and its
// channel axes swapped.
void winograd_backward_input(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int64_t Kg = s.Kg(), Cg = s.Cg();
  for (int64_t g = 0; g < s.groups; ++g) {
    const std::unique_ptr<float[]> u =
        winograd_weights(w + g * Kg * Cg * 9, Cg, Kg, 9, Cg * 9, true);
    winograd_correlate(dy + g * Kg * s.OH * s.OW, s.K * s.OH * s.OW, Kg, s.OH, s.OW,
                       2 - s.pad_h, 2 - s.pad_w, u.get(), Cg, nullptr, s.H, s.W,
                       dx + g * Cg * s.H * s.W, s.C * s.H * s.W, s.N);
  }
}

// dw (F(3x3, 2x2)): each 2x2 tile of dy and the 4x4 tile of x_pad under it add their
// correlation (3x3) to dw; in the transformed domain that is M[xi][k][c] += sum over tiles of
// U'[xi][k][tile] * V[xi][c][tile] (16 GEMMs reducing over tiles), then
// dw[k][c] = A'^T M[.][k][c] A' with A'^T = [[1, 1, 1, 0], [0, 1, -1, 0], [0, 1, 1, 1]].
// Images are split into one range per thread, each with its own M; the Ms are summed at the end.
struct WinogradWeightLayout {
  int64_t tiles_h, tiles_w, hp, half, hq, rows_per_chunk, T, v_xi, u_xi, x_split, dy_split,
      row_floats, per_slot;
  explicit WinogradWeightLayout(const Conv2dShape& s)
      : tiles_h((s.OH + 1) / 2), tiles_w((s.OW + 1) / 2), hp(2 * tiles_h + 2),
        half(round8(tiles_w) + 1), hq(2 * tiles_h),
        rows_per_chunk(std::max<int64_t>(1, kWinogradChunkTiles / tiles_w)),
        T(rows_per_chunk * tiles_w), v_xi(skew_4k(s.Cg() * T)), u_xi(skew_4k(s.Kg() * T)),
        x_split(2 * s.Cg() * hp * half), dy_split(2 * s.Kg() * hq * half), row_floats(2 * half),
        per_slot(x_split + dy_split + row_floats + 16 * v_xi + 8 + 16 * u_xi + 8) {}
};

void winograd_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw) {
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups;
  const WinogradWeightLayout l(s);
  const int64_t tiles_h = l.tiles_h, tiles_w = l.tiles_w, hp = l.hp, half = l.half, hq = l.hq;
  const int64_t rows_per_chunk = l.rows_per_chunk, T = l.T, v_xi = l.v_xi, u_xi = l.u_xi;
  const int64_t row_floats = l.row_floats, per_slot = l.per_slot;
  const int64_t m_size = 16 * Kg * Cg;
  const int64_t slots = slot_count(s.N);
  const std::unique_ptr<float[]> scratch(new float[slots * per_slot]);  // written before read
  std::vector<float> m(m_size);
  const ReductionBlocks rb = reduction_blocks(s.N, slots, 1, m_size * sizeof(float));
  for (int64_t g = 0; g < G; ++g) {
    BlockPartials<float> partials(m.data(), m_size, rb.count);
    run_slots(s.N, slots, [&](int64_t slot, int64_t n0, int64_t n1) {
      float* xe = scratch.get() + slot * per_slot;
      float* xo = xe + Cg * hp * half;
      float* de = xo + Cg * hp * half;
      float* dd = de + Kg * hq * half;
      float* row = dd + Kg * hq * half;
      float* v = row + row_floats;
      float* u = v + 16 * v_xi + 8;
      float* ms = partials.block(n0 / rb.block);
      std::fill(ms, ms + m_size, 0.0f);
      for (int64_t n = n0; n < n1; ++n) {
        pad_split_planes(x + (n * s.C + g * Cg) * s.H * s.W, Cg, s.H, s.W, s.pad_h, s.pad_w, hp,
                         half, row, xe, xo);
        pad_split_planes(dy + (n * s.K + g * Kg) * s.OH * s.OW, Kg, s.OH, s.OW, 0, 0, hq, half,
                         row, de, dd);
        for (int64_t ti0 = 0; ti0 < tiles_h; ti0 += rows_per_chunk) {
          const int64_t ti1 = std::min(tiles_h, ti0 + rows_per_chunk);
          const int64_t t = (ti1 - ti0) * tiles_w;
          for (int64_t c = 0; c < Cg; ++c)
            conv_detail::winograd_input_avx2(xe + c * hp * half, xo + c * hp * half, half, ti0,
                                             ti1, tiles_w, v + c * T, v_xi);
          for (int64_t k = 0; k < Kg; ++k)
            conv_detail::winograd_dy_avx2(de + k * hq * half, dd + k * hq * half, half, ti0, ti1,
                                          tiles_w, u + k * T, u_xi);
          for (int64_t xi = 0; xi < 16; ++xi)
            sgemm(false, true, Kg, Cg, t, 1.0f, u + xi * u_xi, T, v + xi * v_xi, T, 1.0f,
                  ms + xi * Kg * Cg, Cg);
        }
      }
    }, rb.block);
    partials.add_up();
    float* dwg = dw + g * Kg * Cg * 9;
    for (int64_t kc = 0; kc < Kg * Cg; ++kc) {
      float q[4][4], r3[3][4];
      for (int xi = 0; xi < 16; ++xi) q[xi / 4][xi % 4] = m[xi * Kg * Cg + kc];
      for (int b = 0; b < 4; ++b) {
        r3[0][b] = q[0][b] + q[1][b] + q[2][b];
        r3[1][b] = q[1][b] - q[2][b];
        r3[2][b] = q[1][b] + q[2][b] + q[3][b];
      }
      for (int a = 0; a < 3; ++a) {
        dwg[kc * 9 + a * 3 + 0] = r3[a][0] + r3[a][1] + r3[a][2];
        dwg[kc * 9 + a * 3 + 1] = r3[a][1] - r3[a][2];
        dwg[kc * 9 + a * 3 + 2] = r3[a][1] + r3[a][2] + r3[a][3];
      }
    }
  }
}

// Scratch floats (all threads together) of each pass's path, for conv2d_column_buffer_bytes;
// the drivers above allocate exactly these.
int64_t direct_scratch_floats(const Conv2dShape& s, Pass pass) {
  const int64_t Kg = s.Kg(), Cg = s.Cg();
  const DirectInput fwd(s, s.H, s.W, s.pad_h, s.pad_w);
  if (pass == Pass::kForward) return slot_count(s.N * s.groups) * fwd.scratch_floats(Cg);
  if (pass == Pass::kBackwardInput) {
    Conv2dShape t = s;
    t.OH = s.H, t.OW = s.W;
    const DirectInput bwd(t, s.OH, s.OW, (s.R - 1) * s.dil_h - s.pad_h,
                          (s.S - 1) * s.dil_w - s.pad_w);
    return slot_count(s.N * s.groups) * bwd.scratch_floats(Kg);
  }
  const int64_t owp = round8(s.OW);
  const int64_t x_image = fwd.copy ? fwd.scratch_floats(Cg) : Cg * s.H * s.W;
  const int64_t dy_image = Kg * s.OH * owp;
  const int64_t chunk = weight_chunk(x_image, dy_image);
  return slot_count(s.N) * (chunk * (fwd.scratch_floats(Cg) + (owp != s.OW ? dy_image : 0)) +
                             Kg * Cg * s.R * s.S * 8);
}

int64_t winograd_scratch_floats(const Conv2dShape& s, Pass pass) {
  if (pass == Pass::kBackwardWeight) {
    const WinogradWeightLayout l(s);
    return slot_count(s.N) * (l.per_slot + 16 * s.Kg() * s.Cg());
  }
  const bool fwd = pass == Pass::kForward;
  const WinogradLayout l(fwd ? s.Cg() : s.Kg(), fwd ? s.Kg() : s.Cg(), fwd ? s.OH : s.H,
                         fwd ? s.OW : s.W);
  return slot_count(s.N) * l.per_slot;
}

}  // namespace

int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dil) {
  return (in + 2 * pad - dil * (kernel - 1) - 1) / stride + 1;
}

Conv2dShape make_conv2d_shape(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t Cg,
                              int64_t R, int64_t S, int64_t stride_h, int64_t stride_w,
                              int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w,
                              int64_t groups, int64_t out_h, int64_t out_w) {
  auto dims = [](int64_t a, int64_t b) {
    return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
  };
  if (N < 0 || C < 0 || H < 0 || W < 0 || K < 0 || Cg < 0 || R < 1 || S < 1)
    throw std::invalid_argument("conv2d: invalid sizes: input (" + std::to_string(N) + ", " +
                                std::to_string(C) + ", " + std::to_string(H) + ", " +
                                std::to_string(W) + "), kernel " + dims(R, S));
  if (stride_h < 1 || stride_w < 1)
    throw std::invalid_argument("conv2d: stride must be positive, got " + dims(stride_h, stride_w));
  if (pad_h < 0 || pad_w < 0)
    throw std::invalid_argument("conv2d: padding must be non-negative, got " + dims(pad_h, pad_w));
  if (dil_h < 1 || dil_w < 1)
    throw std::invalid_argument("conv2d: dilation must be positive, got " + dims(dil_h, dil_w));
  if (groups < 1)
    throw std::invalid_argument("conv2d: groups must be positive, got " + std::to_string(groups));
  if (C % groups != 0 || K % groups != 0)
    throw std::invalid_argument("conv2d: in_channels (" + std::to_string(C) +
                                ") and out_channels (" + std::to_string(K) +
                                ") must be divisible by groups (" + std::to_string(groups) + ")");
  if (Cg != C / groups)
    throw std::invalid_argument("conv2d: weight has " + std::to_string(Cg) +
                                " input channels per group, expected " +
                                std::to_string(C / groups) + " (in_channels " +
                                std::to_string(C) + " / groups " + std::to_string(groups) + ")");
  // Every size below is derived from user values: checked, so that nothing wraps (a wrapped
  // padded extent made a kernel "fit" and gave a wrong output size, or printed negative sizes).
  const int64_t eff_r = checked_window_extent(R, dil_h, "conv2d: dilation * (kernel - 1) + 1");
  const int64_t eff_s = checked_window_extent(S, dil_w, "conv2d: dilation * (kernel - 1) + 1");
  const int64_t padded_h = checked_padded_extent(H, pad_h, "conv2d: input + 2 * padding");
  const int64_t padded_w = checked_padded_extent(W, pad_w, "conv2d: input + 2 * padding");
  if (eff_r > padded_h || eff_s > padded_w)
    throw std::invalid_argument("conv2d: kernel size " + dims(eff_r, eff_s) +
                                " (with dilation) is larger than the padded input " +
                                dims(padded_h, padded_w));
  // Element and byte counts of input, weight and output must fit int64 (the kernels index
  // with int64 and allocate by byte count).
  checked_bytes(checked_numel({N, C, H, W}, "conv2d: input elements"), 8, "conv2d: input bytes");
  checked_bytes(checked_numel({K, Cg, R, S}, "conv2d: weight elements"), 8,
                "conv2d: weight bytes");
  Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.R = R, s.S = S;
  s.stride_h = stride_h, s.stride_w = stride_w, s.pad_h = pad_h, s.pad_w = pad_w;
  s.dil_h = dil_h, s.dil_w = dil_w, s.groups = groups;
  const int64_t nat_h = conv_output_size(H, R, stride_h, pad_h, dil_h);
  const int64_t nat_w = conv_output_size(W, S, stride_w, pad_w, dil_w);
  s.OH = out_h < 0 ? nat_h : out_h;
  s.OW = out_w < 0 ? nat_w : out_w;
  if (s.OH > nat_h || s.OW > nat_w)
    throw std::invalid_argument("conv2d: output size " + dims(s.OH, s.OW) +
                                " exceeds the largest possible " + dims(nat_h, nat_w));
  checked_bytes(checked_numel({N, K, s.OH, s.OW}, "conv2d: output elements"), 8,
                "conv2d: output bytes");
  return s;
}

int64_t conv2d_column_buffer_bytes(const Conv2dShape& s, int64_t elem_size) {
  check_itemsize(elem_size, "conv2d_column_buffer_bytes");
  if (elem_size == int64_t(sizeof(float)) && s.N > 0 && s.K > 0 && use_taps<float>(s)) {
    int64_t most = 0;
    for (Pass pass : {Pass::kForward, Pass::kBackwardInput, Pass::kBackwardWeight})
      most = std::max(most, elem_size * taps_scratch_floats(s, pass));
    return most;
  }
  if (is_depthwise(s) || is_pointwise(s)) return 0;
  const int64_t P = s.OH * s.OW;
  if (P == 0) return 0;
  const bool f32 = elem_size == int64_t(sizeof(float));
  int64_t most = 0;
  for (Pass pass : {Pass::kForward, Pass::kBackwardInput, Pass::kBackwardWeight}) {
    int64_t bytes;
    if (f32 && use_winograd<float>(s, pass)) {
      bytes = elem_size * winograd_scratch_floats(s, pass);
#ifdef PYDL_HAVE_AVX512_KERNELS
    } else if (f32 && use_rowflat<float>(s, pass)) {
      bytes = elem_size * rowflat_scratch_floats(s, pass);
#endif
    } else if (f32 && use_direct<float>(s, pass)) {
      bytes = elem_size * direct_scratch_floats(s, pass);
    } else if (const int64_t nb = f32 ? images_per_matrix<float>(s) : images_per_matrix<double>(s);
               nb > 1) {
      bytes = slot_count(((s.N + nb - 1) / nb) * s.groups) * elem_size *
              (f32 ? batched_scratch_elements<float>(s, nb) : batched_scratch_elements<double>(s, nb));
    } else {
      const int64_t tile = tile_pixels(s, elem_size);
      const int64_t items = s.N * s.groups * ((P + tile - 1) / tile);
      bytes = slot_count(items) * s.Cg() * s.R * s.S * tile * elem_size;
    }
    most = std::max(most, bytes);
  }
  return most;
}

template <typename T>
void conv2d_forward_cpu(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y) {
  const int64_t P = s.OH * s.OW;
  if (s.N == 0 || s.K == 0 || P == 0) return;
  if (use_taps<T>(s)) {
    if constexpr (std::is_same<T, float>::value) return taps_forward(s, x, w, bias, y);
  }
  if (is_depthwise(s)) return depthwise_forward(s, x, w, bias, y);
  if constexpr (std::is_same<T, float>::value) {
    if (take_winograd(s, Pass::kForward, x, s.N * s.C * s.H * s.W, w,
                      s.K * s.Cg() * s.R * s.S))
      return winograd_forward(s, x, w, bias, y);
#ifdef PYDL_HAVE_AVX512_KERNELS
    if (use_rowflat<T>(s, Pass::kForward)) return rowflat_forward(s, x, w, bias, y);
#endif
    if (use_direct<T>(s, Pass::kForward)) return direct_forward(s, x, w, bias, y);
  }
  if (const int64_t nb = images_per_matrix<T>(s); nb > 1)
    return batched_forward(s, x, w, bias, y, nb);
  const bool pointwise = is_pointwise(s);
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups, HW = s.H * s.W;
  const int64_t rows = Cg * s.R * s.S;
  const int64_t tile = tile_pixels(s, sizeof(T)), n_tiles = (P + tile - 1) / tile;
  const int64_t items = s.N * G * n_tiles, slots = slot_count(items);
  std::vector<T> buffer(pointwise ? 0 : slots * rows * tile);
  run_slots(items, slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    T* col = buffer.data() + slot * rows * tile;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i % n_tiles, g = (i / n_tiles) % G, n = i / (n_tiles * G);
      const int64_t p0 = t * tile, p1 = std::min(P, p0 + tile);
      const T* x_g = x + (n * s.C + g * Cg) * HW;
      T* y_g = y + (n * s.K + g * Kg) * P;
      const T* b = col;
      int64_t ldb = p1 - p0;
      if (pointwise) {
        b = x_g + p0, ldb = HW;
      } else {
        im2col_tile(s, x_g, p0, p1, col);
      }
      gemm(false, false, Kg, p1 - p0, rows, T(1), w + g * Kg * rows, rows, b, ldb, T(0), y_g + p0, P);
      if (bias) {
        for (int64_t k = 0; k < Kg; ++k) {
          T* yrow = y_g + k * P;
          const T bk = bias[g * Kg + k];
          for (int64_t p = p0; p < p1; ++p) yrow[p] += bk;
        }
      }
    }
  });
}

template <typename T>
void conv2d_backward_input_cpu(const Conv2dShape& s, const T* dy, const T* w, T* dx) {
  const int64_t P = s.OH * s.OW, HW = s.H * s.W;
  if (s.N * s.C * HW == 0) return;
  if (s.K == 0 || P == 0) {
    std::fill(dx, dx + s.N * s.C * HW, T(0));
    return;
  }
  if (use_taps<T>(s)) {
    if constexpr (std::is_same<T, float>::value) return taps_backward_input(s, dy, w, dx);
  }
  if (is_depthwise(s)) return depthwise_backward_input(s, dy, w, dx);
  if constexpr (std::is_same<T, float>::value) {
    if (take_winograd(s, Pass::kBackwardInput, dy, s.N * s.K * P, w, s.K * s.Cg() * s.R * s.S))
      return winograd_backward_input(s, dy, w, dx);
#ifdef PYDL_HAVE_AVX512_KERNELS
    if (use_rowflat<T>(s, Pass::kBackwardInput)) return rowflat_backward_input(s, dy, w, dx);
#endif
    if (use_direct<T>(s, Pass::kBackwardInput)) return direct_backward_input(s, dy, w, dx);
  }
  if (const int64_t nb = images_per_matrix<T>(s); nb > 1)
    return batched_backward_input(s, dy, w, dx, nb);
  const bool pointwise = is_pointwise(s);
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups;
  const int64_t rows = Cg * s.R * s.S;
  const int64_t tile = tile_pixels(s, sizeof(T)), n_tiles = (P + tile - 1) / tile;
  // One item per (image, group): its tiles all add into the same dx planes.
  const int64_t items = s.N * G, slots = slot_count(items);
  std::vector<T> buffer(pointwise ? 0 : slots * rows * tile);
  run_slots(items, slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    T* col = buffer.data() + slot * rows * tile;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i % G, n = i / G;
      T* dx_g = dx + (n * s.C + g * Cg) * HW;
      const T* dy_g = dy + (n * s.K + g * Kg) * P;
      const T* w_g = w + g * Kg * rows;
      if (pointwise) {  // dx_g (Cg x HW) = W_g^T @ dy_g in one GEMM
        gemm(true, false, Cg, P, Kg, T(1), w_g, rows, dy_g, P, T(0), dx_g, HW);
        continue;
      }
      std::fill(dx_g, dx_g + Cg * HW, T(0));
      for (int64_t t = 0; t < n_tiles; ++t) {
        const int64_t p0 = t * tile, p1 = std::min(P, p0 + tile);
        gemm(true, false, rows, p1 - p0, Kg, T(1), w_g, rows, dy_g + p0, P, T(0), col, p1 - p0);
        col2im_tile_add(s, col, p0, p1, dx_g);
      }
    }
  });
}

template <typename T>
void conv2d_backward_weight_cpu(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias) {
  const int64_t P = s.OH * s.OW, HW = s.H * s.W;
  const int64_t Kg = s.Kg(), Cg = s.Cg(), G = s.groups;
  const int64_t rows = Cg * s.R * s.S, w_size = s.K * rows;
#ifdef PYDL_HAVE_AVX512_KERNELS
  if constexpr (std::is_same<T, float>::value) {
    // The row-flat pass sums the bias gradient on its way through dy.
    if (s.N > 0 && P > 0 && w_size > 0 &&
        !take_winograd(s, Pass::kBackwardWeight, x, s.N * s.C * HW, dy, s.N * s.K * P) &&
        use_rowflat<T>(s, Pass::kBackwardWeight))
      return rowflat_backward(s, x, dy, nullptr, nullptr, dw, dbias);
  }
#endif
  if (dbias) {
    parallel_for(s.K, 1, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        double acc = 0;  // a long sum (N * OH * OW terms): accumulate in double per image
        for (int64_t n = 0; n < s.N; ++n) {
          const T* row = dy + (n * s.K + k) * P;
          // 16 partial sums: independent add chains that the compiler vectorises.
          T a[16] = {};
          int64_t p = 0;
          for (; p + 16 <= P; p += 16)
            for (int j = 0; j < 16; ++j) a[j] += row[p + j];
          T t = 0;
          for (int j = 0; j < 16; ++j) t += a[j];
          for (; p < P; ++p) t += row[p];
          acc += double(t);
        }
        dbias[k] = T(acc);
      }
    });
  }
  if (w_size == 0) return;
  if (s.N == 0 || P == 0) {
    std::fill(dw, dw + w_size, T(0));
    return;
  }
  if (use_taps<T>(s)) {
    if constexpr (std::is_same<T, float>::value) return taps_backward_weight(s, x, dy, dw);
  }
  if (is_depthwise(s)) return depthwise_backward_weight(s, x, dy, dw);
  if constexpr (std::is_same<T, float>::value) {
    if (take_winograd(s, Pass::kBackwardWeight, x, s.N * s.C * HW, dy, s.N * s.K * P))
      return winograd_backward_weight(s, x, dy, dw);
    if (use_direct<T>(s, Pass::kBackwardWeight)) return direct_backward_weight(s, x, dy, dw);
  }
  if (const int64_t nb = images_per_matrix<T>(s); nb > 1)
    return batched_backward_weight(s, x, dy, dw, nb);
  const bool pointwise = is_pointwise(s);
  const int64_t tile = tile_pixels(s, sizeof(T)), n_tiles = (P + tile - 1) / tile;
  const int64_t items = s.N * G * n_tiles, slots = slot_count(items);
  std::vector<T> buffer(pointwise ? 0 : slots * rows * tile);
  const ReductionBlocks rb = reduction_blocks(items, slots, 1, w_size * sizeof(T));
  BlockPartials<T> partials(dw, w_size, rb.count);
  run_slots(items, slots, [&](int64_t slot, int64_t i0, int64_t i1) {
    T* col = buffer.data() + slot * rows * tile;
    T* acc = partials.block(i0 / rb.block);
    std::fill(acc, acc + w_size, T(0));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i % n_tiles, g = (i / n_tiles) % G, n = i / (n_tiles * G);
      const int64_t p0 = t * tile, p1 = std::min(P, p0 + tile);
      const T* x_g = x + (n * s.C + g * Cg) * HW;
      const T* b = col;
      int64_t ldb = p1 - p0;
      if (pointwise) {
        b = x_g + p0, ldb = HW;
      } else {
        im2col_tile(s, x_g, p0, p1, col);
      }
      // dW_g (Kg x rows) += dy_g[:, p0:p1] (Kg x tile) @ col^T (tile x rows)
      gemm(false, true, Kg, rows, p1 - p0, T(1), dy + (n * s.K + g * Kg) * P + p0, P, b, ldb,
           T(1), acc + g * Kg * rows, rows);
    }
  }, rb.block);
  partials.add_up();
}

template <typename T>
void conv2d_backward_cpu(const Conv2dShape& s, const T* x, const T* dy, const T* w, T* dx, T* dw,
                         T* dbias) {
#ifdef PYDL_HAVE_AVX512_KERNELS
  if constexpr (std::is_same<T, float>::value) {
    if (s.N > 0 && s.OH * s.OW > 0 && s.K * s.Cg() * s.R * s.S > 0 && s.C * s.H * s.W > 0 &&
        !use_winograd<T>(s, Pass::kBackwardInput) && !use_winograd<T>(s, Pass::kBackwardWeight) &&
        use_rowflat<T>(s, Pass::kBackwardInput) && use_rowflat<T>(s, Pass::kBackwardWeight))
      return rowflat_backward(s, x, dy, w, dx, dw, dbias);
  }
#endif
  conv2d_backward_input_cpu(s, dy, w, dx);
  conv2d_backward_weight_cpu(s, x, dy, dw, dbias);
}

template void conv2d_forward_cpu<float>(const Conv2dShape&, const float*, const float*,
                                        const float*, float*);
template void conv2d_forward_cpu<double>(const Conv2dShape&, const double*, const double*,
                                         const double*, double*);
template void conv2d_backward_input_cpu<float>(const Conv2dShape&, const float*, const float*,
                                               float*);
template void conv2d_backward_input_cpu<double>(const Conv2dShape&, const double*, const double*,
                                                double*);
template void conv2d_backward_weight_cpu<float>(const Conv2dShape&, const float*, const float*,
                                                float*, float*);
template void conv2d_backward_weight_cpu<double>(const Conv2dShape&, const double*, const double*,
                                                 double*, double*);

template void conv2d_backward_cpu<float>(const Conv2dShape&, const float*, const float*,
                                         const float*, float*, float*, float*);
template void conv2d_backward_cpu<double>(const Conv2dShape&, const double*, const double*,
                                          const double*, double*, double*, double*);

}  // namespace pydl
