// Fused optimizer launchers and kernels (optim.cu, optim.cuh) compiled by g++ for the harness.
#include "../optim.cu"
