// The op profiler's bookkeeping and table (see profile.h).
#include "core/profile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "core/autograd.h"

#ifdef EMBER_WITH_CUDA
#include "core/cuda/profile_events.h"
#endif

namespace ember::profile {

namespace detail {
namespace {
bool env_says_on() {
  const char* v = std::getenv("EMBER_PROFILE");
  return v && *v && std::strcmp(v, "0") != 0;
}
}  // namespace
std::atomic<bool> g_enabled{env_says_on()};
}  // namespace detail

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

namespace {

struct Stats {
  double ms[2] = {0, 0};  // [forward, backward]
  int64_t calls[2] = {0, 0};
};

struct PendingCuda {
  const char* kernel;
  bool backward;
  int mark;
};

struct State {
  std::mutex mu;
  std::unordered_map<const char*, Stats> by_kernel;  // keyed by the name literal
  std::vector<PendingCuda> pending;                  // CUDA event pairs not read yet
  double first_ms = -1, last_ms = 0;                 // wall clock of the first and last op
  bool registered_exit = false;
};

State& state() {
  static State* s = new State;  // never destroyed: the exit handler reads it
  return *s;
}

// Reads the pending CUDA events into the table (waits for them). Caller holds the lock.
void drain_cuda(State& s) {
#ifdef EMBER_WITH_CUDA
  for (const PendingCuda& p : s.pending) {
    Stats& st = s.by_kernel[p.kernel];
    st.ms[p.backward] += cuda_rt::profile_elapsed_ms(p.mark);
    st.calls[p.backward] += 1;
  }
#endif
  s.pending.clear();
}

void print_at_exit() {
  const std::string t = report();
  if (!t.empty()) std::fprintf(stderr, "%s", t.c_str());
}

void register_exit(State& s) {
  if (s.registered_exit) return;
  s.registered_exit = true;
  std::atexit(print_at_exit);
}

}  // namespace

void enable() {
  detail::g_enabled.store(true);
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  register_exit(s);
}

void disable() { detail::g_enabled.store(false); }

void reset() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  drain_cuda(s);
  s.by_kernel.clear();
  s.first_ms = -1;
}

void Scope::begin(const char* kernel, Device device) {
  kernel_ = kernel;
  device_ = device;
  backward_ = in_backward();
  start_ms_ = now_ms();
#ifdef EMBER_WITH_CUDA
  if (device == Device::CUDA) cuda_mark_ = cuda_rt::profile_start();
#endif
}

void Scope::end() {
  const double t = now_ms();
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  register_exit(s);  // also when switched on by EMBER_PROFILE, which calls no enable()
  if (s.first_ms < 0) s.first_ms = start_ms_;
  s.last_ms = t;
#ifdef EMBER_WITH_CUDA
  if (device_ == Device::CUDA) {
    cuda_rt::profile_stop(cuda_mark_);
    s.pending.push_back({kernel_, backward_, cuda_mark_});
    if (s.pending.size() >= 512) drain_cuda(s);  // bounds the events held
    return;
  }
#endif
  Stats& st = s.by_kernel[kernel_];
  st.ms[backward_] += t - start_ms_;
  st.calls[backward_] += 1;
}

std::string report() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  drain_cuda(s);
  if (s.by_kernel.empty()) return "";
  // Rows by name (one kernel may be dispatched from several op entries), largest total first.
  std::map<std::string, Stats> merged;
  double total = 0;
  for (const auto& [name, st] : s.by_kernel) {
    Stats& m = merged[name];
    for (int p = 0; p < 2; ++p) m.ms[p] += st.ms[p], m.calls[p] += st.calls[p];
    total += st.ms[0] + st.ms[1];
  }
  std::vector<std::pair<std::string, Stats>> rows(merged.begin(), merged.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second.ms[0] + a.second.ms[1] > b.second.ms[0] + b.second.ms[1];
  });
  const double wall = s.last_ms - s.first_ms;
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line,
                "\nember profile: %.1f ms in ops over %.1f ms of wall time since the first op (%.0f%%)\n", total, wall,
                wall > 0 ? 100.0 * total / wall : 0.0);
  os << line;
  std::snprintf(line, sizeof line, "%-34s %12s %7s %12s %7s %7s\n", "kernel", "forward_ms", "calls", "backward_ms",
                "calls", "share");
  os << line;
  for (const auto& [name, st] : rows) {
    std::snprintf(line, sizeof line, "%-34s %12.1f %7lld %12.1f %7lld %6.1f%%\n", name.c_str(), st.ms[0],
                  static_cast<long long>(st.calls[0]), st.ms[1], static_cast<long long>(st.calls[1]),
                  total > 0 ? 100.0 * (st.ms[0] + st.ms[1]) / total : 0.0);
    os << line;
  }
  return os.str();
}

}  // namespace ember::profile
