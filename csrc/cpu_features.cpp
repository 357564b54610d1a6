#include "cpu_features.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <immintrin.h>  // _xgetbv
#include <intrin.h>     // __cpuid, __cpuidex
#define PYDL_X86_CPUID 1
#elif (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>  // __get_cpuid_max, __cpuid_count (GCC and clang ship it)
#define PYDL_X86_CPUID 1
#endif

namespace pydl {
namespace {

// Ordered levels: a level enables every path at or below it.
enum Level : int { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };

// ---- CPUID and XGETBV, read directly -------------------------------------------------------
// The answer must not depend on the toolchain: __builtin_cpu_supports reads a table that the
// compiler's runtime library (libgcc, or compiler-rt under clang/zig) fills at start-up, and a
// toolchain whose runtime does not fill it reports no AVX2 on any CPU. So pydl asks the CPU
// itself. A feature is usable when the CPU has it (CPUID) and the OS saves its registers across
// context switches (XCR0 read by XGETBV, which is only legal when CPUID.1:ECX.OSXSAVE is set):
//   AVX2+FMA: CPUID.1:ECX.FMA[12], .OSXSAVE[27], .AVX[28]; CPUID.(7,0):EBX.AVX2[5];
//             XCR0 bits 1 (SSE/XMM) and 2 (AVX/YMM upper halves).
//   AVX-512:  the above, CPUID.(7,0):EBX.AVX512F[16], DQ[17], BW[30], VL[31];
//             XCR0 bits 5 (opmask k0-k7), 6 (ZMM0-15 upper halves), 7 (ZMM16-31).
struct Regs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

#if defined(PYDL_X86_CPUID)
Regs cpuid(uint32_t leaf, uint32_t subleaf) {
  Regs r;
#if defined(_MSC_VER)
  int v[4];
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(subleaf));
  r.eax = v[0], r.ebx = v[1], r.ecx = v[2], r.edx = v[3];
#else
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
#endif
  return r;
}

uint32_t max_leaf() { return cpuid(0, 0).eax; }

uint64_t xcr0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  // The instruction's bytes (0f 01 d0) rather than the mnemonic, so old assemblers accept it;
  // no -mxsave needed for the _xgetbv intrinsic either.
  uint32_t lo, hi;
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
#endif
}
#endif

bool bit(uint32_t reg, int i) { return (reg >> i) & 1u; }

CpuFeatures read_cpu_features() {
  CpuFeatures f;
#if defined(PYDL_X86_CPUID)
  f.x86 = true;
  const uint32_t top = max_leaf();
  if (top < 1) return f;
  const Regs l1 = cpuid(1, 0);
  f.fma = bit(l1.ecx, 12);
  f.osxsave = bit(l1.ecx, 27);
  f.avx = bit(l1.ecx, 28);
  if (f.osxsave) f.xcr0 = xcr0();
  if (top >= 7) {
    const Regs l7 = cpuid(7, 0);
    f.avx2 = bit(l7.ebx, 5);
    f.avx512f = bit(l7.ebx, 16);
    f.avx512dq = bit(l7.ebx, 17);
    f.avx512bw = bit(l7.ebx, 30);
    f.avx512vl = bit(l7.ebx, 31);
  }
  f.os_ymm = f.osxsave && (f.xcr0 & 0x6) == 0x6;
  f.os_zmm = f.os_ymm && (f.xcr0 & 0xe0) == 0xe0;
#endif
  return f;
}

int detect_level() {
  const CpuFeatures f = cpu_features();
  int level = kPortable;
#if defined(PYDL_HAVE_AVX2_KERNELS)
  if (f.avx && f.avx2 && f.fma && f.os_ymm) level = kAvx2;
#if defined(PYDL_HAVE_AVX512_KERNELS)
  if (level == kAvx2 && f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl && f.os_zmm)
    level = kAvx512;
#endif
#endif
  (void)f;
  return level;
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

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = read_cpu_features();
  return features;
}

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
