// The transports behind ProcessGroup (process_group.h). A backend works on raw buffers of one
// device kind; ProcessGroup chooses the backend per tensor device, stages and packs.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/dist/process_group.h"
#include "core/tensor.h"

namespace ember::dist {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // Sums n floats in place over all ranks (host pointers for MPI, device pointers for NCCL).
  virtual void all_reduce_sum(float* data, int64_t n) = 0;
  // all_reduce_sum started without waiting: MPI_Iallreduce; NCCL on its communication stream.
  // The default runs the blocking one and returns it finished.
  virtual std::unique_ptr<PendingCollective> all_reduce_sum_async(float* data, int64_t n);
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  virtual void barrier() = 0;
};

struct WorldInfo {
  int rank = 0, size = 1, local_rank = 0;
};

// Helpers of the group and the gradient reducer (process_group.cpp).
// A view of `shape` of `flat`'s data from element `offset`: the slots of a bucket.
Tensor slot(const Tensor& flat, int64_t offset, const Shape& shape);
// t *= alpha elementwise, in place, outside autograd (the averaging step after a sum).
void scale_in_place(Tensor& t, float alpha);

// Did a launcher (mpirun, srun with PMI/PMIx) start this process as part of a job of several?
bool launched_by_mpi();

// The MPI backend (mpi_backend.cpp): initialises MPI (thread level FUNNELED: only the thread
// that made the group calls MPI), sets MPI_ERRORS_RETURN so failures throw ember::Error, and
// fills `info`. Only in builds with MPI (EMBER_WITH_MPI).
std::unique_ptr<Backend> make_mpi_backend(WorldInfo& info);
// Host doubles, summed in place (statistics of SyncBN, flags): MPI only.
void mpi_all_reduce_sum(double* data, int64_t n);
// Ends the whole job now: every rank of it exits with `code` (MPI_Abort). For the watchdog.
[[noreturn]] void mpi_abort(int code);
// MPI_Finalize, when MPI was initialised; skipped while an exception unwinds (see process_group.h).
void mpi_finalize();

// The NCCL backend (nccl_backend.cu): one communicator over the MPI world (unique id from rank 0
// broadcast by `bootstrap`, which may be null for a group of one), collectives on ember's CUDA stream. Only with EMBER_WITH_NCCL.
std::unique_ptr<Backend> make_nccl_backend(Backend* bootstrap, const WorldInfo& info);
// CUDA builds: makes device local_rank % count current, before ember's CUDA context exists.
// Returns the device chosen, or -1 without a usable GPU (the run may still be on the CPU).
int select_local_device(int local_rank);

}  // namespace ember::dist
