// Bindings of the CUDA GEMM: sgemm/dgemm on device pointers, batched and strided.
#include "bindings.h"
#include "kernels.h"

namespace py = pybind11;

namespace pydl::cuda::bind {

void bind_gemm(py::module_& m) {
  m.def(
      "sgemm",
      [](bool trans_a, bool trans_b, int64_t mm, int64_t n, int64_t k, float alpha,
         std::uintptr_t a, int64_t lda, int64_t stride_a, std::uintptr_t b, int64_t ldb,
         int64_t stride_b, float beta, std::uintptr_t c, int64_t ldc, int64_t stride_c,
         int64_t batch, std::uintptr_t stream) {
        py::gil_scoped_release release;
        gemm_cuda(trans_a, trans_b, mm, n, k, alpha, ptr<const float>(a), lda, stride_a,
                  ptr<const float>(b), ldb, stride_b, beta, ptr<float>(c), ldc, stride_c, batch,
                  stream);
      },
      py::arg("trans_a"), py::arg("trans_b"), py::arg("m"), py::arg("n"), py::arg("k"),
      py::arg("alpha"), py::arg("a"), py::arg("lda"), py::arg("stride_a"), py::arg("b"),
      py::arg("ldb"), py::arg("stride_b"), py::arg("beta"), py::arg("c"), py::arg("ldc"),
      py::arg("stride_c"), py::arg("batch"), py::arg("stream"),
      "Batched C = alpha op(A) op(B) + beta C in float32 on device pointers (row-major)");
  m.def(
      "dgemm",
      [](bool trans_a, bool trans_b, int64_t mm, int64_t n, int64_t k, double alpha,
         std::uintptr_t a, int64_t lda, int64_t stride_a, std::uintptr_t b, int64_t ldb,
         int64_t stride_b, double beta, std::uintptr_t c, int64_t ldc, int64_t stride_c,
         int64_t batch, std::uintptr_t stream) {
        py::gil_scoped_release release;
        gemm_cuda(trans_a, trans_b, mm, n, k, alpha, ptr<const double>(a), lda, stride_a,
                  ptr<const double>(b), ldb, stride_b, beta, ptr<double>(c), ldc, stride_c,
                  batch, stream);
      },
      py::arg("trans_a"), py::arg("trans_b"), py::arg("m"), py::arg("n"), py::arg("k"),
      py::arg("alpha"), py::arg("a"), py::arg("lda"), py::arg("stride_a"), py::arg("b"),
      py::arg("ldb"), py::arg("stride_b"), py::arg("beta"), py::arg("c"), py::arg("ldc"),
      py::arg("stride_c"), py::arg("batch"), py::arg("stream"),
      "Batched C = alpha op(A) op(B) + beta C in float64 on device pointers (row-major)");
}

}  // namespace pydl::cuda::bind
