#pragma once
// Run-time choice of the SIMD code path. Kernels with an AVX2+FMA variant (csrc/*_avx2.cpp) call
// it only when use_avx2() is true, kernels with an AVX-512 variant (csrc/*_avx512.cpp) only when
// use_avx512() is true; otherwise they run the next path down, ending at portable C++.
#include <cstdint>
#include <string>
#include <vector>

namespace pydl {

// What CPUID and XGETBV report, read by pydl itself (csrc/cpu_features.cpp) so that GCC, clang and
// MSVC builds agree. All false (and xcr0 0) on CPUs that are not x86.
struct CpuFeatures {
  bool x86 = false;
  bool avx = false, fma = false, avx2 = false, osxsave = false;
  bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false;
  uint64_t xcr0 = 0;    // the OS-enabled register state (XGETBV(0)); 0 without OSXSAVE
  bool os_ymm = false;  // XCR0 has XMM and YMM state: the OS saves AVX registers
  bool os_zmm = false;  // os_ymm and XCR0 has opmask, ZMM_Hi256 and Hi16_ZMM state
};
const CpuFeatures& cpu_features();

// What this CPU supports (CPUID + OS register-state check), regardless of any override.
bool cpu_supports_avx2_fma();
// AVX-512 F+BW+DQ+VL with FMA: the subset every *_avx512.cpp may use (Skylake-SP and later,
// Zen 4 and later).
bool cpu_supports_avx512();
// True when kernels should take their AVX2+FMA path: the CPU supports it, the kernels were built
// (x86-64), and neither PYDL_SIMD=portable nor set_simd_path("portable") forced the portable path.
// Also true while the AVX-512 path is selected: kernels without an AVX-512 variant use AVX2.
bool use_avx2();
// True when kernels with an AVX-512 variant should take it (CPU support, x86-64 build, and no
// PYDL_SIMD=avx2|portable / set_simd_path override below it).
bool use_avx512();
// "avx512", "avx2+fma" or "portable": the best path kernels currently select.
std::string simd_path();
// The paths this CPU and build can run, best first (always ends with "portable").
std::vector<std::string> available_simd_paths();
// "auto" (best the CPU supports), "avx512", "avx2+fma" (alias "avx2") or "portable". Throws
// std::invalid_argument for other names and for a path the CPU (or build) cannot run.
void set_simd_path(const std::string& path);

}  // namespace pydl
