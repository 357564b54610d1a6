// The real GEMM launchers and kernels (gemm.cu, gemm.cuh) compiled by g++ for the harness.
#include "../gemm.cu"
