// The op profiler: time per kernel, forward and backward apart, switched on by EMBER_PROFILE=1
// in the environment (or profile::enable(), e.g. by an example's --profile flag). Off, it costs
// one relaxed atomic load per op.
//
// One mechanism covers every op: EMBER_DISPATCH (core/dispatch.h) opens a profile::Scope around
// the kernel it calls, named by the kernel function (conv2d_forward, attention_backward, ...).
// The phase is "backward" while the autograd engine runs backward functions, else "forward"
// (the optimiser's updates count as forward). On the CPU a Scope reads the steady clock at both
// ends (kernels are synchronous); on CUDA it records two events on ember's stream, read later, so
// the profiler adds no synchronisation to the step. At exit the table goes to stderr: per kernel
// the forward and backward milliseconds and calls and its share of all op time, with the wall time
// since the first op (the rest is autograd, allocation and the caller's own work).
#pragma once
#include <atomic>
#include <string>

#include "core/device.h"

namespace ember::profile {

namespace detail {
extern std::atomic<bool> g_enabled;
}

inline bool enabled() { return detail::g_enabled.load(std::memory_order_relaxed); }

// Turns the profiler on (the table is printed at exit). Idempotent.
void enable();
// Stops recording (what was recorded stays, and is printed at exit).
void disable();

// The table so far (empty when nothing was recorded); waits for pending CUDA events.
std::string report();

// Forgets everything recorded (e.g. after warm-up steps).
void reset();

// Milliseconds on the steady clock (an arbitrary origin): the CPU timings' clock.
double now_ms();

// Times one kernel call when the profiler is on.
class Scope {
 public:
  Scope(const char* kernel, Device device) {
    if (enabled()) begin(kernel, device);
  }
  ~Scope() {
    if (kernel_) end();
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  void begin(const char* kernel, Device device);
  void end();
  const char* kernel_ = nullptr;
  Device device_ = Device::CPU;
  bool backward_ = false;
  double start_ms_ = 0;  // CPU: steady clock
  int cuda_mark_ = -1;   // CUDA: the slot of the event pair
};

}  // namespace ember::profile
