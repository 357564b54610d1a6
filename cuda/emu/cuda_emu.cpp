// Runtime of the CUDA emulation harness (see cuda_emu.h): real threads per block, barriers that
// check their call sites, warp exchange buffers, launch-configuration checks, sticky errors.
#include "cuda_emu.h"

#include <condition_variable>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

thread_local uint3 threadIdx{0, 0, 0};
thread_local uint3 blockIdx{0, 0, 0};
thread_local dim3 blockDim{1, 1, 1};
thread_local dim3 gridDim{1, 1, 1};

namespace pydl_emu {
namespace {

std::string where_str(const char* file, unsigned line) {
  std::string f(file ? file : "?");
  auto slash = f.find_last_of('/');
  if (slash != std::string::npos) f = f.substr(slash + 1);
  return f + ":" + std::to_string(line);
}

// One barrier phase (block-wide or one warp): who is expected, who arrived, and where.
struct Phase {
  int expected = 0;
  int arrived = 0;
  int exited = 0;
  uint64_t generation = 0;
  const char* file = nullptr;
  unsigned line = 0;
  std::condition_variable cv;
};

struct Warp {
  Phase phase;
  uint64_t slots[32] = {};
  int lanes = 0;
};

// State of the block that is running now; every field is guarded by `mu`.
struct Block {
  std::mutex mu;
  int nthreads = 0;
  int exited = 0;
  int blocked = 0;  // threads waiting on a barrier that has not completed
  bool aborted = false;
  std::string error;
  Phase phase;
  std::vector<std::unique_ptr<Warp>> warps;

  [[noreturn]] void fail_locked(const std::string& message) {
    if (!aborted) {
      aborted = true;
      error = message;
      phase.cv.notify_all();
      for (auto& w : warps) w->phase.cv.notify_all();
    }
    throw Abort{};
  }

  // Arrive at `p` from the call site file:line; wait until every expected thread arrived.
  void arrive_and_wait(std::unique_lock<std::mutex>& lock, Phase& p, const char* what,
                       const char* file, unsigned line) {
    if (aborted) throw Abort{};
    if (p.arrived == 0) {
      p.file = file;
      p.line = line;
    } else if (p.line != line || std::strcmp(p.file, file) != 0) {
      fail_locked(std::string("divergent ") + what + ": threads of one " +
                  (&p == &phase ? "block" : "warp") + " wait at " + where_str(p.file, p.line) +
                  " and at " + where_str(file, line));
    }
    if (++p.arrived == p.expected) {
      blocked -= p.arrived - 1;
      p.arrived = 0;
      ++p.generation;
      p.cv.notify_all();
      return;
    }
    ++blocked;
    if (blocked + exited == nthreads) {
      fail_locked(std::string("deadlock: every live thread waits, the last at ") + what +
                  " (" + where_str(file, line) + "), and no barrier can complete");
    }
    const uint64_t gen = p.generation;
    p.cv.wait(lock, [&] { return p.generation != gen || aborted; });
    if (p.generation == gen) throw Abort{};
  }
};

thread_local Block* tls_block = nullptr;
thread_local int tls_tid = 0;

std::mutex g_launch_mu;  // one launch at a time: __shared__ statics belong to the running block
std::mutex g_error_mu;
cudaError_t g_last_error = cudaSuccess;
std::string g_last_message;

void set_error(cudaError_t code, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_error_mu);
  if (g_last_error == cudaSuccess) g_last_error = code;
  g_last_message = message;
}

Block& current() {
  if (tls_block == nullptr) throw std::logic_error("CUDA device function called outside a kernel");
  return *tls_block;
}

}  // namespace

void fail(const std::string& message) {
  Block& b = current();
  std::unique_lock<std::mutex> lock(b.mu);
  b.fail_locked(message);
}

int lane_id() { return tls_tid % 32; }

void syncthreads(const std::source_location& where) {
  Block& b = current();
  std::unique_lock<std::mutex> lock(b.mu);
  if (b.aborted) throw Abort{};
  if (b.exited > 0) {
    b.fail_locked("__syncthreads at " + where_str(where.file_name(), where.line()) + " after " +
                  std::to_string(b.exited) +
                  " thread(s) of the block returned: every thread must reach every barrier");
  }
  b.arrive_and_wait(lock, b.phase, "__syncthreads", where.file_name(), where.line());
}

namespace {
Warp& warp_for_call(Block& b, std::unique_lock<std::mutex>& lock, unsigned mask, const char* what,
                    const std::source_location& where) {
  (void)lock;
  if (b.aborted) throw Abort{};
  Warp& w = *b.warps[tls_tid / 32];
  const unsigned full = w.lanes == 32 ? 0xffffffffu : ((1u << w.lanes) - 1u);
  if ((mask & full) != full) {
    b.fail_locked(std::string(what) + " at " + where_str(where.file_name(), where.line()) +
                  " with a partial mask: pydl's kernels use whole warps");
  }
  if (w.phase.exited > 0) {
    b.fail_locked(std::string(what) + " at " + where_str(where.file_name(), where.line()) +
                  " after lanes of the warp returned");
  }
  return w;
}
}  // namespace

void syncwarp(unsigned mask, const std::source_location& where) {
  Block& b = current();
  std::unique_lock<std::mutex> lock(b.mu);
  Warp& w = warp_for_call(b, lock, mask, "__syncwarp", where);
  b.arrive_and_wait(lock, w.phase, "__syncwarp", where.file_name(), where.line());
}

uint64_t exchange(unsigned mask, uint64_t bits, int src, const std::source_location& where) {
  Block& b = current();
  std::unique_lock<std::mutex> lock(b.mu);
  Warp& w = warp_for_call(b, lock, mask, "warp shuffle", where);
  w.slots[tls_tid % 32] = bits;
  b.arrive_and_wait(lock, w.phase, "warp shuffle", where.file_name(), where.line());
  const uint64_t value = (src >= 0 && src < w.lanes) ? w.slots[src] : bits;
  // Second phase: nobody overwrites a slot before every lane has read the first round.
  b.arrive_and_wait(lock, w.phase, "warp shuffle", where.file_name(), where.line());
  return value;
}

void run_grid(const char* name, dim3 grid, dim3 block, const void* kernel_id,
              void (*body)(void* ctx), void* ctx) {
  (void)kernel_id;
  const uint64_t nthreads = uint64_t(block.x) * block.y * block.z;
  if (nthreads == 0 || nthreads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
      grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 ||
      grid.z > 65535) {
    set_error(cudaErrorInvalidConfiguration,
              std::string("invalid configuration argument (grid ") + std::to_string(grid.x) +
                  "x" + std::to_string(grid.y) + "x" + std::to_string(grid.z) + ", block " +
                  std::to_string(block.x) + "x" + std::to_string(block.y) + "x" +
                  std::to_string(block.z) + ") for " + name);
    return;
  }
  std::lock_guard<std::mutex> launch_lock(g_launch_mu);
  const int n = static_cast<int>(nthreads);
  Block b;
  b.nthreads = n;
  b.phase.expected = n;
  for (int w0 = 0; w0 < n; w0 += 32) {
    auto w = std::make_unique<Warp>();
    w->lanes = std::min(32, n - w0);
    w->phase.expected = w->lanes;
    b.warps.push_back(std::move(w));
  }

  // Workers persist across the blocks of this launch; the launching thread hands out blocks.
  std::mutex ctl_mu;
  std::condition_variable ctl_cv;
  uint64_t block_serial = 0;  // incremented to start the next block
  int done = 0;
  bool stop = false;
  uint3 next_block{0, 0, 0};

  auto worker = [&](int tid) {
    tls_block = &b;
    tls_tid = tid;
    threadIdx = {static_cast<unsigned>(tid % block.x),
                 static_cast<unsigned>((tid / block.x) % block.y),
                 static_cast<unsigned>(tid / (block.x * block.y))};
    blockDim = block;
    gridDim = grid;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(ctl_mu);
        ctl_cv.wait(lock, [&] { return stop || block_serial != seen; });
        if (stop) break;
        seen = block_serial;
        blockIdx = next_block;
      }
      try {
        body(ctx);
      } catch (const Abort&) {
      } catch (const std::exception& e) {
        std::unique_lock<std::mutex> lock(b.mu);
        try {
          b.fail_locked(std::string("exception in kernel: ") + e.what());
        } catch (const Abort&) {
        }
      }
      {
        std::unique_lock<std::mutex> lock(b.mu);
        ++b.exited;
        Warp& w = *b.warps[tid / 32];
        ++w.phase.exited;
        try {
          if (b.phase.arrived > 0) {
            b.fail_locked("a thread returned while others wait at __syncthreads (" +
                          where_str(b.phase.file, b.phase.line) + ")");
          }
          if (w.phase.arrived > 0) {
            b.fail_locked("a lane returned while others wait at a warp operation (" +
                          where_str(w.phase.file, w.phase.line) + ")");
          }
          if (b.blocked > 0 && b.blocked + b.exited == b.nthreads) {
            b.fail_locked("deadlock: the remaining threads wait at barriers no one else reaches");
          }
        } catch (const Abort&) {
        }
      }
      {
        std::lock_guard<std::mutex> lock(ctl_mu);
        if (++done == n) ctl_cv.notify_all();
      }
    }
    tls_block = nullptr;
  };

  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int t = 0; t < n; ++t) threads.emplace_back(worker, t);

  for (unsigned z = 0; z < grid.z && !b.aborted; ++z) {
    for (unsigned y = 0; y < grid.y && !b.aborted; ++y) {
      for (unsigned x = 0; x < grid.x && !b.aborted; ++x) {
        {
          std::lock_guard<std::mutex> block_lock(b.mu);
          b.exited = 0;
          b.blocked = 0;
          b.phase.arrived = 0;
          for (auto& w : b.warps) {
            w->phase.arrived = 0;
            w->phase.exited = 0;
          }
        }
        std::unique_lock<std::mutex> lock(ctl_mu);
        done = 0;
        next_block = {x, y, z};
        ++block_serial;
        ctl_cv.notify_all();
        ctl_cv.wait(lock, [&] { return done == n; });
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(ctl_mu);
    stop = true;
    ctl_cv.notify_all();
  }
  for (auto& t : threads) t.join();
  if (b.aborted) {
    set_error(b.error.rfind("misaligned", 0) == 0 ? cudaErrorMisalignedAddress
                                                  : cudaErrorLaunchFailure,
              std::string(name) + ": " + b.error);
  }
}

}  // namespace pydl_emu

cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lock(pydl_emu::g_error_mu);
  cudaError_t e = pydl_emu::g_last_error;
  pydl_emu::g_last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() {
  std::lock_guard<std::mutex> lock(pydl_emu::g_error_mu);
  return pydl_emu::g_last_error;
}

const char* cudaGetErrorString(cudaError_t error) {
  if (error == cudaSuccess) return "no error";
  std::lock_guard<std::mutex> lock(pydl_emu::g_error_mu);
  // The message of the latest failure; it lives until the next failure.
  static thread_local std::string copy;
  copy = pydl_emu::g_last_message.empty() ? "emulated CUDA error" : pydl_emu::g_last_message;
  return copy.c_str();
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 0;
  return cudaErrorNoDevice;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 0;
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t) {
  if (count) std::memset(ptr, value, count);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, int, cudaStream_t) {
  if (count) std::memmove(dst, src, count);
  return cudaSuccess;
}
