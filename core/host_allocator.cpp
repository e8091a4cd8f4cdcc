// The caching host allocator (see host_allocator.h).
#include "core/host_allocator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace ember::host {

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;  // up to here: 512-byte granularity
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;  // above: 2 MiB granularity
constexpr size_t kMaxRequest = size_t(1) << 56;  // keeps rounding from overflowing

size_t round_size(size_t bytes) {
  const size_t g = bytes <= kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + g - 1) / g * g;
}

bool caching_from_env() {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#else
  const char* env = std::getenv("EMBER_CPU_NO_CACHE");
  return !(env && env[0] == '1');
#endif
}

struct Allocator {
  std::mutex mu;
  bool caching = caching_from_env();
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // size class -> cached blocks
  size_t free_count = 0;
  AllocatorStats stats;
};

// Never destroyed: tensors released during static destruction must still find it.
Allocator& the_allocator() {
  static Allocator* a = new Allocator;
  return *a;
}

std::string mib(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

void release_cache_locked(Allocator& a) {
  for (auto& [size, blocks] : a.free_blocks)
    for (void* p : blocks) {
      std::free(p);
      a.stats.system_frees += 1;
      a.stats.cached -= size;
    }
  a.free_blocks.clear();
  a.free_count = 0;
}

}  // namespace

void* allocate(size_t bytes) {
  if (bytes > kMaxRequest) throw OutOfMemory("out of host memory allocating " + std::to_string(bytes) + " bytes");
  Allocator& a = the_allocator();
  // Without caching the block has its exact size (rounded to the alignment, as aligned_alloc
  // requires), so that AddressSanitizer sees the tensor's true end.
  const size_t size = a.caching ? round_size(bytes) : (bytes + 63) / 64 * 64;
  std::lock_guard<std::mutex> lock(a.mu);
  void* p = nullptr;
  auto it = a.free_blocks.find(size);
  if (it != a.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    a.free_count -= 1;
    a.stats.cached -= size;
  } else {
    p = std::aligned_alloc(64, size);
    if (!p && a.free_count > 0) {  // give the cache back and try once more
      release_cache_locked(a);
      p = std::aligned_alloc(64, size);
    }
    if (!p)
      throw OutOfMemory("out of host memory allocating " + std::to_string(bytes) + " bytes (ember's CPU tensors: " +
                        mib(a.stats.in_use) + " in use)");
    a.stats.system_allocs += 1;
  }
  a.stats.in_use += size;
  a.stats.peak_in_use = std::max(a.stats.peak_in_use, a.stats.in_use);
  return p;
}

void deallocate(void* p, size_t bytes) {
  if (!p) return;
  Allocator& a = the_allocator();
  const size_t size = a.caching ? round_size(bytes) : (bytes + 63) / 64 * 64;
  std::lock_guard<std::mutex> lock(a.mu);
  a.stats.in_use -= size;
  if (!a.caching) {
    std::free(p);
    a.stats.system_frees += 1;
    return;
  }
  a.free_blocks[size].push_back(p);
  a.free_count += 1;
  a.stats.cached += size;
}

namespace {
// Runs f(allocator) under its lock.
template <class F>
auto locked(F f) {
  Allocator& a = the_allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  return f(a);
}
}  // namespace

AllocatorStats allocator_stats() {
  return locked([](Allocator& a) { return a.stats; });
}
void reset_peak() {
  locked([](Allocator& a) { a.stats.peak_in_use = a.stats.in_use; });
}
void empty_cache() {
  locked([](Allocator& a) { release_cache_locked(a); });
}

std::string allocator_summary() {
  return locked([](Allocator& a) {
    std::ostringstream os;
    os << "CPU tensors: in use " << mib(a.stats.in_use) << " (peak " << mib(a.stats.peak_in_use) << "), cached "
       << mib(a.stats.cached) << " in " << a.free_count << " blocks, " << a.stats.system_allocs << " aligned_alloc / "
       << a.stats.system_frees << " free" << (a.caching ? "" : " (caching off)");
    return os.str();
  });
}

}  // namespace ember::host
