// The Dataset interface shared by the example data sources (Fashion-MNIST, image folders) and
// the BatchLoader: shuffled, deterministic batches decoded on background threads.
//
// Determinism: the order of epoch e is a Fisher-Yates shuffle driven by a Philox stream
// (key = seed, counters from e * 2^40), and the random word handed to Dataset::load for the
// sample at position p of epoch e is Philox(key = seed + kAugmentKey, counter = e * 2^40 + p).
// Both depend only on (seed, epoch, position), so batch k has the same content whatever the
// thread count or timing, and a run resumed at (epoch, batch) sees what an uninterrupted run
// would have seen from there.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/tensor.h"

namespace ember::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int channels() const = 0;
  virtual int height() const = 0;
  virtual int width() const = 0;
  virtual bool has_labels() const { return false; }
  virtual int32_t label(int64_t i) const { return -1; }
  // Writes sample i as channels*height*width floats (CHW) into `out`. `rng_word` is a random
  // 64-bit number the sample's augmentation draws from (the same word gives the same output).
  // Must be safe to call from several threads at once.
  virtual void load(int64_t i, uint64_t rng_word, float* out) const = 0;

  int64_t sample_numel() const { return int64_t(channels()) * height() * width(); }
  // The same, into a new vector (named differently so overriding load does not hide it).
  std::vector<float> load_sample(int64_t i, uint64_t rng_word) const;
};

struct Batch {
  int64_t epoch = 0, index = 0;  // position: batch `index` of epoch `epoch`
  int n = 0, c = 0, h = 0, w = 0;
  std::vector<float> data;        // [n, c, h, w]
  std::vector<int32_t> labels;    // [n] when the dataset has labels, else empty
  std::vector<int64_t> indices;   // [n] dataset indices of the samples

  Tensor images(Device device = Device::CPU) const;       // [n, c, h, w]
  Tensor label_tensor(Device device = Device::CPU) const;  // [n] float class indices (cross_entropy)
};

struct LoaderOptions {
  int batch_size = 64;
  uint64_t seed = 0;
  bool shuffle = true;       // false: the natural order 0..n-1 every epoch
  bool drop_last = true;     // true: every batch is full; false: the last batch of an epoch may be short
  int threads = 2;           // background decoding threads (>= 1)
  int prefetch = 4;          // batches decoded ahead of the consumer (>= 1)
  int64_t start_epoch = 0;   // resume: the first batch returned is (start_epoch, start_batch)
  int64_t start_batch = 0;
  // Data-parallel training: shard_count processes share each GLOBAL batch of
  // batch_size * shard_count positions of the shared shuffle; this one decodes the slice
  // [shard_rank * batch_size, (shard_rank + 1) * batch_size). Epochs, batch indices and the
  // resume position count global batches, so an epoch is still one pass over the data.
  int shard_rank = 0;
  int shard_count = 1;
};

// Deterministic permutation of 0..n-1 for one epoch (identity when shuffle is false).
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle = true);
// The augmentation word for position p of epoch e.
uint64_t sample_word(uint64_t seed, int64_t epoch, int64_t position);

// Iterates epochs forever; the caller stops when it has enough. Not copyable or movable.
class BatchLoader {
 public:
  BatchLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions opt);
  ~BatchLoader();  // stops and joins the workers (batches in flight are dropped)
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch in order. Blocks until it is decoded. An exception thrown by the dataset
  // while decoding this batch is rethrown here (and again on every later call).
  Batch next();

  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  // (epoch, batch) of the batch the next call to next() returns: save it to resume. Call from
  // the consumer thread (the only one that advances it).
  int64_t epoch() const { return next_ / batches_per_epoch_; }
  int64_t batch_in_epoch() const { return next_ % batches_per_epoch_; }
  const Dataset& dataset() const { return *dataset_; }

 private:
  struct Slot {
    bool done = false;
    Batch batch;
    std::exception_ptr error;
  };
  void worker();
  void build(int64_t k, Batch& b);
  std::shared_ptr<const std::vector<int64_t>> order_for(int64_t epoch);

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions opt_;
  int64_t batches_per_epoch_ = 0;

  std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  bool stop_ = false;
  int64_t next_ = 0;       // global index (epoch * batches_per_epoch + batch) the consumer wants next
  int64_t claimed_ = 0;    // next global index a worker will start
  std::map<int64_t, Slot> slots_;  // claimed batches: in progress or ready
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> orders_;
  std::exception_ptr failed_;
  std::vector<std::thread> workers_;
};

// Decodes `count` samples through a BatchLoader with `threads` workers and returns images per
// second (wall clock, including the wait for the first batch). For README numbers.
double measure_images_per_second(std::shared_ptr<const Dataset> dataset, int threads, int64_t count,
                                 int batch_size = 32);

}  // namespace ember::data
