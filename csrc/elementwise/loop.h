// The elementwise loop driver: one output and up to three inputs of any shapes and strides,
// walked in the output's C order, handing contiguous runs to an inner kernel. PyTorch's
// TensorIterator is the model (broadcast, coalesce, inner loop over the last dimension, split
// over threads); this is its CPU core, small enough to read.
//
//   LoopPlan plan({out, in0, in1}, out_shape);   // broadcast + coalesce, once per call
//   run_loop(plan, grain, [&](char* const* ptrs, const int64_t* strides, int64_t n) {...});
//
// What a plan does, in order:
//   1. Broadcast: each input's shape is right-aligned against the output's; a dimension of
//      size 1 (or a missing one) gets stride 0, so no input is ever expanded in memory.
//   2. Drop dimensions of size 1 and coalesce: adjacent dimensions d, d+1 merge when every
//      operand has stride[d] == stride[d+1] * shape[d+1] (a C-contiguous array becomes one
//      dimension; (32,64,32,32) * (1,64,1,1) becomes (32, 64, 1024) with the second operand's
//      strides (0, 4, 0)). Non-contiguous inputs (transposes, slices) are read in place.
//   3. The innermost dimension is the run: the kernel gets base pointers and byte strides for
//      one run of n elements and sees stride == element size (contiguous), 0 (a broadcast
//      scalar) or anything else (strided: the kernels gather such runs into a small buffer).
//
// Threads (run_loop): the linear range [0, numel) of output elements is cut into blocks of at
// least `grain` elements, handed out by parallel_blocks (csrc/parallel.h). A block may start
// and end inside a run, so work divides evenly whatever the shape. Below 2 * grain elements the
// loop runs on the calling thread without touching the pool. Each output element is computed by
// exactly one thread from its own inputs, so results never depend on the split or the thread
// count; a reduction built on this driver would need a fixed split instead (parallel_for with a
// fixed chunking), since parallel_blocks' dynamic assignment changes which thread adds what.
//
// Reuse: reductions / softmax can build a plan with the reduced dimensions given stride 0 in the
// output (the output then "broadcasts" over them) and walk it with for_each_run.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "parallel.h"

namespace pydl::ew {

constexpr int kMaxOperands = 4;  // the output and up to three inputs
constexpr int kMaxDims = 16;

// One operand as the caller sees it: data pointer, element size, shape and byte strides.
struct OperandRef {
  char* data = nullptr;
  int64_t elem_size = 0;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // bytes, one per dimension of `shape`
};

// NumPy's broadcast of the inputs' shapes; throws std::invalid_argument naming the shapes.
std::vector<int64_t> broadcast_shapes(const std::vector<const std::vector<int64_t>*>& shapes);

class LoopPlan {
 public:
  // operands[0] is the output, of shape out_shape; the rest are inputs broadcast to it.
  LoopPlan(const std::vector<OperandRef>& operands, const std::vector<int64_t>& out_shape);

  int64_t numel() const { return numel_; }
  int ndim() const { return ndim_; }
  int num_operands() const { return nops_; }
  // Coalesced shape, outermost first, and the byte strides of operand i in each dimension.
  int64_t size(int d) const { return shape_[d]; }
  int64_t stride(int d, int op) const { return strides_[d][op]; }

  // fn(ptrs, strides, n) over runs that cover output elements [begin, end) in C order:
  // ptrs[i] points at operand i's element, strides[i] its byte stride along the run.
  template <class Fn>
  void for_each_run(int64_t begin, int64_t end, Fn&& fn) const {
    if (begin >= end) return;
    int64_t idx[kMaxDims];
    char* ptrs[kMaxOperands];
    const int last = ndim_ - 1;
    int64_t rem = begin;
    for (int op = 0; op < nops_; ++op) ptrs[op] = base_[op];
    for (int d = last; d >= 0; --d) {
      idx[d] = rem % shape_[d];
      rem /= shape_[d];
      for (int op = 0; op < nops_; ++op) ptrs[op] += idx[d] * strides_[d][op];
    }
    const int64_t* inner = strides_[last].data();
    int64_t pos = begin;
    while (pos < end) {
      const int64_t n = std::min(shape_[last] - idx[last], end - pos);
      fn(static_cast<char* const*>(ptrs), inner, n);
      pos += n;
      if (pos >= end) break;
      // The run ended its row: back to the row's start, then one step in the outer
      // dimensions (carrying where a dimension wraps).
      for (int op = 0; op < nops_; ++op) ptrs[op] -= idx[last] * strides_[last][op];
      idx[last] = 0;
      for (int d = last - 1; d >= 0; --d) {
        ++idx[d];
        for (int op = 0; op < nops_; ++op) ptrs[op] += strides_[d][op];
        if (idx[d] < shape_[d]) break;
        for (int op = 0; op < nops_; ++op) ptrs[op] -= shape_[d] * strides_[d][op];
        idx[d] = 0;
      }
    }
  }

 private:
  int ndim_ = 0, nops_ = 0;
  int64_t numel_ = 1;
  std::array<char*, kMaxOperands> base_{};
  std::array<int64_t, kMaxDims> shape_{};
  std::array<std::array<int64_t, kMaxOperands>, kMaxDims> strides_{};
};

// The plan's elements, split over threads in blocks of at least `grain` (see the header).
template <class Fn>
void run_loop(const LoopPlan& plan, int64_t grain, Fn&& fn) {
  const int64_t n = plan.numel();
  if (n <= 0) return;
  if (n < 2 * grain || num_threads() == 1 || in_parallel_region()) {
    plan.for_each_run(0, n, fn);
    return;
  }
  parallel_blocks(n, grain, [&](int64_t b, int64_t e) { plan.for_each_run(b, e, fn); });
}

}  // namespace pydl::ew
