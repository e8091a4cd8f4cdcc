// Data-parallel communication: a process group with rank, world size, all-reduce (sum or
// average), broadcast and barrier over tensors, as torch.distributed offers them.
//
// Backends (core/dist/backend.h): MPI for CPU tensors (Open MPI; also CUDA tensors staged
// through host memory when NCCL is absent) and NCCL for CUDA tensors (bootstrapped over MPI:
// rank 0 makes the unique id, MPI broadcasts it; collectives run on ember's one CUDA stream).
// A build without MPI, or a process not started by mpirun, is a group of one: every collective
// is then a no-op (average of one = itself) and nothing is initialised.
//
// Failure: every collective runs under a watchdog. One that has not finished after
// EMBER_DIST_TIMEOUT seconds (default 300) aborts the whole job (MPI_Abort) with a message naming
// the collective, so a rank that died or hangs never leaves the others waiting forever. A group
// destroyed while an exception is in flight does not finalise MPI (that would wait for the
// others): the process exits non-zero and mpirun tears the job down.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ember::dist {

enum class ReduceOp { Sum, Average };

class Backend;

// A collective started without waiting for it (ProcessGroup::start_all_reduce_sum,
// Backend::all_reduce_sum_async): the buffer must stay untouched until wait() returns.
// Destroying one that was not waited for leaves the transport's request behind (only on error
// paths, where the process is about to exit).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Has it finished? Cheap, never blocks; for MPI it also lets the library progress it (Open
  // MPI moves a non-blocking collective forward only inside MPI calls).
  virtual bool test() = 0;
  // Blocks until it has finished (the caller times this wait with the watchdog).
  virtual void wait() = 0;
};

class ProcessGroup {
 public:
  // Joins the job mpirun started (Open MPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_RANK for
  // other launchers); otherwise a group of one. In a CUDA build the process also selects
  // device local_rank % device_count before any CUDA work, so start it before using CUDA.
  // Throws when launched by mpirun but built without MPI (the ranks would silently train alone).
  static std::unique_ptr<ProcessGroup> from_environment();
  // A group of one (tests, single-process tools).
  static std::unique_ptr<ProcessGroup> single();
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  bool is_root() const { return rank_ == 0; }
  // "mpi", "mpi+nccl" or "single".
  std::string backend_name() const;

  // In place on every rank; tensors of one call must share a device. CPU tensors go through MPI,
  // CUDA tensors through NCCL (or MPI via host memory without NCCL). No autograd.
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::Sum);
  void broadcast(Tensor& t, int root = 0);
  void barrier();
  // A sum all-reduce of `t` started without waiting (MPI_Iallreduce; NCCL on its communication
  // stream); `t` must stay untouched until wait(). Every rank must start the same collectives in
  // the same order. CUDA tensors without NCCL go through host memory and finish at once.
  std::unique_ptr<PendingCollective> start_all_reduce_sum(Tensor& t);
  // Waits for a started collective, under the watchdog.
  void wait(PendingCollective& p);
  // Host buffers (statistics, hashes, flags). Double sums keep small per-channel sums exact.
  void all_reduce(double* data, int64_t n, ReduceOp op = ReduceOp::Sum);
  void broadcast_bytes(void* data, int64_t bytes, int root = 0);

  // Averages the gradients of `params` across ranks (DDP's rule: each rank's gradient becomes the
  // mean over ranks). Gradients are packed into buckets of at most bucket_bytes, each bucket one
  // collective; parameters without a gradient on this rank count as zeros, so every rank calls
  // the same collectives. Returns the number of buckets. Call between backward and the step.
  int average_gradients(const std::vector<Tensor>& params, int64_t bucket_bytes = kDefaultBucketBytes);
  // Rank `root`'s values of every tensor in `ts` (weights, optimiser state, buffers), packed.
  void broadcast_tensors(const std::vector<Tensor>& ts, int root = 0);

  static constexpr int64_t kDefaultBucketBytes = 25 << 20;  // DDP's default bucket_cap_mb = 25

 private:
  ProcessGroup() = default;
  Backend& backend_for(Device d);
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::unique_ptr<Backend> mpi_, nccl_;
};

// A 64-bit FNV-1a hash of the bytes of every tensor (host copies of CUDA tensors): ranks compare
// it to prove that their weights are bitwise identical.
uint64_t state_hash(const std::vector<Tensor>& ts);

}  // namespace ember::dist
