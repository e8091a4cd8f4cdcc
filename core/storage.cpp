#include "core/storage.h"

#include <cstdlib>
#include <new>

#include "core/error.h"
#ifdef EMBER_WITH_CUDA
#include "core/device_memory.h"
#endif

namespace ember {

std::shared_ptr<Storage> Storage::allocate(size_t bytes, Device device) {
  if (device == Device::CPU) {
    size_t rounded = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
    void* p = rounded ? std::aligned_alloc(64, rounded) : nullptr;
    if (rounded && !p) throw OutOfMemory("out of host memory allocating " + std::to_string(bytes) + " bytes");
    return std::shared_ptr<Storage>(new Storage(p, bytes, device));
  }
#ifdef EMBER_WITH_CUDA
  return std::shared_ptr<Storage>(new Storage(bytes ? cuda_rt::allocate(bytes) : nullptr, bytes, device));
#else
  EMBER_FAIL("cannot allocate on cuda: ember was built without the CUDA backend");
#endif
}

Storage::~Storage() {
  if (!data_) return;
  if (device_ == Device::CPU) {
    std::free(data_);
    return;
  }
#ifdef EMBER_WITH_CUDA
  cuda_rt::deallocate(data_, bytes_);
#endif
}

}  // namespace ember
