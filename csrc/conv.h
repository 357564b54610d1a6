#pragma once
// Convolution (cross-correlation, as in every DL library) on the CPU: forward, backward with
// respect to the input, backward with respect to the weight and bias. 1-d convolutions are 2-d
// ones with H = R = 1; transposed convolution is the backward-input pass run forward.
//
//   y[n, k, oh, ow] = bias[k] + sum_{c, r, s} w[k, c, r, s]
//                         * x[n, g*Cg + c, oh*stride_h - pad_h + r*dil_h, ow*stride_w - pad_w + s*dil_w]
//   (k in group g = k / Kg, Cg = C / groups, Kg = K / groups, out-of-range x reads as 0)
//
// Paths (chosen per call, all with the same results up to rounding):
//   * tiled im2col + GEMM (pydl::sgemm/dgemm): the column matrix of one image and group is built a
//     tile of output pixels at a time, so the buffer is bounded (see conv2d_column_buffer_bytes);
//   * 1x1, stride 1, no padding: the input already is the column matrix, GEMM on it directly;
//   * depthwise (groups == C, one input channel per group): direct loops, no GEMM;
//   * float32 with AVX2, groups > 1 with at most 4 input channels per group (depthwise first of
//     all), strides up to 4: tap lists over padded, column-phase-split planes, 8 columns per
//     vector, for all three passes (conv_avx2.cpp);
//   * output planes smaller than a column tile: im2col + GEMM over several images at once;
//   * float32 with AVX2, stride 1 (conv_avx2.cpp, no column matrix; dilation only in the
//     forward and backward-input direct loops):
//     - 3x3 kernels with at least 16 channels in and out per group: Winograd F(2x2, 3x3) for all
//       three passes (16 GEMMs per tile chunk, 2.25x fewer multiplications);
//     - otherwise, within size bounds: direct loops over the input (LeNet's layers);
//   * float32 with AVX-512, stride 1 down the rows, small layers (conv_avx512.cpp): row-flat
//     kernels on planes exactly OW wide, 16 output pixels per vector whatever OW is (LeNet's
//     layers on AVX-512 CPUs; Winograd still takes the 3x3 layers it accepts).
// All buffers are C-contiguous (NCHW input/output, KCRS weight).
#include <cstdint>

namespace pydl {

struct Conv2dShape {
  int64_t N = 0, C = 0, H = 0, W = 0;  // input
  int64_t K = 0, R = 0, S = 0;         // weight: K x (C / groups) x R x S
  int64_t OH = 0, OW = 0;              // output
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  int64_t Cg() const { return C / groups; }
  int64_t Kg() const { return K / groups; }
};

// Output extent of a convolution along one axis: floor((in + 2*pad - dil*(k-1) - 1) / stride) + 1.
int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dil);

// Checks a shape and fills OH/OW. Throws std::invalid_argument naming the problem: non-positive
// stride/dilation/groups, negative padding, channels not divisible by groups, a kernel larger
// than the padded input. out_h/out_w < 0 means "compute them"; otherwise they are used as given
// (transposed convolution with output_padding needs it) and must not exceed the natural size.
Conv2dShape make_conv2d_shape(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t Cg,
                              int64_t R, int64_t S, int64_t stride_h, int64_t stride_w,
                              int64_t pad_h, int64_t pad_w, int64_t dil_h, int64_t dil_w,
                              int64_t groups, int64_t out_h = -1, int64_t out_w = -1);

// Most bytes of scratch one call may hold (all threads together): the column tiles of
// im2col + GEMM, or for the direct, row-flat and Winograd paths their padded or shifted input
// copies, weight-gradient lanes and transformed tiles. Bounded per thread, whatever the batch.
// (The row-flat path keeps its buffer for the next call from the same thread, so a training
// step does not fault the pages in again; it is a few MiB at most.)
int64_t conv2d_column_buffer_bytes(const Conv2dShape& s, int64_t elem_size);

// y (N, K, OH, OW) = conv(x (N, C, H, W), w); bias (K) may be null.
template <typename T>
void conv2d_forward_cpu(const Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);

// dx (N, C, H, W) = d loss / d x given dy (N, K, OH, OW). Overwrites dx.
template <typename T>
void conv2d_backward_input_cpu(const Conv2dShape& s, const T* dy, const T* w, T* dx);

// dw (K, Cg, R, S) and, when dbias is not null, dbias (K). Overwrites both.
template <typename T>
void conv2d_backward_weight_cpu(const Conv2dShape& s, const T* x, const T* dy, T* dw, T* dbias);

// Both gradients of a training step in one call: dx (N, C, H, W), dw (K, Cg, R, S) and, when
// dbias is not null, dbias (K), all overwritten. Where one kernel path serves both passes (the
// AVX-512 row-flat one) it runs them as a single pass over the batch; otherwise the two calls
// above.
template <typename T>
void conv2d_backward_cpu(const Conv2dShape& s, const T* x, const T* dy, const T* w, T* dx, T* dw,
                         T* dbias);

}  // namespace pydl
