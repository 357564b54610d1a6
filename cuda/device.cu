// Device queries used by pydl.show_config() and pydl.cuda.is_available().
#include "device.cuh"

#include "common.cuh"

namespace pydl::cuda {

int device_count() {
  int count = 0;
  // No driver or no GPU is a normal answer here ("zero devices"), not an error.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return 0;
  }
  return count;
}

int runtime_version() {
  int version = 0;
  cudaRuntimeGetVersion(&version);
  return version;
}

}  // namespace pydl::cuda
