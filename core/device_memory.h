// The few device-memory services core needs from the CUDA backend (core/cuda/*.cu).
// Only declared when the CUDA backend is compiled in; callers guard with EMBER_WITH_CUDA.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ember::cuda_rt {

// True when a CUDA device can be used. Probed once; the reason is kept for messages.
bool available();
const std::string& unavailable_reason();

// From the caching allocator (no cudaMalloc once a size has been seen).
void* allocate(size_t bytes);
void deallocate(void* p, size_t bytes);

// Copies are stream-ordered on the context's stream; to_host waits for completion.
void copy_host_to_device(void* dst, const void* src, size_t bytes);
void copy_device_to_host(void* dst, const void* src, size_t bytes);
void copy_device_to_device(void* dst, const void* src, size_t bytes);
void synchronize();

struct AllocatorStats {
  size_t in_use = 0;        // bytes handed out to tensors now
  size_t peak_in_use = 0;   // the most ever in use at once
  size_t cached = 0;        // bytes held in free lists
  int64_t device_allocs = 0;  // number of cudaMalloc calls so far
  int64_t device_frees = 0;   // number of cudaFree calls so far
};
AllocatorStats allocator_stats();
void reset_peak();
void empty_cache();  // returns cached blocks to the driver
std::string allocator_summary();

}  // namespace ember::cuda_rt
