#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace pydl {
namespace {

// Ordered levels: a level enables every path at or below it.
enum Level : int { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };

int detect_level() {
#if defined(PYDL_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
  // libgcc's checks include the OS's XSAVE state (YMM for AVX2; opmask and ZMM for AVX-512), so
  // a true here is safe to execute.
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) return kPortable;
#if defined(PYDL_HAVE_AVX512_KERNELS)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return kAvx512;
#endif
  return kAvx2;
#else
  return kPortable;
#endif
}

int parse_level(const std::string& path, int best, const char* who) {
  if (path == "auto") return best;
  int want;
  if (path == "portable") want = kPortable;
  else if (path == "avx2+fma" || path == "avx2") want = kAvx2;
  else if (path == "avx512") want = kAvx512;
  else
    throw std::invalid_argument(std::string(who) +
                                ": expected 'auto', 'avx512', 'avx2+fma' or 'portable', got '" +
                                path + "'");
  if (want > best)
    throw std::invalid_argument(std::string(who) + ": this CPU (or build) has no '" + path +
                                "' path; available: " + (best == kAvx512 ? "avx512, " : "") +
                                (best >= kAvx2 ? "avx2+fma, " : "") + "portable");
  return want;
}

const int cpu_level = detect_level();

int initial_level() {
  const char* env = std::getenv("PYDL_SIMD");
  if (env == nullptr || *env == '\0') return cpu_level;
  // An environment variable asking for more than the CPU has falls back to the best available
  // rather than failing at import; an unknown name is ignored the same way.
  try {
    return parse_level(env, cpu_level, "PYDL_SIMD");
  } catch (const std::invalid_argument&) {
    return cpu_level;
  }
}

std::atomic<int> level{initial_level()};

}  // namespace

bool cpu_supports_avx2_fma() { return cpu_level >= kAvx2; }
bool cpu_supports_avx512() { return cpu_level >= kAvx512; }

bool use_avx2() { return level.load(std::memory_order_relaxed) >= kAvx2; }
bool use_avx512() { return level.load(std::memory_order_relaxed) >= kAvx512; }

std::string simd_path() {
  switch (level.load(std::memory_order_relaxed)) {
    case kAvx512: return "avx512";
    case kAvx2: return "avx2+fma";
    default: return "portable";
  }
}

std::vector<std::string> available_simd_paths() {
  std::vector<std::string> paths;
  if (cpu_level >= kAvx512) paths.push_back("avx512");
  if (cpu_level >= kAvx2) paths.push_back("avx2+fma");
  paths.push_back("portable");
  return paths;
}

void set_simd_path(const std::string& path) { level = parse_level(path, cpu_level, "set_simd_path"); }

}  // namespace pydl
