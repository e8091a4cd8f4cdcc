// ProcessGroup (process_group.h): backend choice, the watchdog, packing tensors into buckets.
#include "core/dist/process_group.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "core/autograd.h"
#include "core/dist/backend.h"
#include "core/error.h"
#include "core/ops.h"

namespace ember::dist {

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

#ifndef EMBER_WITH_MPI
std::unique_ptr<Backend> make_mpi_backend(WorldInfo&) {
  EMBER_INPUT_CHECK(false, "this process was started by mpirun, but ember was built without MPI: install "
                           "libopenmpi-dev (scripts/setup.sh does) and rebuild, or run one process without mpirun");
  return nullptr;
}
void mpi_all_reduce_sum(double*, int64_t) { EMBER_FAIL("ember was built without MPI"); }
void mpi_abort(int code) { std::_Exit(code); }
void mpi_finalize() {}
#endif
#ifndef EMBER_WITH_NCCL
std::unique_ptr<Backend> make_nccl_backend(Backend*, const WorldInfo&) { return nullptr; }
#endif
#if !defined(EMBER_WITH_CUDA) || defined(EMBER_EMULATION)  // the emulated build has no local_device.cu
int select_local_device(int) { return -1; }
#endif

namespace {

// One watchdog per process: a thread that aborts the job when a collective outlives the timeout.
class Watchdog {
 public:
  explicit Watchdog(double timeout_s, int rank) : timeout_s_(timeout_s), rank_(rank) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void begin(const char* what) {
    what_.store(what);
    started_ns_.store(now_ns());
  }
  void end() { started_ns_.store(0); }

 private:
  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void loop() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!cv_.wait_for(lk, std::chrono::milliseconds(200), [this] { return stop_; })) {
      const int64_t t0 = started_ns_.load();
      if (t0 == 0) continue;
      const double waited = (now_ns() - t0) * 1e-9;
      if (waited > timeout_s_) {
        std::fprintf(stderr,
                     "error: rank %d: the collective '%s' has waited %.0f s (EMBER_DIST_TIMEOUT=%.0f): another rank "
                     "has failed or hangs; aborting the job\n",
                     rank_, what_.load(), waited, timeout_s_);
        std::fflush(stderr);
        mpi_abort(1);
      }
    }
  }
  const double timeout_s_;
  const int rank_;
  std::atomic<int64_t> started_ns_{0};
  std::atomic<const char*> what_{""};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::mutex g_watchdog_mu;
std::unique_ptr<Watchdog> g_watchdog;  // alive while a group of several processes exists

// Marks the time spent inside one collective for the watchdog.
struct Watched {
  explicit Watched(const char* what) {
    if (g_watchdog) g_watchdog->begin(what);
  }
  ~Watched() {
    if (g_watchdog) g_watchdog->end();
  }
};

double timeout_from_env() {
  const char* v = std::getenv("EMBER_DIST_TIMEOUT");
  if (!v || !*v) return 300.0;
  char* end = nullptr;
  const double t = std::strtod(v, &end);
  EMBER_INPUT_CHECK(end && *end == '\0' && t > 0, "EMBER_DIST_TIMEOUT='" << v << "': expected a positive number of seconds");
  return t;
}

}  // namespace

Tensor slot(const Tensor& flat, int64_t offset, const Shape& shape) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = flat.impl()->storage;
  impl->offset = flat.impl()->offset + offset;
  impl->shape = shape;
  return Tensor(std::move(impl));
}

void scale_in_place(Tensor& t, float alpha) {
  NoGradGuard ng;
  if (t.device() == Device::CPU) {
    float* p = t.data();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] *= alpha;
  } else {
    t.copy_(ops::scale(t, alpha));
  }
}

namespace {
// A collective that finished before it was returned.
class Finished : public PendingCollective {
 public:
  bool test() override { return true; }
  void wait() override {}
};
}  // namespace

std::unique_ptr<PendingCollective> Backend::all_reduce_sum_async(float* data, int64_t n) {
  all_reduce_sum(data, n);
  return std::make_unique<Finished>();
}

std::unique_ptr<ProcessGroup> ProcessGroup::single() { return std::unique_ptr<ProcessGroup>(new ProcessGroup()); }

std::unique_ptr<ProcessGroup> ProcessGroup::from_environment() {
  std::unique_ptr<ProcessGroup> pg(new ProcessGroup());
  if (!launched_by_mpi()) return pg;
  const double timeout = timeout_from_env();
  WorldInfo info;
  pg->mpi_ = make_mpi_backend(info);
  pg->rank_ = info.rank, pg->size_ = info.size, pg->local_rank_ = info.local_rank;
  if (select_local_device(info.local_rank) >= 0) pg->nccl_ = make_nccl_backend(pg->mpi_.get(), info);
  if (pg->size_ > 1) {
    std::lock_guard<std::mutex> lk(g_watchdog_mu);
    EMBER_CHECK(!g_watchdog, "ProcessGroup: only one group of several processes may exist at a time");
    g_watchdog = std::make_unique<Watchdog>(timeout, pg->rank_);
  }
  return pg;
}

ProcessGroup::~ProcessGroup() {
  if (!mpi_) return;
  {
    std::lock_guard<std::mutex> lk(g_watchdog_mu);
    g_watchdog.reset();
  }
  nccl_.reset();
  // Unwinding from an error: MPI_Finalize would wait for ranks that are still training. Exit
  // without it; mpirun sees a rank end without finalising (or non-zero) and stops the job.
  if (std::uncaught_exceptions() == 0) mpi_finalize();
}

std::string ProcessGroup::backend_name() const {
  if (!mpi_) return "single";
  return nccl_ ? "mpi+nccl" : "mpi";
}

Backend& ProcessGroup::backend_for(Device d) { return d == Device::CUDA && nccl_ ? *nccl_ : *mpi_; }

void ProcessGroup::all_reduce(Tensor& t, ReduceOp op) {
  EMBER_CHECK(t.defined(), "all_reduce: undefined tensor");
  if (size_ == 1) return;
  Watched w("all_reduce");
  if (t.device() == Device::CPU || nccl_) {
    backend_for(t.device()).all_reduce_sum(t.data(), t.numel());
  } else {  // CUDA tensor without NCCL: through host memory
    Tensor host = t.to(Device::CPU);
    mpi_->all_reduce_sum(host.data(), host.numel());
    t.copy_(host);
  }
  if (op == ReduceOp::Average) scale_in_place(t, 1.0f / static_cast<float>(size_));
}

std::unique_ptr<PendingCollective> ProcessGroup::start_all_reduce_sum(Tensor& t) {
  EMBER_CHECK(t.defined(), "start_all_reduce_sum: undefined tensor");
  if (size_ == 1) return std::make_unique<Finished>();
  if (t.device() == Device::CPU || nccl_) return backend_for(t.device()).all_reduce_sum_async(t.data(), t.numel());
  all_reduce(t, ReduceOp::Sum);  // CUDA tensor without NCCL: through host memory, blocking
  return std::make_unique<Finished>();
}

void ProcessGroup::wait(PendingCollective& p) {
  if (size_ == 1) return;
  Watched w("all_reduce (waiting for a gradient bucket)");
  p.wait();
}

void ProcessGroup::broadcast(Tensor& t, int root) {
  EMBER_CHECK(t.defined(), "broadcast: undefined tensor");
  EMBER_CHECK(root >= 0 && root < size_, "broadcast: root " << root << " outside the group of " << size_);
  if (size_ == 1) return;
  Watched w("broadcast");
  const int64_t bytes = t.numel() * static_cast<int64_t>(sizeof(float));
  if (t.device() == Device::CPU || nccl_) {
    backend_for(t.device()).broadcast(t.data(), bytes, root);
  } else {
    Tensor host = t.to(Device::CPU);
    mpi_->broadcast(host.data(), bytes, root);
    t.copy_(host);
  }
}

void ProcessGroup::barrier() {
  if (size_ == 1) return;
  Watched w("barrier");
  mpi_->barrier();
}

void ProcessGroup::all_reduce(double* data, int64_t n, ReduceOp op) {
  if (size_ == 1 || n == 0) return;
  {
    Watched w("all_reduce (host doubles)");
    mpi_all_reduce_sum(data, n);
  }
  if (op == ReduceOp::Average)
    for (int64_t i = 0; i < n; ++i) data[i] /= size_;
}

void ProcessGroup::broadcast_bytes(void* data, int64_t bytes, int root) {
  if (size_ == 1 || bytes == 0) return;
  Watched w("broadcast (host bytes)");
  mpi_->broadcast(data, bytes, root);
}

int ProcessGroup::average_gradients(const std::vector<Tensor>& params, int64_t bucket_bytes) {
  EMBER_CHECK(bucket_bytes >= static_cast<int64_t>(sizeof(float)), "average_gradients: bucket_bytes " << bucket_bytes);
  if (size_ == 1 || params.empty()) return 0;
  // Which parameters have a gradient on some rank: those without one anywhere stay without one
  // (the optimiser skips them, as it would in one process).
  std::vector<double> has(params.size());
  for (size_t i = 0; i < params.size(); ++i) has[i] = params[i].grad().defined() ? 1.0 : 0.0;
  all_reduce(has.data(), static_cast<int64_t>(has.size()));
  const Device d = params.front().device();
  const int64_t cap = bucket_bytes / static_cast<int64_t>(sizeof(float));
  int buckets = 0;
  size_t i = 0;
  while (i < params.size()) {
    // The bucket: consecutive parameters up to `cap` elements (a larger one alone).
    size_t j = i;
    int64_t n = 0;
    while (j < params.size() && (j == i || n + params[j].numel() <= cap)) {
      EMBER_CHECK(params[j].device() == d, "average_gradients: parameters on different devices");
      if (has[j] > 0) n += params[j].numel();
      ++j;
    }
    if (n > 0) {
      Tensor flat = Tensor::empty(Shape{n}, d);
      int64_t off = 0;
      for (size_t k = i; k < j; ++k) {
        if (has[k] == 0) continue;
        Tensor s = slot(flat, off, params[k].shape());
        if (params[k].grad().defined()) s.copy_(params[k].grad());
        else s.zero_();
        off += params[k].numel();
      }
      all_reduce(flat, ReduceOp::Average);
      off = 0;
      for (size_t k = i; k < j; ++k) {
        if (has[k] == 0) continue;
        Tensor p = params[k];
        Tensor g = p.grad();
        Tensor s = slot(flat, off, p.shape());
        if (g.defined()) g.copy_(s);
        else p.set_grad(s.clone());
        off += p.numel();
      }
      ++buckets;
    }
    i = j;
  }
  return buckets;
}

void ProcessGroup::broadcast_tensors(const std::vector<Tensor>& ts, int root) {
  if (size_ == 1 || ts.empty()) return;
  int64_t n = 0;
  for (const Tensor& t : ts) {
    EMBER_CHECK(t.defined() && t.device() == ts.front().device(), "broadcast_tensors: undefined or mixed-device tensor");
    n += t.numel();
  }
  Tensor flat = Tensor::empty(Shape{n}, ts.front().device());
  int64_t off = 0;
  for (const Tensor& t : ts) {
    slot(flat, off, t.shape()).copy_(t);
    off += t.numel();
  }
  broadcast(flat, root);
  off = 0;
  for (const Tensor& t : ts) {
    t.copy_(slot(flat, off, t.shape()));
    off += t.numel();
  }
}

uint64_t state_hash(const std::vector<Tensor>& ts) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* p, size_t bytes) {
    const unsigned char* c = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < bytes; ++i) h = (h ^ c[i]) * 1099511628211ull;
  };
  for (const Tensor& t : ts) {
    const std::vector<float> v = t.to_vector();
    const int64_t n = t.numel();
    mix(&n, sizeof n);
    mix(v.data(), v.size() * sizeof(float));
  }
  return h;
}

}  // namespace ember::dist
