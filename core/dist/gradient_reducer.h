// Gradient averaging overlapped with backward, as PyTorch's DistributedDataParallel does it.
//
// The parameters are packed into buckets in REVERSE registration order (the last layers'
// gradients complete first in backward): the first bucket holds at most first_bucket_bytes (so
// communication starts early), the others at most bucket_bytes (a larger parameter alone). Each
// parameter has a gradient-ready hook (core/autograd.h): when it fires, the gradient is copied
// into its bucket's slot, and when a bucket's last gradient is in, its sum all-reduce is started
// without waiting (ProcessGroup::start_all_reduce_sum: MPI_Iallreduce on the CPU, NCCL on its
// communication stream for CUDA). Buckets are started strictly in order, so every rank issues
// the same collectives in the same sequence even if its hooks fire in another order. finish()
// starts what backward did not (parameters that got no gradient count as zeros), waits for all,
// multiplies by 1/world and writes the means into .grad.
//
// The result is the one ProcessGroup::average_gradients computes, bitwise: each element is the
// same MPI/NCCL sum of the same per-rank values times the same float 1/world (bucket boundaries
// change which elements travel together, never what is added). A trailing flag per parameter in
// each bucket (1 = this rank had a gradient) keeps its rule: a parameter without a gradient on
// any rank stays without one.
//
// Open MPI progresses a non-blocking collective only inside MPI calls: with `poll`, every hook
// also tests the started buckets (MPI_Testall, cheap) so their rounds advance during backward.
//
// Use: prepare() before each backward, finish() after it and before the optimiser step; one
// backward in between (a gradient completed twice is an error: accumulate with the hooks off).
// Outside prepare()/finish() the hooks do nothing (another module's backward may reach these
// parameters, e.g. D's during G's step). With overlap off nothing happens during backward and
// finish() packs, starts and waits for the same buckets: the comparison point of the benchmark.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/autograd.h"
#include "core/dist/process_group.h"
#include "core/tensor.h"

namespace ember::dist {

struct ReducerOptions {
  int64_t bucket_bytes = ProcessGroup::kDefaultBucketBytes;
  int64_t first_bucket_bytes = 1 << 20;  // DDP's _DEFAULT_FIRST_BUCKET_BYTES
  bool overlap = true;                   // start buckets from the hooks (false: all in finish())
  bool poll = true;                      // MPI_Test the started buckets from every hook
};

// Totals over all finish() calls so far.
struct ReducerStats {
  int64_t rounds = 0;                 // finish() calls
  int64_t buckets_started = 0;        // all buckets started
  int64_t started_in_backward = 0;    // of which by a hook, while backward ran
  int64_t done_before_finish = 0;     // of which a poll found finished before finish() began
  double finish_seconds = 0;          // time in finish(): the communication not hidden by backward
  double wait_seconds = 0;            // of which waiting for collectives to finish
};

class GradientReducer {
 public:
  // `params` in registration order (Module::parameters()), all on one device.
  GradientReducer(ProcessGroup& group, std::vector<Tensor> params, ReducerOptions options = {});
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  void prepare();
  void finish();

  int bucket_count() const { return static_cast<int>(buckets_.size()); }
  // The parameter indices (into `params`) of bucket b, in slot order.
  const std::vector<size_t>& bucket_params(int b) const { return buckets_[static_cast<size_t>(b)].params; }
  const ReducerStats& stats() const { return stats_; }
  const ReducerOptions& options() const { return options_; }

 private:
  struct Bucket {
    std::vector<size_t> params;     // indices into params_, in slot order
    std::vector<int64_t> offsets;   // of each slot in `flat`
    int64_t numel = 0;              // gradient elements; the flags follow
    Tensor flat;                    // [numel + params.size()]: the slots, then the flags
    size_t ready = 0;               // parameters packed this round
    std::unique_ptr<PendingCollective> pending;
    bool done = false;              // a poll saw it finished
  };
  void on_grad_ready(size_t param);
  void pack(size_t param);          // the parameter's gradient (or zeros) and flag into its slot
  void start_ready_buckets();       // in order, while the next one is complete
  void start(Bucket& b, bool in_backward);
  void poll();

  ProcessGroup& group_;
  std::vector<Tensor> params_;
  ReducerOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;   // parameter -> bucket
  std::vector<size_t> slot_of_;     // parameter -> its index within the bucket
  std::vector<char> packed_;        // parameter -> packed this round
  std::vector<GradReadyHookHandle> hooks_;
  size_t next_start_ = 0;           // the next bucket to start
  bool armed_ = false;
  ReducerStats stats_;
};

}  // namespace ember::dist
