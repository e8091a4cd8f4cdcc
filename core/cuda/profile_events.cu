// CUDA event pairs for the op profiler (profile_events.h). The slot vector may grow while another
// thread reads a slot, so every access takes the pool's lock; the CUDA calls run outside it.
#include <mutex>
#include <vector>

#include "core/cuda/cuda_context.cuh"
#include "core/cuda/profile_events.h"

namespace ember::cuda_rt {

namespace {

struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
};

struct Pool {
  std::mutex mu;
  std::vector<EventPair> slots;
  std::vector<int> free_slots;
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: marks may be read at exit
  return *p;
}

}  // namespace

int profile_start() {
  Pool& p = pool();
  int mark;
  cudaEvent_t start;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.free_slots.empty()) {
      EventPair e;
      EMBER_CUDA_CHECK(cudaEventCreate(&e.start));
      EMBER_CUDA_CHECK(cudaEventCreate(&e.stop));
      p.slots.push_back(e);
      p.free_slots.push_back(static_cast<int>(p.slots.size()) - 1);
    }
    mark = p.free_slots.back();
    p.free_slots.pop_back();
    start = p.slots[mark].start;
  }
  EMBER_CUDA_CHECK(cudaEventRecord(start, stream()));
  return mark;
}

void profile_stop(int mark) {
  Pool& p = pool();
  cudaEvent_t stop;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    stop = p.slots[mark].stop;
  }
  EMBER_CUDA_CHECK(cudaEventRecord(stop, stream()));
}

float profile_elapsed_ms(int mark) {
  Pool& p = pool();
  EventPair e;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    e = p.slots[mark];
  }
  EMBER_CUDA_CHECK(cudaEventSynchronize(e.stop));
  float ms = 0;
  EMBER_CUDA_CHECK(cudaEventElapsedTime(&ms, e.start, e.stop));
  std::lock_guard<std::mutex> lock(p.mu);
  p.free_slots.push_back(mark);
  return ms;
}

}  // namespace ember::cuda_rt
