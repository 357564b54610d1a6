// Broadcasting and coalescing for the elementwise loop driver (see loop.h).
#include "elementwise/loop.h"

#include <stdexcept>
#include <string>

namespace pydl::ew {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

}  // namespace

std::vector<int64_t> broadcast_shapes(const std::vector<const std::vector<int64_t>*>& shapes) {
  size_t nd = 0;
  for (const auto* s : shapes) nd = std::max(nd, s->size());
  std::vector<int64_t> out(nd, 1);
  for (const auto* s : shapes) {
    const size_t off = nd - s->size();
    for (size_t i = 0; i < s->size(); ++i) {
      const int64_t d = (*s)[i];
      int64_t& o = out[off + i];
      if (d == o || d == 1) continue;
      if (o == 1) {
        o = d;
        continue;
      }
      std::string msg = "operands could not be broadcast together with shapes";
      for (const auto* t : shapes) msg += " " + shape_str(*t);
      throw std::invalid_argument(msg);
    }
  }
  return out;
}

LoopPlan::LoopPlan(const std::vector<OperandRef>& operands, const std::vector<int64_t>& out_shape) {
  nops_ = int(operands.size());
  if (nops_ < 1 || nops_ > kMaxOperands)
    throw std::invalid_argument("elementwise: between 1 and " + std::to_string(kMaxOperands) +
                                " operands expected");
  const int nd = int(out_shape.size());
  if (nd > kMaxDims)
    throw std::invalid_argument("elementwise: at most " + std::to_string(kMaxDims) +
                                " dimensions supported, got " + std::to_string(nd));
  for (int op = 0; op < nops_; ++op) base_[op] = operands[op].data;
  numel_ = 1;
  for (int64_t d : out_shape) numel_ *= d;

  // 1. Broadcast strides, dropping size-1 output dimensions (they move no pointer).
  ndim_ = 0;
  for (int d = 0; d < nd; ++d) {
    if (out_shape[d] == 1) continue;
    shape_[ndim_] = out_shape[d];
    for (int op = 0; op < nops_; ++op) {
      const OperandRef& o = operands[op];
      const int od = d - (nd - int(o.shape.size()));
      if (od < 0 || o.shape[od] == 1) {
        strides_[ndim_][op] = 0;
      } else {
        if (o.shape[od] != out_shape[d])
          throw std::invalid_argument("elementwise: operand " + std::to_string(op) + " of shape " +
                                      shape_str(o.shape) + " does not broadcast to " +
                                      shape_str(out_shape));
        strides_[ndim_][op] = o.strides[od];
      }
    }
    ++ndim_;
  }
  if (ndim_ == 0) {  // a single element: one run of length 1
    shape_[0] = 1;
    for (int op = 0; op < nops_; ++op) strides_[0][op] = 0;
    ndim_ = 1;
    return;
  }

  // 2. Coalesce adjacent dimensions (outer d into inner d + 1) where every operand allows it.
  int w = 0;
  for (int d = 1; d < ndim_; ++d) {
    bool merge = true;
    for (int op = 0; op < nops_ && merge; ++op)
      merge = strides_[w][op] == strides_[d][op] * shape_[d];
    if (merge) {
      shape_[w] *= shape_[d];
      strides_[w] = strides_[d];
    } else {
      ++w;
      shape_[w] = shape_[d];
      strides_[w] = strides_[d];
    }
  }
  ndim_ = w + 1;
}

}  // namespace pydl::ew
