// The caching device allocator behind every CUDA tensor (core/device_memory.h).
//
// cudaMalloc and cudaFree are slow (cudaFree synchronises the whole device), and a training
// step allocates the same sizes in the same order every time. So, like PyTorch's allocator,
// freed blocks go to a free list instead of back to the driver, and a request takes a cached
// block of its size class; only a miss calls cudaMalloc.
//
// Size classes: requests are rounded up to 512 B up to 1 MiB and to 2 MiB above (the driver's
// own large-page granularity), and a block serves only requests of its own class. Exact
// classes make the steady state provable: a step that repeats the previous step's sequence of
// allocations and frees never has more blocks of a class in use than the previous step had, so
// once the step repeats itself there is no cudaMalloc at all (tests/cuda/test_runtime.cpp checks
// this; the first step may differ from the next when the cuDNN workspace grows during it).
// Taking a larger cached block would save memory in odd patterns but could steal the block a
// later request of that size needs. Blocks are never split or merged.
// Reuse needs no events because of the one-stream invariant (core/cuda/cuda_context.cuh): every
// kernel and copy runs on the context's one stream, so work queued on a reused block runs after
// the work queued by its previous owner. An allocation names no stream, so the invariant is
// asserted where a stream enters ember (cuda_rt::check_stream in the launchers that take one).
// Handing ember memory to work on another stream without synchronising first is a bug.
//
// EMBER_CUDA_NO_CACHE=1 turns caching off: every request is an exact-size cudaMalloc and every
// release a cudaFree, so compute-sanitizer's memcheck sees each tensor's true bounds and every
// use after free (scripts/gpu_check.sh runs it so). Slow; for checking only.
//
// Out of memory: the cache is returned to the driver and cudaMalloc tried once more; if that
// fails too, ember::OutOfMemory names the request and the allocator's statistics.
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "core/cuda/cuda_context.cuh"

namespace ember::cuda_rt {

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;  // up to here: 512-byte granularity
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;  // above: 2 MiB granularity
constexpr size_t kMaxRequest = size_t(1) << 56;  // beyond any device; keeps rounding from overflowing

size_t round_size(size_t bytes) {
  size_t g = bytes <= kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + g - 1) / g * g;
}

struct Allocator {
  std::mutex mu;
  bool caching = true;                                         // false under EMBER_CUDA_NO_CACHE=1
  size_t device_total = 0;                                     // the device's memory, asked once
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // size class -> cached blocks
  size_t free_count = 0;                                       // blocks in free_blocks
  std::unordered_map<void*, size_t> live;                      // handed-out block -> its size
  AllocatorStats stats;
};

// Never destroyed: tensors released during static destruction must still find it.
Allocator& the_allocator() {
  static Allocator* a = [] {
    auto* al = new Allocator;
    const char* env = std::getenv("EMBER_CUDA_NO_CACHE");
    al->caching = !(env && env[0] == '1');
    return al;
  }();
  return *a;
}

std::string mib(size_t bytes) {
  std::ostringstream os;
  os.precision(1);
  os << std::fixed << static_cast<double>(bytes) / (1 << 20) << " MiB";
  return os.str();
}

std::string summary_locked(const Allocator& a) {
  std::ostringstream os;
  os << "in use " << mib(a.stats.in_use) << " (peak " << mib(a.stats.peak_in_use) << "), cached " << mib(a.stats.cached)
     << " in " << a.free_count << " blocks, " << a.stats.device_allocs << " cudaMalloc / " << a.stats.device_frees
     << " cudaFree";
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
    os << "; device: " << mib(free_b) << " free of " << mib(total_b);
  else
    (void)cudaGetLastError();
  return os.str();
}

void release_cache_locked(Allocator& a) {
  for (auto& kv : a.free_blocks)
    for (void* p : kv.second) {
      EMBER_CUDA_CHECK(cudaFree(p));
      a.stats.device_frees++;
    }
  a.free_blocks.clear();
  a.free_count = 0;
  a.stats.cached = 0;
}

[[noreturn]] void throw_oom(const Allocator& a, size_t bytes, size_t rounded) {
  std::ostringstream os;
  os << "cuda: out of memory allocating " << bytes << " bytes (" << mib(rounded)
     << " rounded); allocator: " << summary_locked(a);
  throw OutOfMemory(os.str());
}

// cudaMalloc with one retry after emptying the cache.
void* device_malloc_locked(Allocator& a, size_t bytes, size_t rounded) {
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, rounded);
  if (e == cudaErrorMemoryAllocation && a.free_count > 0) {
    (void)cudaGetLastError();  // not sticky, but clear it so no later check reports it
    release_cache_locked(a);
    e = cudaMalloc(&p, rounded);
  }
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    throw_oom(a, bytes, rounded);
  }
  detail::check(e, "CUDA", "cudaMalloc(&p, rounded)", __func__, __FILE__, __LINE__);
  a.stats.device_allocs++;
  return p;
}

}  // namespace

void* allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  state();  // picks the device (and says why not, when there is none)
  Allocator& a = the_allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  if (a.device_total == 0) {
    size_t free_b = 0;
    EMBER_CUDA_CHECK(cudaMemGetInfo(&free_b, &a.device_total));
  }
  // More than the whole device can never succeed: say so without asking the driver.
  if (bytes > kMaxRequest || bytes > a.device_total)
    throw_oom(a, bytes, bytes > kMaxRequest ? bytes : round_size(bytes));
  const size_t rounded = a.caching ? round_size(bytes) : bytes;
  void* p = nullptr;
  auto it = a.free_blocks.find(rounded);
  if (it != a.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    a.free_count--;
    a.stats.cached -= rounded;
  } else {
    p = device_malloc_locked(a, bytes, rounded);
  }
  a.live.emplace(p, rounded);
  a.stats.in_use += rounded;
  if (a.stats.in_use > a.stats.peak_in_use) a.stats.peak_in_use = a.stats.in_use;
  return p;
}

void deallocate(void* p, size_t /*bytes: the block's own size is recorded*/) {
  if (!p) return;
  Allocator& a = the_allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  auto it = a.live.find(p);
  if (it == a.live.end()) {
    // Called from destructors, which must not throw: a foreign pointer is a bug worth a loud line.
    std::fprintf(stderr, "[ember] cuda deallocate: %p was not allocated by ember's allocator; ignored\n", p);
    return;
  }
  const size_t size = it->second;
  a.live.erase(it);
  a.stats.in_use -= size;
  if (!a.caching) {
    const cudaError_t e = cudaFree(p);                      // synchronises: queued kernels using p finish first
    if (e != cudaSuccess && e != cudaErrorCudartUnloading)  // at exit the runtime may be gone already
      std::fprintf(stderr, "[ember] cudaFree: %s\n", cudaGetErrorString(e));
    a.stats.device_frees++;
    return;
  }
  a.free_blocks[size].push_back(p);
  a.free_count++;
  a.stats.cached += size;
}

AllocatorStats allocator_stats() {
  Allocator& a = the_allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  return a.stats;
}

void reset_peak() {
  Allocator& a = the_allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  a.stats.peak_in_use = a.stats.in_use;
}

void empty_cache() {
  Allocator& a = the_allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  release_cache_locked(a);
}

std::string allocator_summary() {
  Allocator& a = the_allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  return summary_locked(a);
}

}  // namespace ember::cuda_rt
