// Per-thread scratch memory for the CPU kernels: grows to the largest request and is then reused,
// so a training step that repeats itself allocates nothing (and large buffers are not mapped and
// page-faulted in again on every call). Valid until the same thread's next call.
#pragma once
#include <cstdint>
#include <vector>

namespace ember::cpu::detail {

inline float* scratch(int64_t floats) {
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < floats) buf.resize(static_cast<size_t>(floats));
  return buf.data();
}

}  // namespace ember::cpu::detail
