// The MPI backend (backend.h): Open MPI's collectives on host buffers. Compiled only when CMake
// finds MPI (EMBER_WITH_MPI); process_group.cpp calls it only when a launcher started the job.
#ifdef EMBER_WITH_MPI
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <vector>

#include "core/dist/backend.h"
#include "core/error.h"

namespace ember::dist {

namespace {

// Checks an MPI call's status (the communicator returns errors instead of aborting).
void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  EMBER_FAIL("MPI: " << call << " failed: " << std::string(text, static_cast<size_t>(len)));
}
#define EMBER_MPI_CHECK(call) check_mpi((call), #call)

// MPI counts are int: long buffers go in pieces of at most this many elements.
constexpr int64_t kMaxCount = INT_MAX / 2;

// MPI_Iallreduce requests (one per piece of at most kMaxCount elements).
class MpiPending : public PendingCollective {
 public:
  explicit MpiPending(std::vector<MPI_Request> requests) : requests_(std::move(requests)) {}
  bool test() override {
    int done = 0;
    EMBER_MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE));
    return done != 0;
  }
  void wait() override {
    EMBER_MPI_CHECK(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
  }

 private:
  std::vector<MPI_Request> requests_;  // MPI_REQUEST_NULL once complete
};

class MpiBackend : public Backend {
 public:
  std::string name() const override { return "mpi"; }
  std::unique_ptr<PendingCollective> all_reduce_sum_async(float* data, int64_t n) override {
    std::vector<MPI_Request> requests;
    for (int64_t off = 0; off < n; off += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - off));
      requests.push_back(MPI_REQUEST_NULL);
      EMBER_MPI_CHECK(
          MPI_Iallreduce(MPI_IN_PLACE, data + off, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &requests.back()));
    }
    return std::make_unique<MpiPending>(std::move(requests));
  }
  void all_reduce_sum(float* data, int64_t n) override {
    for (int64_t off = 0; off < n; off += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - off));
      EMBER_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data + off, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    }
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    char* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, bytes - off));
      EMBER_MPI_CHECK(MPI_Bcast(p + off, count, MPI_BYTE, root, MPI_COMM_WORLD));
    }
  }
  void barrier() override { EMBER_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }
};

}  // namespace

std::unique_ptr<Backend> make_mpi_backend(WorldInfo& info) {
  int initialized = 0;
  EMBER_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    int provided = 0;
    EMBER_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
  }
  EMBER_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  EMBER_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info.rank));
  EMBER_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info.size));
  // The rank among the processes of this machine: picks the GPU.
  MPI_Comm node;
  EMBER_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info.rank, MPI_INFO_NULL, &node));
  EMBER_MPI_CHECK(MPI_Comm_rank(node, &info.local_rank));
  EMBER_MPI_CHECK(MPI_Comm_free(&node));
  return std::make_unique<MpiBackend>();
}

void mpi_all_reduce_sum(double* data, int64_t n) {
  for (int64_t off = 0; off < n; off += kMaxCount) {
    const int count = static_cast<int>(std::min(kMaxCount, n - off));
    EMBER_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data + off, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  }
}

void mpi_abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // not reached
}

void mpi_finalize() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

}  // namespace ember::dist
#endif  // EMBER_WITH_MPI
