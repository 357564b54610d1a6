// Batch-norm launchers and kernels (batchnorm.cu, batchnorm.cuh) compiled by g++ for the harness.
#include "../batchnorm.cu"
