#pragma once

namespace pydl::cuda {

// Number of CUDA devices the runtime sees; 0 when there is no driver or no GPU.
int device_count();
// CUDA runtime version this module was built against, e.g. 13000.
int runtime_version();

}  // namespace pydl::cuda
