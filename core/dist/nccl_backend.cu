// The NCCL backend (backend.h): all-reduce and broadcast of device buffers on ember's one CUDA
// stream. The communicator is bootstrapped over MPI: rank 0 makes the unique id, the MPI backend
// broadcasts its bytes, every rank joins with ncclCommInitRank. Compiled with EMBER_WITH_NCCL.
//
// Each collective is followed by a stream synchronisation: the host then knows it finished (the
// watchdog in process_group.cpp times the host's wait, so a dead peer surfaces as a timeout
// instead of a kernel that never ends) and its errors are reported where they happened.
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
  }
  ~NcclBackend() override {
    // Statuses ignored: a destructor cannot report them.
    if (one_) cudaFree(one_);
    if (comm_) ncclCommDestroy(comm_);
  }
  std::string name() const override { return "nccl"; }
  void all_reduce_sum(float* data, int64_t n) override {
    EMBER_NCCL_CHECK(ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat32, ncclSum, comm_, cuda_rt::stream()),
                     comm_);
    EMBER_CUDA_CHECK(cudaStreamSynchronize(cuda_rt::stream()));
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
};

}  // namespace

std::unique_ptr<Backend> make_nccl_backend(Backend* bootstrap, const WorldInfo& info) {
  return std::make_unique<NcclBackend>(bootstrap, info);
}

}  // namespace ember::dist
#endif  // EMBER_WITH_NCCL
