// GradientReducer (gradient_reducer.h): buckets started from gradient-ready hooks.
#include "core/dist/gradient_reducer.h"

#include <algorithm>
#include <chrono>

#include "core/dist/backend.h"
#include "core/error.h"

namespace ember::dist {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

GradientReducer::GradientReducer(ProcessGroup& group, std::vector<Tensor> params, ReducerOptions options)
    : group_(group), params_(std::move(params)), options_(options) {
  EMBER_CHECK(options_.bucket_bytes >= static_cast<int64_t>(sizeof(float)) &&
                  options_.first_bucket_bytes >= static_cast<int64_t>(sizeof(float)),
              "GradientReducer: bucket sizes " << options_.first_bucket_bytes << " / " << options_.bucket_bytes
                                               << " bytes (at least one float)");
  const size_t n = params_.size();
  bucket_of_.assign(n, 0);
  slot_of_.assign(n, 0);
  packed_.assign(n, 0);
  if (n == 0) return;
  const Device d = params_.front().device();
  // Reverse registration order; consecutive parameters up to the cap (a larger one alone).
  for (size_t r = 0; r < n; ++r) {
    const size_t i = n - 1 - r;
    const Tensor& p = params_[i];
    EMBER_CHECK(p.defined() && p.device() == d, "GradientReducer: parameters undefined or on different devices");
    if (buckets_.empty()) {
      buckets_.emplace_back();
    } else {  // the bucket being filled is the first one while size() == 1
      const int64_t cap = (buckets_.size() == 1 ? options_.first_bucket_bytes : options_.bucket_bytes) /
                          static_cast<int64_t>(sizeof(float));
      if (buckets_.back().numel + p.numel() > cap) buckets_.emplace_back();
    }
    Bucket& b = buckets_.back();
    bucket_of_[i] = buckets_.size() - 1;
    slot_of_[i] = b.params.size();
    b.params.push_back(i);
    b.offsets.push_back(b.numel);
    b.numel += p.numel();
  }
  if (group_.size() == 1) return;  // nothing to communicate: no buffers, no hooks
  for (Bucket& b : buckets_) b.flat = Tensor::empty(Shape{b.numel + static_cast<int64_t>(b.params.size())}, d);
  if (!options_.overlap) return;
  for (size_t i = 0; i < n; ++i)
    if (params_[i].requires_grad() && !params_[i].grad_fn())
      hooks_.push_back(add_grad_ready_hook(params_[i], [this, i](const Tensor&) { on_grad_ready(i); }));
}

void GradientReducer::prepare() {
  EMBER_CHECK(!armed_, "GradientReducer: prepare() twice without finish()");
  if (group_.size() == 1) return;
  for (Bucket& b : buckets_) {
    b.ready = 0;
    b.pending.reset();
    b.done = false;
  }
  std::fill(packed_.begin(), packed_.end(), 0);
  next_start_ = 0;
  armed_ = true;
}

void GradientReducer::pack(size_t i) {
  Bucket& b = buckets_[bucket_of_[i]];
  const size_t k = slot_of_[i];
  Tensor s = slot(b.flat, b.offsets[k], params_[i].shape());
  const Tensor g = params_[i].grad();
  if (g.defined()) s.copy_(g);
  else s.zero_();
  slot(b.flat, b.numel + static_cast<int64_t>(k), Shape{1}).fill_(g.defined() ? 1.0f : 0.0f);
  packed_[i] = 1;
  ++b.ready;
}

void GradientReducer::on_grad_ready(size_t i) {
  if (!armed_) return;  // another module's backward reached this parameter
  EMBER_CHECK(!packed_[i], "GradientReducer: the gradient of parameter " << i << " completed twice before finish(): "
                                                                        << "one backward per prepare()/finish()");
  pack(i);
  start_ready_buckets();
  if (options_.poll) poll();
}

void GradientReducer::start_ready_buckets() {
  while (next_start_ < buckets_.size() && buckets_[next_start_].ready == buckets_[next_start_].params.size())
    start(buckets_[next_start_++], /*in_backward=*/true);
}

void GradientReducer::start(Bucket& b, bool in_backward) {
  b.pending = group_.start_all_reduce_sum(b.flat);
  ++stats_.buckets_started;
  if (in_backward) ++stats_.started_in_backward;
}

void GradientReducer::poll() {
  for (size_t k = 0; k < next_start_; ++k) {
    Bucket& b = buckets_[k];
    if (!b.done) b.done = b.pending->test();
  }
}

void GradientReducer::finish() {
  if (group_.size() == 1 || params_.empty()) return;
  EMBER_CHECK(armed_, "GradientReducer: finish() without prepare()");
  const auto t0 = std::chrono::steady_clock::now();
  armed_ = false;
  for (size_t k = 0; k < next_start_; ++k) stats_.done_before_finish += buckets_[k].done;
  // What backward did not complete (no overlap, parameters without a gradient this time), in
  // bucket order after the ones already started.
  for (size_t k = next_start_; k < buckets_.size(); ++k) {
    Bucket& b = buckets_[k];
    for (size_t i : b.params)
      if (!packed_[i]) pack(i);
    start(b, /*in_backward=*/false);
  }
  next_start_ = buckets_.size();
  const float inv_world = 1.0f / static_cast<float>(group_.size());
  for (Bucket& b : buckets_) {
    const auto w0 = std::chrono::steady_clock::now();
    group_.wait(*b.pending);
    stats_.wait_seconds += seconds_since(w0);
    b.pending.reset();
    scale_in_place(b.flat, inv_world);  // as ProcessGroup::all_reduce(Average): the sum, then * 1/world
    const std::vector<float> flags = slot(b.flat, b.numel, Shape{static_cast<int64_t>(b.params.size())}).to_vector();
    for (size_t k = 0; k < b.params.size(); ++k) {
      if (flags[k] == 0.0f) continue;  // no rank had a gradient: stays without one
      Tensor p = params_[b.params[k]];
      const Tensor s = slot(b.flat, b.offsets[k], p.shape());
      Tensor g = p.grad();
      if (g.defined()) g.copy_(s);
      else p.set_grad(s.clone());
    }
  }
  ++stats_.rounds;
  stats_.finish_seconds += seconds_since(t0);
}

}  // namespace ember::dist
