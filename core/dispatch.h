// The dispatch layer: the one place where an op chooses its CPU or CUDA implementation.
//
// Every kernel family declares its functions once, in kernels/<family>.inc, and that list is
// included into both namespaces ember::cpu and ember::cuda (see kernels/<family>.h), so the two
// backends have identical signatures by construction. An op entry in core/ops/ calls
//     EMBER_DISPATCH("relu", x.device(), relu_forward, x, y);
// which checks nothing but the device and forwards the arguments. It also opens the op
// profiler's Scope named by the kernel function (core/profile.h; free when profiling is off).
#pragma once
#include <initializer_list>

#include "core/context.h"
#include "core/error.h"
#include "core/profile.h"
#include "core/tensor.h"

namespace ember::detail {
// All tensors given to an op must live on one device; names both when they do not.
Device common_device(const char* op, std::initializer_list<const Tensor*> ts);
void after_cuda_op(const char* op);  // sync + check when context().sync_debug
}  // namespace ember::detail

#ifdef EMBER_WITH_CUDA
#define EMBER_DISPATCH(opname, device, fn, ...)                 \
  do {                                                          \
    ::ember::profile::Scope profile_scope_(#fn, (device));      \
    if ((device) == ::ember::Device::CPU) {                     \
      ::ember::cpu::fn(__VA_ARGS__);                            \
    } else {                                                    \
      ::ember::cuda::fn(__VA_ARGS__);                           \
      ::ember::detail::after_cuda_op(opname);                   \
    }                                                           \
  } while (0)
#else
#define EMBER_DISPATCH(opname, device, fn, ...)                                              \
  do {                                                                                       \
    ::ember::profile::Scope profile_scope_(#fn, (device));                                   \
    if ((device) == ::ember::Device::CPU) {                                                  \
      ::ember::cpu::fn(__VA_ARGS__);                                                         \
    } else {                                                                                 \
      EMBER_FAIL(opname << ": tensor is on cuda but ember was built without the CUDA backend"); \
    }                                                                                        \
  } while (0)
#endif
