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
