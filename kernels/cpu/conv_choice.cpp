// The CPU convolution kernels of kernels/conv.inc: each call runs oneDNN or im2col + GEMM
// (kernels/cpu/conv_paths.h), whichever is faster for its (direction, shape).
//
// Why measure: neither path wins everywhere. oneDNN's direct convolutions are several times faster
// on most of the models' shapes, but on some (tiny images, 1x1 kernels that are plain GEMMs) the
// reorders into its blocked layouts cost more than they save; which ones depends on the CPU. So the
// first call of each shape runs both paths once to warm up (oneDNN creates its primitive then),
// then times both, interleaved, twice when the first times are within a factor 1.5, and keeps the
// faster (best of the runs); later calls of the shape run the kept path only. Shapes of under 2
// million multiply-adds run im2col untimed (see kMinMeasuredMacs). Both paths assign the whole
// output, so the repeats leave the same result as one call (to float rounding between the two
// paths). A shape oneDNN refuses runs im2col.
//
// context().cpu_conv (EMBER_CONV=auto|onednn|im2col) forces a path. With EMBER_PROFILE, one line
// per shape at exit says which path it took and the measured times.
#include "kernels/cpu/conv_choice.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "core/context.h"
#include "core/error.h"
#include "core/profile.h"
#include "kernels/cpu/conv_paths.h"
#include "kernels/kernels.h"

namespace ember::cpu {

namespace {

enum class Dir { Forward, BackwardData, BackwardFilter };
const char* dir_name(Dir d) {
  return d == Dir::Forward ? "forward" : d == Dir::BackwardData ? "backward_data" : "backward_filter";
}

// (direction, N, Ci, H, W, Co, KH, KW, stride, pad): the output size follows from these.
using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int>;

// The choices so far, and the summary at exit (with the profiler on).
struct Registry {
  std::mutex mutex;
  std::map<Key, ConvChoice> choices;
  ~Registry() {
    if (!profile::enabled()) return;
    const std::string r = conv_choice_report();
    if (!r.empty()) std::fprintf(stderr, "ember conv paths (oneDNN vs im2col + GEMM, per shape):\n%s", r.c_str());
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

using profile::now_ms;
using How = ConvChoice::How;

const char* how_name(How h) {
  switch (h) {
    case How::Measured: return "measured";
    case How::Small: return "small, not timed";
    case How::Forced: return "forced by EMBER_CONV";
    case How::NoOnednn: return "built without oneDNN";
    case How::Refused: return "refused by oneDNN";
  }
  return "?";
}

// Runs the call on one path: true for oneDNN.
using Runner = void (*)(bool onednn, const Tensor& a, const Tensor& b, int stride, int pad, Tensor& out);

// Convolutions of fewer multiply-adds than this run im2col without timing: they take microseconds,
// where timing is noise and the choice changes nothing (im2col won nearly all such shapes measured,
// having no reorders to pay for); and tests full of tiny shapes do not pay for six runs of each.
constexpr double kMinMeasuredMacs = 2e6;

// Times both paths on this call's tensors (see the header comment) and returns the choice.
ConvChoice measure(Runner run, const Tensor& a, const Tensor& b, int stride, int pad, Tensor& out, double macs) {
  ConvChoice c;
  c.path = "im2col";
  if (macs < kMinMeasuredMacs) {
    c.how = How::Small;
    run(false, a, b, stride, pad, out);
    return c;
  }
  try {
    run(true, a, b, stride, pad, out);  // warm-up: creates the primitive
  } catch (const std::exception& e) {
    c.how = How::Refused;
    c.refusal = e.what();
    run(false, a, b, stride, pad, out);
    return c;
  }
  run(false, a, b, stride, pad, out);
  double best[2] = {1e300, 1e300};  // [im2col, onednn]
  for (int rep = 0; rep < 2; ++rep) {
    for (int onednn = 1; onednn >= 0; --onednn) {
      const double t0 = now_ms();
      run(onednn, a, b, stride, pad, out);
      best[onednn] = std::min(best[onednn], now_ms() - t0);
    }
    // A factor of 1.5 is not noise: the second round is only for close calls.
    if (std::max(best[0], best[1]) > 1.5 * std::min(best[0], best[1])) break;
  }
  c.onednn_ms = best[1], c.im2col_ms = best[0];
  if (best[1] < best[0]) c.path = "onednn";
  run(c.path == "onednn", a, b, stride, pad, out);  // the output of the kept path, as later calls give
  c.how = How::Measured;
  return c;
}

// x-shaped `in`, w-shaped `w`, as in kernels/conv.inc.
void dispatch(Dir dir, Runner run, const Tensor& in, const Tensor& w, const Tensor& a, const Tensor& b, int stride,
              int pad, Tensor& out) {
  const CpuConv mode = context().cpu_conv;
  const bool have_onednn = conv_paths::onednn_built();
  EMBER_CHECK(mode != CpuConv::Onednn || have_onednn,
              "EMBER_CONV=onednn, but ember was built without oneDNN (install libdnnl-dev and reconfigure)");
  const Key key{static_cast<int>(dir), in.size(0), in.size(1), in.size(2), in.size(3), w.size(0), w.size(2),
                w.size(3),             stride,     pad};
  if (a.numel() == 0 || b.numel() == 0 || out.numel() == 0) {  // empty batch: im2col's conventions
    run(false, a, b, stride, pad, out);
    return;
  }
  Registry& r = registry();
  std::unique_lock<std::mutex> lock(r.mutex);
  auto it = r.choices.find(key);
  // A forced path bypasses the measured choices (and a later auto call measures).
  if (it != r.choices.end() && mode == CpuConv::Auto && it->second.how != How::Forced) {
    ++it->second.calls;
    const bool onednn = it->second.path == "onednn";
    lock.unlock();
    run(onednn, a, b, stride, pad, out);
    return;
  }
  lock.unlock();
  ConvChoice c;
  if (mode == CpuConv::Auto && have_onednn) {
    // Multiply-adds, the same in the three directions: N * Ho*Wo * (Co*Ci*KH*KW).
    const Tensor& y = dir == Dir::Forward ? out : dir == Dir::BackwardData ? a : b;  // [N, Co, Ho, Wo]
    const double macs = static_cast<double>(y.numel()) / y.size(1) * static_cast<double>(w.numel());
    c = measure(run, a, b, stride, pad, out, macs);
  } else {
    c.path = mode == CpuConv::Onednn ? "onednn" : "im2col";
    c.how = mode == CpuConv::Auto ? How::NoOnednn : How::Forced;
    run(c.path == "onednn", a, b, stride, pad, out);
  }
  c.op = dir_name(dir);
  c.N = in.size(0), c.Ci = in.size(1), c.H = in.size(2), c.W = in.size(3);
  c.Co = w.size(0), c.KH = w.size(2), c.KW = w.size(3), c.stride = stride, c.pad = pad;
  c.calls = 1;
  lock.lock();
  auto [at, fresh] = r.choices.emplace(key, c);
  if (!fresh) {
    if (at->second.how == How::Forced && c.how != How::Forced)
      at->second = c;  // measured now: replaces what a forced run recorded
    else
      ++at->second.calls;
  }
}

}  // namespace

std::vector<ConvChoice> conv_choices() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<ConvChoice> out;
  for (const auto& [key, c] : r.choices) out.push_back(c);
  return out;
}

std::string conv_choice_report() {
  std::ostringstream os;
  for (const ConvChoice& c : conv_choices()) {
    char times[96] = "";
    if (c.onednn_ms >= 0)
      std::snprintf(times, sizeof times, ": onednn %.3f ms, im2col %.3f ms", c.onednn_ms, c.im2col_ms);
    os << "  conv " << c.op << " x [" << c.N << ", " << c.Ci << ", " << c.H << ", " << c.W << "] w [" << c.Co << ", "
       << c.Ci << ", " << c.KH << ", " << c.KW << "] s" << c.stride << " p" << c.pad << ": " << c.path << " ("
       << how_name(c.how) << (c.refusal.empty() ? "" : ": ") << c.refusal << times << "), " << c.calls
       << (c.calls == 1 ? " call\n" : " calls\n");
  }
  return os.str();
}

void conv_choices_reset() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.choices.clear();
}

void conv2d_forward(const Tensor& x, const Tensor& w, int stride, int pad, Tensor& y) {
  const Runner run = [](bool onednn, const Tensor& x, const Tensor& w, int stride, int pad, Tensor& y) {
    onednn ? conv_paths::onednn_forward(x, w, stride, pad, y) : conv_paths::im2col_forward(x, w, stride, pad, y);
  };
  dispatch(Dir::Forward, run, x, w, x, w, stride, pad, y);
}

void conv2d_backward_data(const Tensor& dy, const Tensor& w, int stride, int pad, Tensor& dx) {
  const Runner run = [](bool onednn, const Tensor& dy, const Tensor& w, int stride, int pad, Tensor& dx) {
    onednn ? conv_paths::onednn_backward_data(dy, w, stride, pad, dx)
           : conv_paths::im2col_backward_data(dy, w, stride, pad, dx);
  };
  dispatch(Dir::BackwardData, run, dx, w, dy, w, stride, pad, dx);
}

void conv2d_backward_filter(const Tensor& x, const Tensor& dy, int stride, int pad, Tensor& dw) {
  const Runner run = [](bool onednn, const Tensor& x, const Tensor& dy, int stride, int pad, Tensor& dw) {
    onednn ? conv_paths::onednn_backward_filter(x, dy, stride, pad, dw)
           : conv_paths::im2col_backward_filter(x, dy, stride, pad, dw);
  };
  dispatch(Dir::BackwardFilter, run, x, dw, x, dy, stride, pad, dw);
}

}  // namespace ember::cpu
