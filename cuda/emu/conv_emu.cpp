// The real convolution launchers and kernels (conv.cu, conv.cuh) compiled by g++ for the harness.
#include "../conv.cu"
