#pragma once
// The machine's limits, measured the way pydl's kernels would meet them: peak floating-point
// rate from a loop of independent FMAs on every thread, and memory bandwidth from a threaded
// copy. `pydl bench` opens its report with both and gives each case's rate as a share of them.
#include <cstddef>
#include <cstdint>
#include <string>

namespace pydl {

// Runs `iters` iterations of an FMA loop on each of num_threads() threads, on the SIMD path now
// selected (simd_path()), in float32 or float64. Returns the floating-point operations done
// (2 per lane per FMA), so peak FLOP/s = result / wall time of the call. No memory traffic: the
// accumulators live in registers.
double fma_loop(int64_t iters, bool f64);

// Copies nbytes from src to dst (non-overlapping) with every thread, in 1 MiB blocks.
void parallel_copy(void* dst, const void* src, std::size_t nbytes);

// One thread's share of fma_loop per path; each returns the FLOPs it did. The AVX variants live
// in machine_avx2.cpp / machine_avx512.cpp and are only called after a CPUID check.
double fma_loop_portable(int64_t iters, bool f64);
double fma_loop_avx2(int64_t iters, bool f64);
double fma_loop_avx512(int64_t iters, bool f64);

}  // namespace pydl
