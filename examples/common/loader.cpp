// BatchLoader: deterministic shuffled batches decoded on background threads (see loader.h).
//
// Workers claim global batch numbers k = epoch * batches_per_epoch + batch in increasing order,
// build the whole batch, and park it in slots_[k]; the consumer takes slots in order. At most
// `prefetch` batches are claimed and not yet consumed, which bounds memory. Since the content of
// batch k is a pure function of (seed, k), which worker built it and when does not matter.
#include "examples/common/loader.h"

#include <algorithm>

#include "core/error.h"
#include "core/philox.h"
#include "core/rng.h"

namespace ember::data {

namespace {
// Epoch e draws from counters [e * 2^40, (e + 1) * 2^40): disjoint for any dataset below 2^40.
constexpr int kEpochShift = 40;
// Separates the augmentation stream from the shuffle stream of the same seed.
constexpr uint64_t kAugmentKey = 0x9E3779B97F4A7C15ull;
}  // namespace

std::vector<float> Dataset::load_sample(int64_t i, uint64_t rng_word) const {
  std::vector<float> out(static_cast<size_t>(sample_numel()));
  load(i, rng_word, out.data());
  return out;
}

Tensor Batch::images(Device device) const { return Tensor::from_vector(data, Shape{n, c, h, w}, device); }

Tensor Batch::label_tensor(Device device) const {
  EMBER_CHECK(int(labels.size()) == n, "Batch::label_tensor: the batch has " << labels.size() << " labels for "
                                                                              << n << " images");
  return Tensor::from_vector(std::vector<float>(labels.begin(), labels.end()), Shape{n}, device);
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  if (!shuffle) return order;
  Generator gen;
  gen.set_state(seed, static_cast<uint64_t>(epoch) << kEpochShift);
  // Fisher-Yates; j = floor(r * (i + 1) / 2^64) is uniform up to a bias of (i + 1) / 2^64.
  for (int64_t i = n - 1; i > 0; --i) {
    unsigned __int128 prod = static_cast<unsigned __int128>(gen.next_u64()) * static_cast<uint64_t>(i + 1);
    std::swap(order[i], order[static_cast<int64_t>(prod >> 64)]);
  }
  return order;
}

uint64_t sample_word(uint64_t seed, int64_t epoch, int64_t position) {
  philox::U4 b = philox::block(seed + kAugmentKey, (static_cast<uint64_t>(epoch) << kEpochShift) + position);
  return (static_cast<uint64_t>(b.x) << 32) | b.y;
}

BatchLoader::BatchLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions opt)
    : dataset_(std::move(dataset)), opt_(opt) {
  EMBER_CHECK(dataset_ != nullptr, "BatchLoader: no dataset");
  const int64_t n = dataset_->size();
  EMBER_CHECK(opt_.batch_size >= 1, "BatchLoader: batch_size " << opt_.batch_size << ", expected >= 1");
  EMBER_CHECK(opt_.threads >= 1, "BatchLoader: threads " << opt_.threads << ", expected >= 1");
  EMBER_CHECK(opt_.prefetch >= 1, "BatchLoader: prefetch " << opt_.prefetch << ", expected >= 1");
  EMBER_CHECK(n > 0, "BatchLoader: the dataset is empty");
  EMBER_CHECK(opt_.shard_count >= 1 && opt_.shard_rank >= 0 && opt_.shard_rank < opt_.shard_count,
              "BatchLoader: shard " << opt_.shard_rank << " of " << opt_.shard_count);
  EMBER_CHECK(opt_.shard_count == 1 || opt_.drop_last, "BatchLoader: sharding needs drop_last (equal shards)");
  const int64_t global = int64_t(opt_.batch_size) * opt_.shard_count;  // positions per batch, all shards
  EMBER_CHECK(!opt_.drop_last || n >= global,
              "BatchLoader: " << n << " samples cannot fill one batch of " << global
                              << " with drop_last (lower the batch size or set drop_last = false)");
  batches_per_epoch_ = opt_.drop_last ? n / global : (n + global - 1) / global;
  EMBER_CHECK(opt_.start_epoch >= 0 && opt_.start_batch >= 0 && opt_.start_batch < batches_per_epoch_,
              "BatchLoader: cannot start at epoch " << opt_.start_epoch << " batch " << opt_.start_batch << " ("
                                                    << batches_per_epoch_ << " batches per epoch)");
  next_ = claimed_ = opt_.start_epoch * batches_per_epoch_ + opt_.start_batch;
  workers_.reserve(opt_.threads);
  for (int t = 0; t < opt_.threads; ++t) workers_.emplace_back([this] { worker(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

std::shared_ptr<const std::vector<int64_t>> BatchLoader::order_for(int64_t epoch) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = orders_.find(epoch);
    if (it != orders_.end()) return it->second;
  }
  // Computed outside the lock; two workers may both compute it, the results are identical.
  auto order = std::make_shared<const std::vector<int64_t>>(
      epoch_order(dataset_->size(), opt_.seed, epoch, opt_.shuffle));
  std::lock_guard<std::mutex> lk(mu_);
  return orders_.emplace(epoch, std::move(order)).first->second;
}

void BatchLoader::build(int64_t k, Batch& b) {
  const Dataset& ds = *dataset_;
  b.epoch = k / batches_per_epoch_;
  b.index = k % batches_per_epoch_;
  std::shared_ptr<const std::vector<int64_t>> order = order_for(b.epoch);
  const int64_t begin = (b.index * opt_.shard_count + opt_.shard_rank) * opt_.batch_size;
  const int64_t end = std::min<int64_t>(begin + opt_.batch_size, ds.size());
  b.n = static_cast<int>(end - begin);
  b.c = ds.channels(), b.h = ds.height(), b.w = ds.width();
  const int64_t per = ds.sample_numel();
  b.data.resize(static_cast<size_t>(b.n * per));
  b.indices.resize(b.n);
  if (ds.has_labels()) b.labels.resize(b.n);
  for (int64_t p = begin; p < end; ++p) {
    const int64_t j = p - begin, i = (*order)[p];
    b.indices[j] = i;
    ds.load(i, sample_word(opt_.seed, b.epoch, p), b.data.data() + j * per);
    if (ds.has_labels()) b.labels[j] = ds.label(i);
  }
}

void BatchLoader::worker() {
  for (;;) {
    int64_t k;
    {
      std::unique_lock<std::mutex> lk(mu_);
      work_cv_.wait(lk, [&] { return stop_ || claimed_ < next_ + opt_.prefetch; });
      if (stop_) return;
      k = claimed_++;
      slots_[k];
    }
    Batch b;
    std::exception_ptr err;
    try {
      build(k, b);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      Slot& s = slots_[k];
      s.batch = std::move(b);
      s.error = err;
      s.done = true;
    }
    ready_cv_.notify_all();
  }
}

Batch BatchLoader::next() {
  std::unique_lock<std::mutex> lk(mu_);
  if (failed_) std::rethrow_exception(failed_);
  ready_cv_.wait(lk, [&] {
    auto it = slots_.find(next_);
    return it != slots_.end() && it->second.done;
  });
  auto it = slots_.find(next_);
  Slot slot = std::move(it->second);
  slots_.erase(it);
  if (slot.error) {
    // Stop decoding: the consumer will not get past this batch.
    failed_ = slot.error;
    stop_ = true;
    lk.unlock();
    work_cv_.notify_all();
    std::rethrow_exception(failed_);
  }
  ++next_;
  // Workers only build batches >= next_, so earlier epochs' orders are no longer needed.
  orders_.erase(orders_.begin(), orders_.lower_bound(next_ / batches_per_epoch_));
  lk.unlock();
  work_cv_.notify_all();
  return std::move(slot.batch);
}

double measure_images_per_second(std::shared_ptr<const Dataset> dataset, int threads, int64_t count,
                                 int batch_size) {
  LoaderOptions opt;
  opt.batch_size = batch_size;
  opt.threads = threads;
  opt.prefetch = std::max(4, 2 * threads);
  opt.drop_last = false;
  auto t0 = std::chrono::steady_clock::now();
  BatchLoader loader(std::move(dataset), opt);
  int64_t seen = 0;
  while (seen < count) seen += loader.next().n;
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(seen) / s;
}

}  // namespace ember::data
