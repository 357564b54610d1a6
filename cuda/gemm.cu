// GEMM launchers: argument checks, layout choice (128-bit loads or not, transposes) and grid
// tiling, batch entries beyond gridDim.z's limit in further launches. Device code: gemm.cuh.
#include <algorithm>
#include <stdexcept>
#include <string>

#include "gemm.cuh"
#include "kernels.h"

namespace pydl::cuda {
namespace {

template <class T>
using GemmKernel = void (*)(GemmArgs<T>);

template <class T, bool VEC>
GemmKernel<T> pick_gemm(bool trans_a, bool trans_b) {
  if (!trans_a && !trans_b) return gemm_tiled_kernel<T, false, false, VEC>;
  if (!trans_a && trans_b) return gemm_tiled_kernel<T, false, true, VEC>;
  if (trans_a && !trans_b) return gemm_tiled_kernel<T, true, false, VEC>;
  return gemm_tiled_kernel<T, true, true, VEC>;
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

template <class T>
void gemm_any(const char* name, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
              T alpha, const T* a, int64_t lda, int64_t stride_a, const T* b, int64_t ldb,
              int64_t stride_b, T beta, T* c, int64_t ldc, int64_t stride_c, int64_t batch,
              stream_handle stream) {
  auto bad = [&](const std::string& what) {
    throw std::invalid_argument(std::string(name) + ": " + what + " (m=" + std::to_string(m) +
                                ", n=" + std::to_string(n) + ", k=" + std::to_string(k) +
                                ", lda=" + std::to_string(lda) + ", ldb=" + std::to_string(ldb) +
                                ", ldc=" + std::to_string(ldc) + ")");
  };
  if (m < 0 || n < 0 || k < 0 || batch < 0) bad("sizes must be non-negative");
  if (lda < std::max<int64_t>(1, trans_a ? m : k)) bad("lda is smaller than a row of A");
  if (ldb < std::max<int64_t>(1, trans_b ? k : n)) bad("ldb is smaller than a row of B");
  if (ldc < std::max<int64_t>(1, n)) bad("ldc is smaller than a row of C");
  if (stride_a < 0 || stride_b < 0 || stride_c < 0) bad("batch strides must be non-negative");
  if (m == 0 || n == 0 || batch == 0) return;

  // 128-bit loads need every row start of A and B 16-byte aligned.
  const bool vec = std::is_same_v<T, float> && aligned16(a) && aligned16(b) && lda % 4 == 0 &&
                   ldb % 4 == 0 && stride_a % 4 == 0 && stride_b % 4 == 0;
  GemmKernel<T> kernel = pick_gemm<T, false>(trans_a, trans_b);
  if constexpr (std::is_same_v<T, float>) {  // no 128-bit path for double: not instantiated
    if (vec) kernel = pick_gemm<T, true>(trans_a, trans_b);
  }
  const cudaStream_t s = reinterpret_cast<cudaStream_t>(stream);
  // gridDim.y and gridDim.z stop at 65535: larger m or batch go in further launches.
  const int64_t max_rows = int64_t(65535) * gemm::BM;
  for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
    const int64_t nb = std::min<int64_t>(65535, batch - b0);
    for (int64_t r0 = 0; r0 < m; r0 += max_rows) {
      GemmArgs<T> p;
      p.m = std::min(max_rows, m - r0);
      p.n = n;
      p.k = k;
      p.alpha = alpha;
      p.beta = beta;
      p.a = a + b0 * stride_a + (trans_a ? r0 : r0 * lda);
      p.lda = lda;
      p.stride_a = stride_a;
      p.b = b + b0 * stride_b;
      p.ldb = ldb;
      p.stride_b = stride_b;
      p.c = c + b0 * stride_c + r0 * ldc;
      p.ldc = ldc;
      p.stride_c = stride_c;
      const dim3 grid(static_cast<unsigned>(ceil_div(n, gemm::BN)),
                      static_cast<unsigned>(ceil_div(p.m, gemm::BM)), static_cast<unsigned>(nb));
      launch_kernel(name, kernel, grid, dim3(gemm::kThreads), s, p);
    }
  }
}

}  // namespace

void gemm_cuda(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
               int64_t stride_b, float beta, float* c, int64_t ldc, int64_t stride_c,
               int64_t batch, stream_handle stream) {
  gemm_any<float>("sgemm_cuda", trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb,
                  stride_b, beta, c, ldc, stride_c, batch, stream);
}

void gemm_cuda(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
               const double* a, int64_t lda, int64_t stride_a, const double* b, int64_t ldb,
               int64_t stride_b, double beta, double* c, int64_t ldc, int64_t stride_c,
               int64_t batch, stream_handle stream) {
  gemm_any<double>("dgemm_cuda", trans_a, trans_b, m, n, k, alpha, a, lda, stride_a, b, ldb,
                   stride_b, beta, c, ldc, stride_c, batch, stream);
}

}  // namespace pydl::cuda
