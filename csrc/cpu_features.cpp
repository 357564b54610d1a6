#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace pydl {
namespace {

bool detect_avx2_fma() {
#if defined(PYDL_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  // libgcc's checks include the OS's XSAVE/YMM state, so a true here is safe to execute.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool env_forces_portable() {
  const char* env = std::getenv("PYDL_SIMD");
  return env != nullptr && std::strcmp(env, "portable") == 0;
}

const bool cpu_has_avx2_fma = detect_avx2_fma();
std::atomic<bool> avx2_enabled{cpu_has_avx2_fma && !env_forces_portable()};

}  // namespace

bool cpu_supports_avx2_fma() { return cpu_has_avx2_fma; }

bool use_avx2() { return avx2_enabled.load(std::memory_order_relaxed); }

std::string simd_path() { return use_avx2() ? "avx2+fma" : "portable"; }

void set_simd_path(const std::string& path) {
  if (path == "portable") {
    avx2_enabled = false;
  } else if (path == "auto") {
    avx2_enabled = cpu_has_avx2_fma;
  } else if (path == "avx2+fma" || path == "avx2") {
    if (!cpu_has_avx2_fma)
      throw std::invalid_argument("set_simd_path: this CPU (or build) has no AVX2+FMA path");
    avx2_enabled = true;
  } else {
    throw std::invalid_argument("set_simd_path: expected 'auto', 'portable' or 'avx2+fma', got '" +
                                path + "'");
  }
}

}  // namespace pydl
