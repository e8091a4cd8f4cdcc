// The NCCL backend (backend.h): all-reduce and broadcast of device buffers on ember's one CUDA
// stream. The communicator is bootstrapped over MPI: rank 0 makes the unique id, the MPI backend
// broadcasts its bytes, every rank joins with ncclCommInitRank. Compiled with EMBER_WITH_NCCL.
//
// Each collective is followed by a stream synchronisation: the host then knows it finished (the
// watchdog in process_group.cpp times the host's wait, so a dead peer surfaces as a timeout
// instead of a kernel that never ends) and its errors are reported where they happened.
//
// The started all-reduce (all_reduce_sum_async, the gradient buckets overlapped with backward)
// runs on a communication stream of its own, so that it overlaps with the backward kernels that
// follow on ember's stream: an event recorded on ember's stream (the bucket's packing copies are
// queued there) gates it, and wait() syncs the host on its completion event (watchdog) and makes
// ember's stream wait for that event. The one-stream invariant (cuda_context.cuh) still holds
// for memory: the bucket buffer belongs to the caller and is not freed or reused before wait()
// has queued ember's stream behind the collective.
#ifdef EMBER_WITH_NCCL
#include <nccl.h>

#include "core/cuda/check.cuh"
#include "core/cuda/cuda_context.cuh"
#include "core/dist/backend.h"

namespace ember::dist {

namespace {

void check_nccl(ncclResult_t r, const char* call, ncclComm_t comm) {
  if (r == ncclSuccess) return;
  const char* last = comm ? ncclGetLastError(comm) : "";
  EMBER_FAIL("NCCL: " << call << " failed: " << ncclGetErrorString(r) << " (" << static_cast<int>(r) << ")"
                      << (last && *last ? std::string(": ") + last : std::string()));
}
#define EMBER_NCCL_CHECK(call, comm) check_nccl((call), #call, comm)

// A started all-reduce: its completion event on the communication stream.
class NcclPending : public PendingCollective {
 public:
  explicit NcclPending(cudaEvent_t done) : done_(done) {}
  ~NcclPending() override { cudaEventDestroy(done_); }  // status ignored: a destructor cannot report it
  NcclPending(const NcclPending&) = delete;
  NcclPending& operator=(const NcclPending&) = delete;
  bool test() override {
    const cudaError_t e = cudaEventQuery(done_);
    if (e == cudaErrorNotReady) {
      (void)cudaGetLastError();  // not an error: clear it
      return false;
    }
    EMBER_CUDA_CHECK(e);
    return true;
  }
  void wait() override {
    EMBER_CUDA_CHECK(cudaEventSynchronize(done_));
    EMBER_CUDA_CHECK(cudaStreamWaitEvent(cuda_rt::stream(), done_, 0));
  }

 private:
  cudaEvent_t done_;
};

class NcclBackend : public Backend {
 public:
  NcclBackend(Backend* bootstrap, const WorldInfo& info) {
    EMBER_CHECK(bootstrap || info.size == 1, "NCCL: a communicator of " << info.size << " ranks needs a bootstrap backend");
    ncclUniqueId id;
    if (info.rank == 0) EMBER_NCCL_CHECK(ncclGetUniqueId(&id), nullptr);
    if (bootstrap) bootstrap->broadcast(&id, sizeof id, 0);
    cuda_rt::state();  // ember's stream and device exist before the communicator binds to the device
    EMBER_NCCL_CHECK(ncclCommInitRank(&comm_, info.size, id, info.rank), nullptr);
    EMBER_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&one_), sizeof(float)));
    EMBER_CUDA_CHECK(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));
  }
  ~NcclBackend() override {
    // Statuses ignored: a destructor cannot report them.
    if (comm_stream_) cudaStreamDestroy(comm_stream_);
    if (one_) cudaFree(one_);
    if (comm_) ncclCommDestroy(comm_);
  }
  std::string name() const override { return "nccl"; }
  void all_reduce_sum(float* data, int64_t n) override {
    EMBER_NCCL_CHECK(ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat32, ncclSum, comm_, cuda_rt::stream()),
                     comm_);
    EMBER_CUDA_CHECK(cudaStreamSynchronize(cuda_rt::stream()));
  }
  std::unique_ptr<PendingCollective> all_reduce_sum_async(float* data, int64_t n) override {
    cudaEvent_t ready = nullptr, done = nullptr;
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    auto pending = std::make_unique<NcclPending>(done);  // owns `done` from here
    EMBER_CUDA_CHECK(cudaEventRecord(ready, cuda_rt::stream()));
    EMBER_CUDA_CHECK(cudaStreamWaitEvent(comm_stream_, ready, 0));
    EMBER_CUDA_CHECK(cudaEventDestroy(ready));  // released once the wait above has been satisfied
    EMBER_NCCL_CHECK(ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat32, ncclSum, comm_, comm_stream_),
                     comm_);
    EMBER_CUDA_CHECK(cudaEventRecord(done, comm_stream_));
    return pending;
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    EMBER_NCCL_CHECK(ncclBroadcast(data, data, static_cast<size_t>(bytes), ncclUint8, root, comm_, cuda_rt::stream()),
                     comm_);
    EMBER_CUDA_CHECK(cudaStreamSynchronize(cuda_rt::stream()));
  }
  // A one-element all-reduce is NCCL's barrier (the group itself uses MPI's).
  void barrier() override { all_reduce_sum(one_, 1); }

 private:
  ncclComm_t comm_ = nullptr;
  float* one_ = nullptr;  // the barrier's element
  cudaStream_t comm_stream_ = nullptr;  // the started all-reduces (all_reduce_sum_async)
};

}  // namespace

std::unique_ptr<Backend> make_nccl_backend(Backend* bootstrap, const WorldInfo& info) {
  return std::make_unique<NcclBackend>(bootstrap, info);
}

}  // namespace ember::dist
#endif  // EMBER_WITH_NCCL
