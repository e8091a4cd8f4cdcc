// Data-parallel training of sagan_celeba (README "Training on several GPUs / machines"): the
// hooks the training loop calls, with the logic here so that trainer.cpp stays a loop.
// Launched as `mpirun -np N sagan_celeba train ...`; without mpirun a group of one, where every
// hook is a no-op and the run is exactly the one-process run.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/dist/gradient_reducer.h"
#include "core/dist/process_group.h"
#include "core/rng.h"
#include "examples/common/loader.h"
#include "examples/sagan_celeba/run.h"

namespace sagan_example {

class DataParallel {
 public:
  // Joins mpirun's job; call before any CUDA work (each rank picks GPU local_rank % count).
  DataParallel();
  int rank() const { return pg_->rank(); }
  int world() const { return pg_->size(); }
  bool writer() const { return pg_->is_root(); }  // rank 0 alone writes files and prints progress
  ember::dist::ProcessGroup& group() { return *pg_; }

  // After the models are built (and a checkpoint loaded): --sync-bn wires every BatchNorm2d of G
  // and D to the group; rank 0's weights, buffers, optimiser state, EMA copy and noise stream go
  // to every rank, so all start identical whatever each loaded.
  void start(Run& run, bool sync_bn);
  // The loader's shard; the checkpoint's position (counted in global batches of
  // `saved_global_batch`) converted to this world's global batch.
  void shard(ember::data::LoaderOptions& lo, int64_t saved_global_batch) const;
  // This rank's noise [B, z_dim]: rows [rank*B, (rank+1)*B) of the global batch's draw, i.e. its
  // own Philox counters (offset rank*B*z_dim/4 blocks); every rank advances `gen` identically.
  ember::Tensor noise(ember::Generator& gen, int64_t B, int64_t z_dim, ember::Device d) const;
  // How gradients are averaged (--no-overlap, --bucket-mb): before the first backward_starts().
  void set_gradient_options(bool overlap, double bucket_mb);
  // Before m's backward: arms the gradient-ready hooks of m's parameters, so that each bucket's
  // all-reduce starts during backward once its last gradient is complete (gradient_reducer.h).
  void backward_starts(ember::Module& m);
  // Between backward and the optimiser step: starts the buckets backward did not, waits for all,
  // and every parameter's gradient becomes the mean over ranks (bitwise the after-backward path).
  void average_gradients(ember::Module& m);
  // Seconds spent in average_gradients so far: the communication backward did not hide.
  double gradient_seconds() const { return grad_seconds_; }
  // The closing line's account: buckets, how many started during backward, time waited.
  std::string gradient_summary() const;
  // After each step without --sync-bn: rank 0's buffers (BatchNorm running statistics) replace
  // the others', as DDP's broadcast_buffers does, so checkpoints and eval use one set.
  void sync_buffers(Run& run);
  // The mean over ranks of each value (losses and D outputs for the log).
  void mean(double* values, int n);
  // True on every rank when it is true on any (a stop signal reached some of them).
  bool any(bool flag);
  // Throws unless weights, buffers and optimiser state of every rank are bitwise identical.
  // Returns the state's hash (printed by rank 0).
  uint64_t check_in_sync(Run& run);

 private:
  ember::dist::GradientReducer& reducer(ember::Module& m);
  std::unique_ptr<ember::dist::ProcessGroup> pg_;
  ember::dist::ReducerOptions reducer_options_;
  std::map<ember::Module*, std::unique_ptr<ember::dist::GradientReducer>> reducers_;  // G's and D's
  double grad_seconds_ = 0;
};

// Test hook: SAGAN_CELEBA_DEBUG_RANK_FAULT="RANK:STEP:kill|throw|hang|perturb" makes rank RANK,
// after step STEP, SIGKILL itself, throw an error, sleep for an hour (the others' watchdog must
// end the job), or change one weight (which check_in_sync must catch).
void debug_rank_fault(const DataParallel& dp, Run& run);

}  // namespace sagan_example
