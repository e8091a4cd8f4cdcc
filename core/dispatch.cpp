#include "core/dispatch.h"

#ifdef EMBER_WITH_CUDA
#include "core/device_memory.h"
#endif

namespace ember::detail {

Device common_device(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t || !t->defined()) continue;
    if (!first) {
      first = t;
      continue;
    }
    EMBER_CHECK(t->device() == first->device(), op << ": tensors on different devices (" << first->device()
                                                   << " and " << t->device() << "); move them with .to()");
  }
  EMBER_CHECK(first, op << ": no defined input tensor");
  return first->device();
}

void after_cuda_op(const char* op) {
#ifdef EMBER_WITH_CUDA
  if (context().sync_debug) {
    try {
      cuda_rt::synchronize();
    } catch (const Error& e) {
      EMBER_FAIL("after " << op << " (EMBER_SYNC_DEBUG): " << e.what());
    }
  }
#endif
}

}  // namespace ember::detail
