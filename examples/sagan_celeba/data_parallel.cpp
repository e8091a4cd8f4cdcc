// DataParallel (data_parallel.h): the data-parallel hooks of the training loop.
#include "examples/sagan_celeba/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "layers/batch_norm2d.h"

using namespace ember;

namespace sagan_example {

namespace {

void for_each_module(Module& m, const std::function<void(Module&)>& f) {
  f(m);
  for (auto& [name, child] : m.named_children()) for_each_module(*child, f);
}

std::vector<Tensor> values(const StateDict& sd) {
  std::vector<Tensor> out;
  for (auto& kv : sd) out.push_back(kv.second);
  return out;
}

// Every tensor that must be identical on all ranks, in a fixed order.
std::vector<Tensor> replicated_state(Run& run) {
  std::vector<Tensor> ts;
  for (Module* m : {run.gan.G.get(), run.gan.D.get(), run.G_ema.get()})
    if (m) for (Tensor& t : values(m->state_dict())) ts.push_back(t);
  for (Optimizer* o : {static_cast<Optimizer*>(run.opt_G.get()), static_cast<Optimizer*>(run.opt_D.get())})
    for (Tensor& t : values(o->state_dict())) ts.push_back(t);
  return ts;
}

}  // namespace

DataParallel::DataParallel() : pg_(dist::ProcessGroup::from_environment()) {}

void DataParallel::start(Run& run, bool sync_bn) {
  if (sync_bn)
    for (Module* m : {run.gan.G.get(), run.gan.D.get()})
      for_each_module(*m, [&](Module& sub) {
        if (auto* bn = dynamic_cast<BatchNorm2d*>(&sub)) bn->sync_group = pg_.get();
      });
  if (world() == 1) return;
  pg_->broadcast_tensors(replicated_state(run), 0);
  // The integers: step, optimiser step counts, the noise generator's state.
  std::vector<uint64_t> ints{static_cast<uint64_t>(run.step), static_cast<uint64_t>(run.opt_G->steps()),
                             static_cast<uint64_t>(run.opt_D->steps()), run.rng.seed(), run.rng.offset()};
  pg_->broadcast_bytes(ints.data(), static_cast<int64_t>(ints.size() * sizeof(uint64_t)), 0);
  run.step = static_cast<int64_t>(ints[0]);
  run.opt_G->set_steps(static_cast<int64_t>(ints[1]));
  run.opt_D->set_steps(static_cast<int64_t>(ints[2]));
  run.rng.set_state(ints[3], ints[4]);
}

void DataParallel::shard(data::LoaderOptions& lo, int64_t saved_global_batch) const {
  const int64_t global = int64_t(lo.batch_size) * world();
  if (saved_global_batch != global && (lo.start_epoch > 0 || lo.start_batch > 0)) {
    // Same place in the epoch's order, in this world's batches (rounded down: a few samples of
    // the interrupted batch are seen again rather than skipped).
    const int64_t position = lo.start_batch * saved_global_batch;
    lo.start_batch = position / global;
    if (writer() && position % global != 0)
      std::printf("note: the checkpoint was written with a global batch of %lld; this run's is %lld, so it resumes "
                  "%lld sample(s) earlier in the epoch\n",
                  static_cast<long long>(saved_global_batch), static_cast<long long>(global),
                  static_cast<long long>(position % global));
  }
  lo.shard_rank = rank();
  lo.shard_count = world();
}

Tensor DataParallel::noise(Generator& gen, int64_t B, int64_t z_dim, Device d) const {
  if (world() == 1) return randn(Shape{B, z_dim}, gen, d);
  const int64_t n = B * z_dim;
  if (n % 4 == 0) {  // element i of a draw comes from Philox block offset + i/4: slice the counters
    Generator own(gen.seed());
    own.set_state(gen.seed(), gen.offset() + static_cast<uint64_t>(rank() * n / 4));
    gen.advance(n * world());
    return randn(Shape{B, z_dim}, own, d);
  }
  return ops::narrow(randn(Shape{B * world(), z_dim}, gen, d), rank() * B, B);
}

void DataParallel::set_gradient_options(bool overlap, double bucket_mb) {
  EMBER_CHECK(reducers_.empty(), "DataParallel: gradient options set after the first backward");
  EMBER_CHECK(bucket_mb > 0, "DataParallel: bucket size " << bucket_mb << " MB");
  reducer_options_.overlap = overlap;
  reducer_options_.bucket_bytes = std::max<int64_t>(sizeof(float), static_cast<int64_t>(bucket_mb * (1 << 20)));
  // DDP's first bucket (1 MB) starts communication early; never larger than the others.
  reducer_options_.first_bucket_bytes = std::min<int64_t>(int64_t(1) << 20, reducer_options_.bucket_bytes);
  // EMBER_DIST_POLL=0: the hooks do not test the started buckets (the benchmark's question: does
  // MPI progress them on its own while backward runs?).
  const char* poll = std::getenv("EMBER_DIST_POLL");
  EMBER_INPUT_CHECK(!poll || std::string(poll) == "0" || std::string(poll) == "1",
                    "EMBER_DIST_POLL='" << poll << "': expected 0 or 1");
  reducer_options_.poll = !poll || std::string(poll) != "0";
}

dist::GradientReducer& DataParallel::reducer(Module& m) {
  auto& r = reducers_[&m];
  if (!r) r = std::make_unique<dist::GradientReducer>(*pg_, m.parameters(), reducer_options_);
  return *r;
}

void DataParallel::backward_starts(Module& m) {
  if (world() == 1) return;
  reducer(m).prepare();
}

void DataParallel::average_gradients(Module& m) {
  if (world() == 1) return;
  const auto t0 = std::chrono::steady_clock::now();
  reducer(m).finish();
  grad_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string DataParallel::gradient_summary() const {
  int64_t buckets = 0, in_backward = 0, done = 0;
  double wait = 0;
  int per_round = 0;
  for (const auto& [m, r] : reducers_) {
    const dist::ReducerStats& st = r->stats();
    buckets += st.buckets_started, in_backward += st.started_in_backward, done += st.done_before_finish;
    wait += st.wait_seconds, per_round += r->bucket_count();
  }
  char line[320];
  std::snprintf(line, sizeof line,
                "%s%s; %d bucket(s) for G and D; %lld of %lld all-reduces started during backward, %lld finished "
                "before it ended; %.2f s waiting for them after backward",
                reducer_options_.overlap ? "overlapped with backward" : "after backward (--no-overlap)",
                reducer_options_.overlap && !reducer_options_.poll ? " (EMBER_DIST_POLL=0)" : "", per_round,
                static_cast<long long>(in_backward), static_cast<long long>(buckets), static_cast<long long>(done),
                wait);
  return line;
}

void DataParallel::sync_buffers(Run& run) {
  if (world() == 1) return;
  std::vector<Tensor> bufs;
  for (Module* m : {run.gan.G.get(), run.gan.D.get()})
    for (Tensor& t : values(m->named_buffers())) bufs.push_back(t);
  pg_->broadcast_tensors(bufs, 0);
}

void DataParallel::mean(double* v, int n) { pg_->all_reduce(v, n, dist::ReduceOp::Average); }

bool DataParallel::any(bool flag) {
  double f = flag ? 1.0 : 0.0;
  pg_->all_reduce(&f, 1);
  return f > 0;
}

uint64_t DataParallel::check_in_sync(Run& run) {
  const uint64_t h = dist::state_hash(replicated_state(run));
  if (world() == 1) return h;
  uint64_t root = h;
  pg_->broadcast_bytes(&root, sizeof root, 0);
  const bool differs = any(root != h);
  EMBER_CHECK(!differs, "data-parallel ranks diverged at step "
                            << run.step << " (weights, buffers or optimiser state): "
                            << (root != h ? "rank " + std::to_string(rank()) + "'s state differs from rank 0's"
                                          : std::string("another rank's state differs from rank 0's")));
  return h;
}

void debug_rank_fault(const DataParallel& dp, Run& run) {
  const char* v = std::getenv("SAGAN_CELEBA_DEBUG_RANK_FAULT");
  if (!v) return;
  int rank = -1;
  long long step = -1;
  char what[16] = {0};
  if (std::sscanf(v, "%d:%lld:%15s", &rank, &step, what) != 3 || rank != dp.rank() || step != run.step) return;
  const std::string w = what;
  std::fprintf(stderr, "debug: rank %d: %s after step %lld\n", rank, w.c_str(), step);
  std::fflush(stderr);
  if (w == "kill") std::raise(SIGKILL);
  if (w == "hang") std::this_thread::sleep_for(std::chrono::hours(1));  // the others' watchdog must end the job
  EMBER_CHECK(w != "throw", "debug: rank " << rank << " fails on purpose after step " << step);
  if (w == "perturb") {
    NoGradGuard ng;
    Tensor p = run.gan.G->parameters().front();
    p.copy_(ops::add_scalar(p, 1e-3f));
  }
}

}  // namespace sagan_example
