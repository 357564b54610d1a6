// Pooling launchers and kernels (pool.cu, pool.cuh) compiled by g++ for the harness.
#include "../pool.cu"
