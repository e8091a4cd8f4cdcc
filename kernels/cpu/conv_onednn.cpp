// CPU 2-D convolution through oneDNN (Debian's libdnnl 2.6, the library PyTorch's CPU convolutions
// use): forward, backward data and backward filter of kernels/conv.inc, float32 NCHW / OIHW.
//
// Why: on the classifier's and SAGAN's shapes oneDNN's direct JIT convolutions (AVX-512, blocked
// layouts, no im2col buffer) run several times faster than im2col + OpenBLAS sgemm, which loses
// time in the copies and in thin GEMMs. It is not faster everywhere, so kernels/cpu/conv_choice.cpp
// times both paths per shape and keeps the faster one.
//
// How: each primitive is created with format "any", so oneDNN picks its preferred (blocked)
// layouts; ember's plain NCHW / OIHW tensors are reordered into and out of them around the
// primitive. Per (direction, shape) a Plan caches the primitive and the reorders; the blocked
// copies go to one buffer shared by all shapes (rewritten on every call: weights change every
// step). The engine, the stream, the plans and that buffer live in one function-local State,
// behind a mutex: a call runs whole under it (oneDNN's threads work inside). oneDNN runs on OpenMP
// (libgomp), the same pool as ember's kernels and OpenBLAS, so the thread counts agree
// (OMP_NUM_THREADS) and nothing is oversubscribed.
#include "kernels/cpu/conv_paths.h"

#ifdef EMBER_WITH_ONEDNN
#include "kernels/cpu/gemm_fallback.h"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace ember::cpu::conv_paths {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

enum class Dir { Forward, BackwardData, BackwardFilter };

// (direction, x [N, Ci, H, W], w [Co, Ci, KH, KW], y [N, Co, Ho, Wo] spatial, stride, pad)
using Key = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int, int>;

// One argument of a primitive: the plain (user) layout, and when the primitive wants another,
// that layout and the reorder between the two. The blocked copy itself lives in State::blocked.
struct Arg {
  memory::desc plain, wanted;
  bool reordered = false;
  dnnl::reorder reorder;  // plain -> wanted for inputs, wanted -> plain for the output

  Arg(const memory::desc& user, const memory::desc& want, const dnnl::engine& eng, bool is_input)
      : plain(user), wanted(want), reordered(want != user) {
    if (!reordered) return;
    reorder = dnnl::reorder(is_input ? dnnl::reorder::primitive_desc(eng, user, eng, want)
                                     : dnnl::reorder::primitive_desc(eng, want, eng, user));
  }
  // Bytes of its blocked copy in State::blocked (rounded up to whole cache lines).
  size_t blocked_bytes() const { return reordered ? (wanted.get_size() + 63) / 64 * 64 : 0; }
};

// A cached primitive with its three arguments: two inputs (DNNL_ARG_* a, b) and one output.
struct Plan {
  dnnl::primitive prim;
  int arg_a = 0, arg_b = 0, arg_out = 0;
  std::unique_ptr<Arg> a, b, out;
};

struct State {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
  std::mutex mutex;
  std::map<Key, Plan> plans;
  // The blocked copies of the running call's arguments: one buffer for all shapes, grown to the
  // largest call (caching a copy per plan doubled the SAGAN step's peak memory). Used under mutex.
  std::vector<char> blocked;
};

State& state() {
  static State s;
  return s;
}

// Plans kept at most; beyond it (many shapes, e.g. a test sweeping them) the cache starts again.
constexpr size_t kMaxPlans = 128;

struct Geom {
  memory::dims x, w, y, strides, pad_l, pad_r;
};

Geom geometry(const Tensor& in, const Tensor& w, const Tensor& out, int stride, int pad) {
  Geom g;
  g.x = {in.size(0), in.size(1), in.size(2), in.size(3)};
  g.w = {w.size(0), w.size(1), w.size(2), w.size(3)};
  g.y = {out.size(0), out.size(1), out.size(2), out.size(3)};
  g.strides = {stride, stride};
  g.pad_l = {pad, pad};
  // Symmetric, as in ember: oneDNN's Ho = (H + pad_l + pad_r - KH) / s + 1 rounds down the same way
  // (rows past the last window are not read, and get zero gradient).
  g.pad_r = g.pad_l;
  return g;
}

Plan make_plan(Dir dir, const Geom& g, const dnnl::engine& eng) {
  const auto f32 = memory::data_type::f32;
  const memory::desc x_any(g.x, f32, tag::any), w_any(g.w, f32, tag::any), y_any(g.y, f32, tag::any);
  const memory::desc x_plain(g.x, f32, tag::nchw), w_plain(g.w, f32, tag::oihw), y_plain(g.y, f32, tag::nchw);
  const auto algo = dnnl::algorithm::convolution_direct;
  // The backward primitives need the forward one as a hint (it fixes their layouts).
  const dnnl::convolution_forward::primitive_desc fwd(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, algo, x_any, w_any, y_any, g.strides,
                                      g.pad_l, g.pad_r),
      eng);
  Plan p;
  if (dir == Dir::Forward) {
    p.prim = dnnl::convolution_forward(fwd);
    p.arg_a = DNNL_ARG_SRC, p.arg_b = DNNL_ARG_WEIGHTS, p.arg_out = DNNL_ARG_DST;
    p.a = std::make_unique<Arg>(x_plain, fwd.src_desc(), eng, true);
    p.b = std::make_unique<Arg>(w_plain, fwd.weights_desc(), eng, true);
    p.out = std::make_unique<Arg>(y_plain, fwd.dst_desc(), eng, false);
  } else if (dir == Dir::BackwardData) {
    const dnnl::convolution_backward_data::primitive_desc pd(
        dnnl::convolution_backward_data::desc(algo, x_any, w_any, y_any, g.strides, g.pad_l, g.pad_r), eng, fwd);
    p.prim = dnnl::convolution_backward_data(pd);
    p.arg_a = DNNL_ARG_DIFF_DST, p.arg_b = DNNL_ARG_WEIGHTS, p.arg_out = DNNL_ARG_DIFF_SRC;
    p.a = std::make_unique<Arg>(y_plain, pd.diff_dst_desc(), eng, true);
    p.b = std::make_unique<Arg>(w_plain, pd.weights_desc(), eng, true);
    p.out = std::make_unique<Arg>(x_plain, pd.diff_src_desc(), eng, false);
  } else {
    const dnnl::convolution_backward_weights::primitive_desc pd(
        dnnl::convolution_backward_weights::desc(algo, x_any, w_any, y_any, g.strides, g.pad_l, g.pad_r), eng, fwd);
    p.prim = dnnl::convolution_backward_weights(pd);
    p.arg_a = DNNL_ARG_SRC, p.arg_b = DNNL_ARG_DIFF_DST, p.arg_out = DNNL_ARG_DIFF_WEIGHTS;
    p.a = std::make_unique<Arg>(x_plain, pd.src_desc(), eng, true);
    p.b = std::make_unique<Arg>(y_plain, pd.diff_dst_desc(), eng, true);
    p.out = std::make_unique<Arg>(w_plain, pd.diff_weights_desc(), eng, false);
  }
  return p;
}

// out = conv op (a, b); `in` and `out` are input- and output-shaped as in kernels/cpu/conv.cpp.
void run(Dir dir, const Tensor& in, const Tensor& w, const Tensor& out_shaped, int stride, int pad, const float* a,
         const float* b, float* out) {
  State& s = state();
  const Geom g = geometry(in, w, out_shaped, stride, pad);
  const Key key{static_cast<int>(dir), g.x[0], g.x[1], g.x[2], g.x[3], g.w[0], g.w[2], g.w[3],
                g.y[2],                g.y[3], stride, pad};
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.plans.find(key);
  if (it == s.plans.end()) {
    Plan plan;
    try {
      plan = make_plan(dir, g, s.eng);
    } catch (const dnnl::error& e) {
      std::ostringstream os;
      os << "oneDNN has no convolution for x [" << g.x[0] << ", " << g.x[1] << ", " << g.x[2] << ", " << g.x[3]
         << "], w [" << g.w[0] << ", " << g.w[1] << ", " << g.w[2] << ", " << g.w[3] << "], stride " << stride
         << ", pad " << pad << ": " << e.what();
      throw std::runtime_error(os.str());
    }
    if (s.plans.size() >= kMaxPlans) s.plans.clear();
    it = s.plans.emplace(key, std::move(plan)).first;
  }
  Plan& p = it->second;
  // Wraps a plain tensor's data (oneDNN never writes to an input).
  const auto plain = [&](const Arg& arg, const float* data) {
    return memory(arg.plain, s.eng, const_cast<float*>(data));
  };
  // The blocked copies, 64-byte aligned, one after the other in s.blocked.
  const size_t bytes = p.a->blocked_bytes() + p.b->blocked_bytes() + p.out->blocked_bytes();
  if (s.blocked.size() < bytes + 64) s.blocked.resize(bytes + 64);
  char* next = s.blocked.data() + (64 - reinterpret_cast<uintptr_t>(s.blocked.data()) % 64) % 64;
  const auto blocked = [&](const Arg& arg) {
    memory m(arg.wanted, s.eng, next);
    next += arg.blocked_bytes();
    return m;
  };
  std::unordered_map<int, memory> args;
  for (auto [arg, id, data] : {std::tuple{p.a.get(), p.arg_a, a}, std::tuple{p.b.get(), p.arg_b, b}}) {
    memory user = plain(*arg, data);
    if (arg->reordered) {
      memory copy = blocked(*arg);
      arg->reorder.execute(s.stream, user, copy);
      args.emplace(id, copy);
    } else {
      args.emplace(id, user);
    }
  }
  memory user_out = plain(*p.out, out);
  memory out_copy = p.out->reordered ? blocked(*p.out) : user_out;
  args.emplace(p.arg_out, out_copy);
  p.prim.execute(s.stream, args);
  if (p.out->reordered) p.out->reorder.execute(s.stream, out_copy, user_out);
  s.stream.wait();
  // 2 N*Ho*Wo*Co*Ci*KH*KW, as im2col's GEMMs count it.
  detail::add_gemm_flops(static_cast<uint64_t>(2 * g.y[0] * g.y[2] * g.y[3] * g.w[0] * g.w[1] * g.w[2] * g.w[3]));
}

}  // namespace

bool onednn_built() { return true; }

void onednn_forward(const Tensor& x, const Tensor& w, int stride, int pad, Tensor& y) {
  run(Dir::Forward, x, w, y, stride, pad, x.data(), w.data(), y.data());
}

void onednn_backward_data(const Tensor& dy, const Tensor& w, int stride, int pad, Tensor& dx) {
  run(Dir::BackwardData, dx, w, dy, stride, pad, dy.data(), w.data(), dx.data());
}

void onednn_backward_filter(const Tensor& x, const Tensor& dy, int stride, int pad, Tensor& dw) {
  run(Dir::BackwardFilter, x, dw, dy, stride, pad, x.data(), dy.data(), dw.data());
}

}  // namespace ember::cpu::conv_paths

#else  // built without oneDNN: the chooser never calls these (onednn_built() is false)

#include <stdexcept>

namespace ember::cpu::conv_paths {

namespace {
[[noreturn]] void unavailable() { throw std::runtime_error("ember was built without oneDNN (libdnnl-dev)"); }
}  // namespace

bool onednn_built() { return false; }
void onednn_forward(const Tensor&, const Tensor&, int, int, Tensor&) { unavailable(); }
void onednn_backward_data(const Tensor&, const Tensor&, int, int, Tensor&) { unavailable(); }
void onednn_backward_filter(const Tensor&, const Tensor&, int, int, Tensor&) { unavailable(); }

}  // namespace ember::cpu::conv_paths

#endif
