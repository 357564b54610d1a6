#pragma once
// Run-time choice of the SIMD code path. Kernels with an AVX2+FMA variant (csrc/*_avx2.cpp) call
// it only when use_avx2() is true; otherwise they run their portable C++ path.
#include <string>

namespace pydl {

// What this CPU supports (CPUID + OS register-state check), regardless of any override.
bool cpu_supports_avx2_fma();
// True when kernels should take their AVX2+FMA path: the CPU supports it, the kernels were built
// (x86-64), and neither PYDL_SIMD=portable nor set_simd_path("portable") forced the portable path.
bool use_avx2();
// "avx2+fma" or "portable": the path use_avx2() currently selects.
std::string simd_path();
// "auto" (best the CPU supports) or "portable". Throws std::invalid_argument otherwise, and
// for "avx2+fma" on a CPU without it.
void set_simd_path(const std::string& path);

}  // namespace pydl
