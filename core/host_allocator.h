// The caching allocator behind every CPU tensor (Storage on Device::CPU): the host twin of the
// CUDA one (core/cuda/allocator.cu), with the same size classes and statistics.
//
// A training step frees and allocates the same sizes in the same order every step; sending each
// to the C library means large blocks come from mmap and go back with munmap, so every step
// page-faults its activations in again (zeroed by the kernel). Freed blocks go to a free list of
// their size class instead; a request takes a cached block of its class, and only a miss calls
// aligned_alloc. Classes: 512 B steps up to 1 MiB, 2 MiB steps above; blocks are never split, so
// a repeating step makes no system allocation after its first repetition.
// EMBER_CPU_NO_CACHE=1 (and any AddressSanitizer build) turns caching off, so that every tensor
// has its own bounds and a use after free is caught.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ember::host {

struct AllocatorStats {
  size_t in_use = 0;          // bytes handed out to tensors now (rounded to the size class)
  size_t peak_in_use = 0;     // the most ever in use at once
  size_t cached = 0;          // bytes held in free lists
  int64_t system_allocs = 0;  // aligned_alloc calls so far
  int64_t system_frees = 0;   // free calls so far
};

// 64-byte aligned memory of at least `bytes` (> 0). Throws OutOfMemory naming the request.
void* allocate(size_t bytes);
// Returns a block from allocate(bytes) (the same `bytes`).
void deallocate(void* p, size_t bytes);

AllocatorStats allocator_stats();
void reset_peak();
void empty_cache();  // returns cached blocks to the C library
std::string allocator_summary();

}  // namespace ember::host
