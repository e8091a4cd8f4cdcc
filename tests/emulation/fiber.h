// User-space fibers for the emulated threads of a block (x86-64: a 20-instruction context switch;
// elsewhere ucontext). A fiber runs until it waits at a barrier or collective, then switches back
// to the scheduler, so a 1024-thread block costs 1024 small stacks, not 1024 OS threads.
// AddressSanitizer is told about every switch (it tracks the current stack).
#pragma once
#include <cstddef>

namespace ember::emu {

class FiberStack {
 public:
  FiberStack();
  ~FiberStack();
  FiberStack(const FiberStack&) = delete;
  FiberStack& operator=(const FiberStack&) = delete;
  char* bottom() const { return base_ + kGuard; }
  size_t size() const { return kSize; }
  static constexpr size_t kGuard = 4096;          // PROT_NONE: an overflow faults, it never corrupts
  static constexpr size_t kSize = 256 * 1024;     // ASan's redzones make frames several times larger

 private:
  char* base_ = nullptr;
};

// One scheduler (the OS thread running a block) and its fibers.
class FiberSet {
 public:
  using Entry = void (*)(void* arg);
  explicit FiberSet(size_t n);
  ~FiberSet();
  // Prepares fiber i to run entry(arg) from its start.
  void reset(size_t i, Entry entry, void* arg);
  // Scheduler side: runs fiber i until it yields or finishes.
  void resume(size_t i);
  // Fiber side, first thing a fiber's entry does.
  void started();
  // Fiber side: back to the scheduler; `finished` for the last switch of a fiber.
  void yield(bool finished = false);
  size_t size() const { return n_; }

 private:
  struct Impl;
  Impl* impl_;
  size_t n_;
};

}  // namespace ember::emu
