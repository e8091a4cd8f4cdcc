#include "core/storage.h"

#include "core/error.h"
#include "core/host_allocator.h"
#ifdef EMBER_WITH_CUDA
#include "core/device_memory.h"
#endif

namespace ember {

std::shared_ptr<Storage> Storage::allocate(size_t bytes, Device device) {
  if (device == Device::CPU) {
    return std::shared_ptr<Storage>(new Storage(bytes ? host::allocate(bytes) : nullptr, bytes, device));
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
    host::deallocate(data_, bytes_);
    return;
  }
#ifdef EMBER_WITH_CUDA
  cuda_rt::deallocate(data_, bytes_);
#endif
}

}  // namespace ember
