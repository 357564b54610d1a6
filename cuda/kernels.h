#pragma once
// Host API of pydl's CUDA kernels: what the bindings call. Plain C++ (no CUDA types), so the
// bindings compile with the host compiler; the same declarations are implemented by the real
// module (cuda/*.cu compiled by nvcc) and by the emulated one (the same files compiled by g++
// against cuda/emu/cuda_emu.h).
//
// Pointers are device pointers (CuPy's `array.data.ptr`; host pointers under the harness) to
// C-contiguous buffers unless a leading dimension says otherwise; `stream` is a cudaStream_t as
// an integer (CuPy's `cupy.cuda.get_current_stream().ptr`, 0 = the legacy default stream).
// Every function checks its sizes (std::invalid_argument -> ValueError) and every launch
// (std::runtime_error "pydl_cuda: <kernel> launch failed: ..." -> RuntimeError).
#include <cstdint>

namespace pydl::cuda {

using stream_handle = std::uintptr_t;

// ---- GEMM (gemm.cu) ----------------------------------------------------------------------------
// For each of `batch` problems: C = alpha * op(A) @ op(B) + beta * C with the conventions of
// csrc/gemm.h (row-major, op(A) m x k, op(B) k x n, beta == 0 never reads C). stride_* are the
// element distances between consecutive problems (0 broadcasts one operand over the batch).
void gemm_cuda(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
               int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c,
               int64_t batch, stream_handle stream);
void gemm_cuda(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
               const double* a, int64_t lda, int64_t stride_a, const double* b, int64_t ldb,
               int64_t stride_b, double beta, double* c, int64_t ldc, int64_t stride_c,
               int64_t batch, stream_handle stream);

}  // namespace pydl::cuda

namespace pydl::cuda {

// ---- convolution (conv.cu) ---------------------------------------------------------------------
// 2-D cross-correlation, NCHW, PyTorch's conv2d semantics: x (batch, cin, h, w), weight
// (cout, cin/groups, kh, kw), y (batch, cout, oh, ow) with oh = (h + 2 ph - dh (kh - 1) - 1) / sh
// + 1 (likewise ow). All buffers C-contiguous.
struct Conv2dParams {
  int64_t batch, cin, h, w, cout, kh, kw;
  int64_t sh, sw, ph, pw, dh, dw, groups;
  int64_t out_h() const { return (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1; }
  int64_t out_w() const { return (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1; }
};

// y = conv2d(x, weight) + bias (bias may be null).
void conv2d_forward_cuda(const Conv2dParams& p, const float* x, const float* weight,
                         const float* bias, float* y, stream_handle stream);
void conv2d_forward_cuda(const Conv2dParams& p, const double* x, const double* weight,
                         const double* bias, double* y, stream_handle stream);
// grad_input (overwritten) from grad_output and weight.
void conv2d_backward_data_cuda(const Conv2dParams& p, const float* grad_output,
                               const float* weight, float* grad_input, stream_handle stream);
void conv2d_backward_data_cuda(const Conv2dParams& p, const double* grad_output,
                               const double* weight, double* grad_input, stream_handle stream);
// grad_weight (overwritten) from x and grad_output.
void conv2d_backward_weight_cuda(const Conv2dParams& p, const float* x, const float* grad_output,
                                 float* grad_weight, stream_handle stream);
void conv2d_backward_weight_cuda(const Conv2dParams& p, const double* x,
                                 const double* grad_output, double* grad_weight,
                                 stream_handle stream);

}  // namespace pydl::cuda
