// Storage: one allocation of bytes on one device, freed when the last Tensor drops it.
// CPU memory is 64-byte aligned (a cache line, and enough for any SIMD load) and comes from the
// caching allocator in core/host_allocator.h; CUDA memory from the one in core/cuda/allocator.cu.
#pragma once
#include <cstddef>
#include <memory>

#include "core/device.h"

namespace ember {

class Storage {
 public:
  // Throws OutOfMemory with the requested size (and, on CUDA, the allocator's statistics).
  static std::shared_ptr<Storage> allocate(size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  Storage(void* data, size_t bytes, Device device) : data_(data), bytes_(bytes), device_(device) {}
  void* data_;
  size_t bytes_;
  Device device_;
};

}  // namespace ember
