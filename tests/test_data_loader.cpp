// Tests of the BatchLoader of the example data code (examples/common/loader.h): deterministic
// epoch orders, batches independent of the worker thread count, resume at (epoch, batch), shards
// of one global batch, and dataset errors rethrown in the consumer with a clean shutdown.
#include <algorithm>
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "examples/common/image_folder.h"
#include "examples/common/loader.h"
#include "tests/data_files.h"

using namespace ember;
using namespace ember::data;
using namespace ember::data_test;
using Catch::Matchers::Contains;

namespace {

// A dataset whose samples encode (index, rng word), to check what the loader asked for.
struct TaggedDataset : Dataset {
  int64_t n;
  int64_t throw_at = -1;
  explicit TaggedDataset(int64_t n_) : n(n_) {}
  int64_t size() const override { return n; }
  int channels() const override { return 2; }
  int height() const override { return 1; }
  int width() const override { return 2; }
  bool has_labels() const override { return true; }
  int32_t label(int64_t i) const override { return int32_t(i % 10); }
  void load(int64_t i, uint64_t word, float* out) const override {
    EMBER_CHECK(i != throw_at, "TaggedDataset: sample " << i << " is broken");
    out[0] = float(i);
    out[1] = float(word & 0xFFFF);
    out[2] = float((word >> 16) & 0xFFFF);
    out[3] = float(i) * 0.5f;
  }
};

void require_same(const Batch& a, const Batch& b) {
  REQUIRE(a.epoch == b.epoch);
  REQUIRE(a.index == b.index);
  REQUIRE(a.n == b.n);
  REQUIRE(a.indices == b.indices);
  REQUIRE(a.labels == b.labels);
  REQUIRE(a.data == b.data);  // exact: the same decode of the same inputs
}

std::vector<Batch> take(BatchLoader& loader, int count) {
  std::vector<Batch> out;
  for (int i = 0; i < count; ++i) out.push_back(loader.next());
  return out;
}

}  // namespace

TEST_CASE("data: epoch orders are deterministic permutations", "[data][loader]") {
  for (int64_t n : {1, 2, 7, 101}) {
    std::vector<int64_t> a = epoch_order(n, 5, 0), b = epoch_order(n, 5, 0), c = epoch_order(n, 5, 1);
    REQUIRE(a == b);
    std::vector<int64_t> s = a;
    std::sort(s.begin(), s.end());
    for (int64_t i = 0; i < n; ++i) REQUIRE(s[size_t(i)] == i);
    if (n > 7) {
      REQUIRE(a != c);                          // each epoch reshuffles
      REQUIRE(a != epoch_order(n, 6, 0));       // the seed matters
      REQUIRE(a != epoch_order(n, 5, 0, false));  // and it is shuffled at all
    }
  }
  REQUIRE(sample_word(1, 0, 3) == sample_word(1, 0, 3));
  REQUIRE(sample_word(1, 0, 3) != sample_word(1, 1, 3));
  REQUIRE(sample_word(1, 0, 3) != sample_word(2, 0, 3));
}

TEST_CASE("data: BatchLoader batches do not depend on the thread count", "[data][loader]") {
  auto ds = std::make_shared<TaggedDataset>(23);
  for (bool drop_last : {true, false}) {
    INFO("drop_last " << drop_last);
    LoaderOptions o1;
    o1.batch_size = 5, o1.seed = 42, o1.drop_last = drop_last, o1.threads = 1, o1.prefetch = 1;
    LoaderOptions o3 = o1;
    o3.threads = 3, o3.prefetch = 6;
    BatchLoader l1(ds, o1), l3(ds, o3);
    const int per = drop_last ? 4 : 5;
    REQUIRE(l1.batches_per_epoch() == per);
    std::vector<Batch> a = take(l1, 3 * per + 2), b = take(l3, 3 * per + 2);
    for (size_t k = 0; k < a.size(); ++k) {
      INFO("batch " << k);
      require_same(a[k], b[k]);
      REQUIRE(a[k].epoch == int64_t(k) / per);
      REQUIRE(a[k].index == int64_t(k) % per);
      REQUIRE(a[k].c == 2);
      REQUIRE(a[k].h == 1);
      REQUIRE(a[k].w == 2);
      for (int j = 0; j < a[k].n; ++j) {
        const int64_t pos = a[k].index * 5 + j, i = a[k].indices[size_t(j)];
        REQUIRE(a[k].data[size_t(j * 4)] == float(i));
        REQUIRE(a[k].labels[size_t(j)] == int32_t(i % 10));
        const uint64_t w = sample_word(42, a[k].epoch, pos);
        REQUIRE(a[k].data[size_t(j * 4 + 1)] == float(w & 0xFFFF));
      }
    }
    // Each epoch visits every sample once (all of them without drop_last).
    for (int e = 0; e < 3; ++e) {
      std::vector<int64_t> seen;
      for (int k = 0; k < per; ++k)
        seen.insert(seen.end(), a[size_t(e * per + k)].indices.begin(), a[size_t(e * per + k)].indices.end());
      std::vector<int64_t> order = epoch_order(23, 42, e);
      REQUIRE(seen == std::vector<int64_t>(order.begin(), order.begin() + int64_t(seen.size())));
      REQUIRE(seen.size() == size_t(drop_last ? 20 : 23));
    }
    if (!drop_last) REQUIRE(a[size_t(per - 1)].n == 3);
  }
  LoaderOptions other;
  other.batch_size = 5, other.seed = 43;
  BatchLoader l(ds, other);
  LoaderOptions same = other;
  same.seed = 42;
  BatchLoader l42(ds, same);
  REQUIRE(l.next().indices != l42.next().indices);
}

TEST_CASE("data: BatchLoader over an image folder is identical with 1 and 2 threads", "[data][loader][image]") {
  TempDir dir("loader_img");
  for (int i = 0; i < 9; ++i) write_smooth_jpg(dir / ("img" + std::to_string(i) + ".jpg"), 40, 48, uint32_t(i));
  ImageFolderOptions io;
  io.size = 16, io.crop = 36, io.random_flip = true;
  auto ds = std::make_shared<ImageFolder>(dir.path.string(), io);
  LoaderOptions o;
  o.batch_size = 4, o.seed = 7, o.threads = 1;
  BatchLoader l1(ds, o);
  o.threads = 2, o.prefetch = 3;
  BatchLoader l2(ds, o);
  std::vector<Batch> a = take(l1, 5), b = take(l2, 5);
  bool any_flip = false;
  for (size_t k = 0; k < a.size(); ++k) {
    require_same(a[k], b[k]);
    REQUIRE(a[k].labels.empty());
    for (int j = 0; j < a[k].n; ++j) {
      const uint64_t w = sample_word(7, a[k].epoch, a[k].index * 4 + j);
      std::vector<float> ref = ds->load_sample(a[k].indices[size_t(j)], w);
      REQUIRE(std::equal(ref.begin(), ref.end(), a[k].data.begin() + j * int64_t(ref.size())));
      any_flip |= (w & 1) != 0;
    }
  }
  REQUIRE(any_flip);
  Tensor t = a[0].images();
  REQUIRE(t.shape() == Shape{4, 3, 16, 16});
}

TEST_CASE("data: BatchLoader resumed at (epoch, batch) continues the uninterrupted sequence", "[data][loader]") {
  auto ds = std::make_shared<TaggedDataset>(17);
  LoaderOptions o;
  o.batch_size = 4, o.seed = 9, o.threads = 2;
  BatchLoader full(ds, o);
  std::vector<Batch> ref = take(full, 12);  // 4 batches per epoch: epochs 0..2
  for (int start : {1, 4, 6, 11}) {
    INFO("start " << start);
    LoaderOptions r = o;
    r.start_epoch = start / 4, r.start_batch = start % 4;
    r.threads = 3;
    BatchLoader resumed(ds, r);
    REQUIRE(resumed.epoch() == start / 4);
    REQUIRE(resumed.batch_in_epoch() == start % 4);
    for (int k = start; k < 12; ++k) require_same(resumed.next(), ref[size_t(k)]);
    REQUIRE(resumed.epoch() == 3);
    REQUIRE(resumed.batch_in_epoch() == 0);
  }
  LoaderOptions bad = o;
  bad.start_batch = 4;
  REQUIRE_THROWS_WITH(BatchLoader(ds, bad), Contains("batch 4"));
}

TEST_CASE("data: BatchLoader shards split each global batch into disjoint slices of the shared order", "[data][loader]") {
  auto ds = std::make_shared<TaggedDataset>(29);
  LoaderOptions o;
  o.batch_size = 6, o.seed = 5, o.threads = 2;
  BatchLoader whole(ds, o);
  std::vector<Batch> ref = take(whole, 9);  // 4 batches of 6 per epoch
  LoaderOptions s = o;
  s.batch_size = 2, s.shard_count = 3;
  std::vector<std::unique_ptr<BatchLoader>> shards;
  for (int r = 0; r < 3; ++r) {
    s.shard_rank = r;
    shards.push_back(std::make_unique<BatchLoader>(ds, s));
    REQUIRE(shards.back()->batches_per_epoch() == 4);
  }
  for (const Batch& g : ref) {
    std::vector<int64_t> indices;
    std::vector<float> data;
    for (auto& l : shards) {
      Batch b = l->next();
      REQUIRE(b.epoch == g.epoch);
      REQUIRE(b.index == g.index);
      REQUIRE(b.n == 2);
      indices.insert(indices.end(), b.indices.begin(), b.indices.end());
      data.insert(data.end(), b.data.begin(), b.data.end());  // augmentation words included
    }
    REQUIRE(indices == g.indices);
    REQUIRE(data == g.data);
  }
  s.shard_rank = 3;
  REQUIRE_THROWS_WITH(BatchLoader(ds, s), Contains("shard 3 of 3"));
  s.shard_rank = 0, s.batch_size = 10;
  REQUIRE_THROWS_WITH(BatchLoader(ds, s), Contains("one batch of 30"));
}

TEST_CASE("data: BatchLoader rethrows dataset errors in the consumer and shuts down cleanly", "[data][loader]") {
  auto ds = std::make_shared<TaggedDataset>(12);
  ds->throw_at = 5;
  LoaderOptions o;
  o.batch_size = 3, o.seed = 1, o.threads = 2, o.shuffle = false;
  {
    BatchLoader l(ds, o);
    REQUIRE(l.next().indices == std::vector<int64_t>{0, 1, 2});
    REQUIRE_THROWS_WITH(l.next(), Contains("sample 5 is broken"));
    REQUIRE_THROWS_WITH(l.next(), Contains("sample 5 is broken"));
  }
  {
    // Destroyed while workers are blocked on a full queue.
    auto ok = std::make_shared<TaggedDataset>(100);
    LoaderOptions q = o;
    q.prefetch = 2, q.threads = 4;
    BatchLoader l(ok, q);
    l.next();
  }
  REQUIRE_THROWS_WITH(BatchLoader(std::make_shared<TaggedDataset>(2), LoaderOptions{}), Contains("cannot fill"));
}
