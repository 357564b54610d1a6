#pragma once
// Pooling on the CPU: max (with argmax indices), average and adaptive average, forward and
// backward. Inputs are C-contiguous (planes, H, W) with planes = N * C; 1-d pooling is 2-d pooling
// with H = 1 and a 1-row window. Output sizes come from the caller (PyTorch's formulas, including
// ceil_mode, live in pydl/ops/pool.py); windows are always clipped to the input, so any size is
// memory-safe.
#include <cstdint>

namespace pydl {

struct Pool2dShape {
  int64_t planes = 0, H = 0, W = 0, OH = 0, OW = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
};

// Throws std::invalid_argument for non-positive kernel/stride/dilation or negative sizes/padding.
void check_pool2d_shape(const Pool2dShape& s);

// y[p, oh, ow] = max over the window; idx[p, oh, ow] = ih * W + iw of the (first) maximum, as in
// PyTorch. NaN propagates. A window with no input element gives -inf and index -1.
template <typename T>
void max_pool2d_forward_cpu(const Pool2dShape& s, const T* x, T* y, int64_t* idx);

// dx = 0, then dx[p, idx] += dy[p, o] for every output o (indices < 0 are skipped).
template <typename T>
void max_pool2d_backward_cpu(const Pool2dShape& s, const T* dy, const int64_t* idx, T* dx);

// The same maximum with a compact argmax for backward: taps[p, oh, ow] = r * kernel_w + t, the
// position of the maximum inside its window (kMaxPoolNoTap for a window with no input element).
// One byte per output instead of PyTorch's eight: the op keeps these when the caller did not
// ask for indices. Needs kernel_h * kernel_w <= kMaxPoolTapWindow. taps may be null (forward
// only, nothing saved for backward).
constexpr int64_t kMaxPoolTapWindow = 255;
constexpr uint8_t kMaxPoolNoTap = 255;
template <typename T>
void max_pool2d_forward_taps_cpu(const Pool2dShape& s, const T* x, T* y, uint8_t* taps);

// dx = 0, then dx at the tapped element of each window += dy.
template <typename T>
void max_pool2d_backward_taps_cpu(const Pool2dShape& s, const T* dy, const uint8_t* taps, T* dx);

// Average over the window (no dilation). divisor_override > 0 replaces the divisor; otherwise the
// window size clipped to the padded input (count_include_pad) or to the input itself.
template <typename T>
void avg_pool2d_forward_cpu(const Pool2dShape& s, bool count_include_pad, int64_t divisor_override,
                            const T* x, T* y);

template <typename T>
void avg_pool2d_backward_cpu(const Pool2dShape& s, bool count_include_pad,
                             int64_t divisor_override, const T* dy, T* dx);

// Adaptive average: output cell o covers [floor(o * H / OH), ceil((o + 1) * H / OH)).
// Only planes, H, W, OH, OW of the shape are used.
template <typename T>
void adaptive_avg_pool2d_forward_cpu(const Pool2dShape& s, const T* x, T* y);

template <typename T>
void adaptive_avg_pool2d_backward_cpu(const Pool2dShape& s, const T* dy, T* dx);

}  // namespace pydl
