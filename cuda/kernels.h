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

namespace pydl::cuda {

// ---- pooling (pool.cu) -------------------------------------------------------------------------
// NCHW planes (batch * channels) of h x w pooled to oh x ow (the caller applies ceil_mode when
// computing oh, ow, as PyTorch does). indices: int64, iy * w + ix within the plane.
struct Pool2dParams {
  int64_t planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
};
void max_pool2d_forward_cuda(const Pool2dParams& p, const float* x, float* y, int64_t* indices,
                             stream_handle stream);
void max_pool2d_forward_cuda(const Pool2dParams& p, const double* x, double* y, int64_t* indices,
                             stream_handle stream);
void max_pool2d_backward_cuda(const Pool2dParams& p, const float* grad_output,
                              const int64_t* indices, float* grad_input, stream_handle stream);
void max_pool2d_backward_cuda(const Pool2dParams& p, const double* grad_output,
                              const int64_t* indices, double* grad_input, stream_handle stream);
void avg_pool2d_forward_cuda(const Pool2dParams& p, const float* x, float* y,
                             bool count_include_pad, int64_t divisor_override,
                             stream_handle stream);
void avg_pool2d_forward_cuda(const Pool2dParams& p, const double* x, double* y,
                             bool count_include_pad, int64_t divisor_override,
                             stream_handle stream);
void avg_pool2d_backward_cuda(const Pool2dParams& p, const float* grad_output, float* grad_input,
                              bool count_include_pad, int64_t divisor_override,
                              stream_handle stream);
void avg_pool2d_backward_cuda(const Pool2dParams& p, const double* grad_output,
                              double* grad_input, bool count_include_pad,
                              int64_t divisor_override, stream_handle stream);

// ---- batch norm (batchnorm.cu) -----------------------------------------------------------------
// x viewed as (batch, channels, hw). weight, bias, running_mean, running_var may be null.
void batch_norm_forward_train_cuda(const float* x, float* y, const float* weight,
                                   const float* bias, float* running_mean, float* running_var,
                                   float* save_mean, float* save_invstd, int64_t batch,
                                   int64_t channels, int64_t hw, double eps, double momentum,
                                   stream_handle stream);
void batch_norm_forward_train_cuda(const double* x, double* y, const double* weight,
                                   const double* bias, double* running_mean, double* running_var,
                                   double* save_mean, double* save_invstd, int64_t batch,
                                   int64_t channels, int64_t hw, double eps, double momentum,
                                   stream_handle stream);
void batch_norm_forward_eval_cuda(const float* x, float* y, const float* weight,
                                  const float* bias, const float* running_mean,
                                  const float* running_var, int64_t batch, int64_t channels,
                                  int64_t hw, double eps, stream_handle stream);
void batch_norm_forward_eval_cuda(const double* x, double* y, const double* weight,
                                  const double* bias, const double* running_mean,
                                  const double* running_var, int64_t batch, int64_t channels,
                                  int64_t hw, double eps, stream_handle stream);
// grad_input, grad_weight, grad_bias may be null.
void batch_norm_backward_train_cuda(const float* x, const float* grad_output,
                                    const float* weight, const float* save_mean,
                                    const float* save_invstd, float* grad_input,
                                    float* grad_weight, float* grad_bias, int64_t batch,
                                    int64_t channels, int64_t hw, stream_handle stream);
void batch_norm_backward_train_cuda(const double* x, const double* grad_output,
                                    const double* weight, const double* save_mean,
                                    const double* save_invstd, double* grad_input,
                                    double* grad_weight, double* grad_bias, int64_t batch,
                                    int64_t channels, int64_t hw, stream_handle stream);

}  // namespace pydl::cuda

namespace pydl::cuda {

// ---- fused optimizer steps (optim.cu) ----------------------------------------------------------
// `table` is a device buffer of int64: addresses[tensors * lists] (tensor-major), numels[tensors],
// chunk_prefix[tensors + 1] with chunk_prefix[t] = sum over earlier tensors of
// ceil(numel / optim_chunk_elements()); `chunks` = chunk_prefix[tensors]. All listed buffers have
// the step's dtype and their tensor's numel. One launch per call. Formulas: torch.optim's.
struct MultiTensor {
  const int64_t* table;
  int64_t tensors, lists, chunks;
};
int64_t optim_chunk_elements();

template <class T>
void sgd_step_cuda(const MultiTensor& mt, double lr, double momentum, double dampening,
                   double weight_decay, bool nesterov, bool maximize, bool first_step,
                   stream_handle stream);
template <class T>
void adam_step_cuda(const MultiTensor& mt, double lr, double beta1, double beta2, double eps,
                    double weight_decay, int64_t step, bool decoupled_weight_decay,
                    bool amsgrad, bool maximize, stream_handle stream);
template <class T>
void adagrad_step_cuda(const MultiTensor& mt, double lr, double lr_decay, double weight_decay,
                       double eps, int64_t step, bool maximize, stream_handle stream);
template <class T>
void rmsprop_step_cuda(const MultiTensor& mt, double lr, double alpha, double eps,
                       double weight_decay, double momentum, bool centered, bool maximize,
                       stream_handle stream);
// *out (a device double) = sum of squares of list 0 over all tensors.
template <class T>
void sum_squares_cuda(const MultiTensor& mt, double* out, stream_handle stream);
// list 0 *= scale over all tensors.
template <class T>
void scale_cuda(const MultiTensor& mt, double scale, stream_handle stream);

}  // namespace pydl::cuda
