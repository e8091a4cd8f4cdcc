// Tests of the example data code (examples/common): Fashion-MNIST IDX reading, image folders
// (scan, crop/resize, flip, unreadable files), the BatchLoader's determinism and resume, and
// PNG output read back with stb_image.
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "examples/common/idx.h"
#include "examples/common/image_folder.h"
#include "examples/common/image_io.h"
#include "examples/common/loader.h"
#include "stb_image.h"
#include "stb_image_write.h"

namespace fs = std::filesystem;
using namespace ember;
using namespace ember::data;
using Catch::Matchers::Contains;

namespace {

// A fresh folder under the system temp dir, removed on exit (pid in the name: ctest runs
// test cases as parallel processes).
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("ember_test_" + name + "_" + std::to_string(getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& rel) const { return (path / rel).string(); }
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

std::vector<uint8_t> idx_header(uint32_t magic, const std::vector<uint32_t>& dims) {
  std::vector<uint8_t> b;
  auto put = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
  };
  put(magic);
  for (uint32_t d : dims) put(d);
  return b;
}

std::vector<uint8_t> random_pixels(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> px(n);
  for (auto& p : px) p = uint8_t(rng() & 255);
  return px;
}

// A PNG of w x h x c random bytes; returns the bytes.
std::vector<uint8_t> write_random_png(const std::string& path, int w, int h, int c, uint32_t seed) {
  std::vector<uint8_t> px = random_pixels(size_t(w) * h * c, seed);
  REQUIRE(stbi_write_png(path.c_str(), w, h, c, px.data(), w * c) != 0);
  return px;
}

// A smooth RGB image (JPEG compresses it well, like a photo).
std::vector<uint8_t> smooth_pixels(int w, int h, uint32_t seed) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  const double a = 0.02 + 0.01 * (seed % 7), b = 0.03 + 0.01 * (seed % 5);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        px[(size_t(y) * w + x) * 3 + c] = uint8_t(127.5 + 120 * std::sin(a * x * (c + 1) + b * y + seed));
  return px;
}

void write_smooth_jpg(const std::string& path, int w, int h, uint32_t seed) {
  std::vector<uint8_t> px = smooth_pixels(w, h, seed);
  REQUIRE(stbi_write_jpg(path.c_str(), w, h, 3, px.data(), 90) != 0);
}

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

// ---- Fashion-MNIST -----------------------------------------------------------------------

TEST_CASE("data: Fashion-MNIST IDX files have the published counts, labels and pixel statistics", "[data][idx]") {
  // Reference values computed once with Python's gzip module over the same files: train mean
  // pixel 72.9404 (0.28604 of 255, std 0.35302), test 73.1467; every class has exactly 6000
  // (train) / 1000 (test) images; the first labels are 9 0 0 3 0 2 7 2 / 9 2 1 1 6 1 4 6.
  struct Expect {
    bool train;
    int64_t n;
    double mean;
    std::vector<int32_t> first;
  };
  for (const Expect& e : {Expect{true, 60000, 72.9404, {9, 0, 0, 3, 0, 2, 7, 2}},
                          Expect{false, 10000, 73.1467, {9, 2, 1, 1, 6, 1, 4, 6}}}) {
    INFO("train " << e.train);
    MnistSplit s = load_fashion_mnist(kFashionMnistDir, e.train);
    REQUIRE(s.size() == e.n);
    REQUIRE(s.images.rows == 28);
    REQUIRE(s.images.cols == 28);
    REQUIRE(int64_t(s.images.pixels.size()) == e.n * 784);
    REQUIRE(std::vector<int32_t>(s.labels.begin(), s.labels.begin() + 8) == e.first);
    std::vector<int64_t> per_class(10, 0);
    for (int32_t l : s.labels) per_class.at(size_t(l))++;
    for (int64_t c : per_class) REQUIRE(c == e.n / 10);
    double sum = 0, sq = 0;
    for (uint8_t p : s.images.pixels) sum += p, sq += double(p) * p;
    const double mean = sum / double(s.images.pixels.size());
    REQUIRE(std::abs(mean - e.mean) < 5e-4);
    if (e.train) {
      // The standardisation constants in idx.h are these statistics.
      const double m01 = mean / 255, sd01 = std::sqrt(sq / double(s.images.pixels.size()) - mean * mean) / 255;
      REQUIRE(std::abs(m01 - kFashionMnistMean) < 1e-4);
      REQUIRE(std::abs(sd01 - kFashionMnistStd) < 1e-4);
    }
  }
}

TEST_CASE("data: corrupt or truncated IDX files are rejected with the file named", "[data][idx]") {
  TempDir dir("idx");
  std::vector<uint8_t> good = idx_header(0x803, {3, 28, 28});
  std::vector<uint8_t> px = random_pixels(3 * 784, 7);
  good.insert(good.end(), px.begin(), px.end());

  SECTION("a valid small file reads back") {
    std::string p = dir / "ok.gz";
    write_gz(p, good);
    IdxImages im = read_idx_images(p);
    REQUIRE(im.n == 3);
    REQUIRE(im.pixels == px);
  }
  SECTION("IDX payload shorter than the header says") {
    std::string p = dir / "short.gz";
    write_gz(p, std::vector<uint8_t>(good.begin(), good.end() - 100));
    REQUIRE_THROWS_AS(read_idx_images(p), Error);
    REQUIRE_THROWS_WITH(read_idx_images(p), Contains(p) && Contains("truncated"));
  }
  SECTION("gzip stream cut in the middle") {
    std::string full = dir / "full.gz", cut = dir / "cut.gz";
    write_gz(full, good);
    std::vector<uint8_t> z = read_bytes(full);
    write_bytes(cut, std::vector<uint8_t>(z.begin(), z.begin() + z.size() / 2));
    REQUIRE_THROWS_WITH(read_idx_images(cut), Contains(cut) && Contains("truncated"));
  }
  SECTION("gzip stream with a corrupted body") {
    std::string full = dir / "full.gz", bad = dir / "bad.gz";
    write_gz(full, good);
    std::vector<uint8_t> z = read_bytes(full);
    for (size_t i = z.size() / 3; i < z.size() / 3 + 16; ++i) z[i] ^= 0x5A;
    write_bytes(bad, z);
    REQUIRE_THROWS_WITH(read_idx_images(bad), Contains(bad));
  }
  SECTION("wrong magic: a label file read as images") {
    std::string p = dir / "labels.gz";
    std::vector<uint8_t> lab = idx_header(0x801, {4});
    lab.insert(lab.end(), {1, 2, 3, 4});
    write_gz(p, lab);
    REQUIRE(read_idx_labels(p) == std::vector<int32_t>{1, 2, 3, 4});
    REQUIRE_THROWS_WITH(read_idx_images(p), Contains(p) && Contains("magic"));
  }
  SECTION("trailing bytes") {
    std::string p = dir / "long.gz";
    std::vector<uint8_t> more = good;
    more.push_back(0);
    write_gz(p, more);
    REQUIRE_THROWS_WITH(read_idx_images(p), Contains(p) && Contains("trailing"));
  }
  SECTION("sizes whose product wraps 64 bits") {
    // 16 x 2^30 x 2^30 = 2^64 wraps to 0 in unchecked arithmetic: a bare 16-byte header
    // then "matched" its size and 16 empty 2^30 x 2^30 images were handed out.
    std::string p = dir / "wrap.gz";
    write_gz(p, idx_header(0x803, {16, 1u << 30, 1u << 30}));
    REQUIRE_THROWS_WITH(read_idx_images(p), Contains(p) && Contains("16 x 1073741824 x 1073741824") &&
                                                Contains("more than 2^64 bytes"));
    // 2^32-1 cubed wraps to a different small value; the sum with the header size can wrap too.
    write_gz(p, idx_header(0x803, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}));
    REQUIRE_THROWS_WITH(read_idx_images(p), Contains("more than 2^64 bytes"));
  }
  SECTION("missing file") {
    std::string p = dir / "nope.gz";
    REQUIRE_THROWS_WITH(read_idx_images(p), Contains(p));
  }
  SECTION("a split whose label is out of range") {
    write_gz(dir / "t10k-images-idx3-ubyte.gz", good);
    std::vector<uint8_t> lab = idx_header(0x801, {3});
    lab.insert(lab.end(), {1, 12, 3});
    write_gz(dir / "t10k-labels-idx1-ubyte.gz", lab);
    REQUIRE_THROWS_WITH(load_fashion_mnist(dir.path.string(), false), Contains("label 12"));
  }
}

TEST_CASE("data: MNIST float conversion pads with background and scales", "[data][idx]") {
  auto split = std::make_shared<MnistSplit>();
  split->images.n = 2, split->images.rows = 28, split->images.cols = 28;
  split->images.pixels = random_pixels(2 * 784, 11);
  split->labels = {4, 7};
  for (PixelScale sc : {PixelScale::MinusOneOne, PixelScale::ZeroOne, PixelScale::Standardized}) {
    for (int size : {28, 32}) {
      INFO("scale " << int(sc) << " size " << size);
      MnistFormat fmt{size, sc};
      std::vector<int32_t> labels;
      std::vector<float> b = mnist_float_batch(*split, {1, 0}, fmt, &labels);
      REQUIRE(labels == std::vector<int32_t>{7, 4});
      REQUIRE(b.size() == size_t(2 * size * size));
      const int pad = (size - 28) / 2;
      for (int k = 0; k < 2; ++k) {
        const int64_t src = k == 0 ? 1 : 0;
        for (int y = 0; y < size; ++y)
          for (int x = 0; x < size; ++x) {
            const int sy = y - pad, sx = x - pad;
            const bool inside = sy >= 0 && sy < 28 && sx >= 0 && sx < 28;
            const double v = inside ? split->images.pixels[size_t(src * 784 + sy * 28 + sx)] : 0.0;
            double ref = sc == PixelScale::MinusOneOne ? v / 127.5 - 1
                         : sc == PixelScale::ZeroOne   ? v / 255
                                                       : (v / 255 - kFashionMnistMean) / kFashionMnistStd;
            REQUIRE(std::abs(b[size_t((k * size + y) * size + x)] - ref) < 1e-6);
          }
      }
      MnistDataset ds(split, fmt);
      std::vector<float> one = ds.load_sample(1, 0);
      REQUIRE(std::vector<float>(b.begin(), b.begin() + size * size) == one);
    }
  }
  REQUIRE_THROWS_AS(MnistDataset(split, MnistFormat{31, PixelScale::ZeroOne}), Error);
}

// ---- image folders -------------------------------------------------------------------------

TEST_CASE("data: image folder crop and resize match a box-filter reference", "[data][image]") {
  TempDir dir("crop");
  const int W = 40, H = 60;  // portrait like CelebA: the crop cuts rows
  std::vector<uint8_t> px = write_random_png(dir / "a.png", W, H, 3, 3);
  // (crop, size): ratio 2 and 3 are exact box averages; crop > image clamps to 40; size == side copies.
  struct Case {
    int crop, size;
  };
  for (Case cs : {Case{40, 20}, Case{30, 10}, Case{178, 20}, Case{0, 8}, Case{36, 36}}) {
    INFO("crop " << cs.crop << " size " << cs.size);
    ImageFolderOptions opt;
    opt.crop = cs.crop, opt.size = cs.size;
    ImageFolder ds(dir.path.string(), opt);
    REQUIRE(ds.size() == 1);
    REQUIRE(ds.channels() == 3);
    std::vector<float> out = ds.load_sample(0, 0);
    REQUIRE(out.size() == size_t(3 * cs.size * cs.size));
    const int side = cs.crop > 0 ? std::min({cs.crop, W, H}) : std::min(W, H);
    const int x0 = (W - side) / 2, y0 = (H - side) / 2, r = side / cs.size;
    REQUIRE(r * cs.size == side);
    double max_err = 0;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < cs.size; ++y)
        for (int x = 0; x < cs.size; ++x) {
          double s = 0;
          for (int dy = 0; dy < r; ++dy)
            for (int dx = 0; dx < r; ++dx) s += px[(size_t(y0 + y * r + dy) * W + x0 + x * r + dx) * 3 + c];
          const double ref = s / (r * r) / 127.5 - 1;
          max_err = std::max(max_err, std::abs(out[size_t((c * cs.size + y) * cs.size + x)] - ref));
        }
    // The resize writes bytes: at most half a byte step of rounding (plus float slack).
    REQUIRE(max_err <= 0.5 / 127.5 + 1e-5);
    if (r == 1) REQUIRE(max_err < 1e-6);
  }
}

TEST_CASE("data: image folder output range, grey conversion and flips", "[data][image]") {
  TempDir dir("flip");
  write_smooth_jpg(dir / "photo.jpg", 178, 218, 1);
  write_random_png(dir / "rgba.png", 50, 30, 4, 2);  // alpha is dropped
  for (int ch : {3, 1}) {
    ImageFolderOptions opt;
    opt.size = 32, opt.channels = ch, opt.random_flip = true;
    ImageFolder ds(dir.path.string(), opt);
    REQUIRE(ds.size() == 2);
    for (int64_t i = 0; i < ds.size(); ++i) {
      std::vector<float> plain = ds.load_sample(i, 0), flipped = ds.load_sample(i, 1), plain2 = ds.load_sample(i, 0xFFFFFFFFFFFFFFFEull);
      REQUIRE(plain.size() == size_t(ch * 32 * 32));
      REQUIRE(plain == plain2);  // only bit 0 decides
      float lo = 1, hi = -1;
      for (float v : plain) lo = std::min(lo, v), hi = std::max(hi, v);
      REQUIRE(lo >= -1.0f);
      REQUIRE(hi <= 1.0f);
      REQUIRE(hi - lo > 0.5f);  // real content, not a constant
      for (int c = 0; c < ch; ++c)
        for (int y = 0; y < 32; ++y)
          for (int x = 0; x < 32; ++x)
            REQUIRE(flipped[size_t((c * 32 + y) * 32 + x)] == plain[size_t((c * 32 + y) * 32 + 31 - x)]);
      REQUIRE(flipped != plain);
    }
    opt.random_flip = false;
    ImageFolder no_flip(dir.path.string(), opt);
    REQUIRE(no_flip.load_sample(0, 1) == no_flip.load_sample(0, 0));
  }
}

TEST_CASE("data: image folder scans recursively, sorts, skips and counts unreadable files", "[data][image]") {
  TempDir dir("scan");
  fs::create_directories(dir.path / "b" / "deep");
  fs::create_directories(dir.path / "a");
  write_random_png(dir / "b/deep/z.PNG", 8, 8, 3, 1);
  write_smooth_jpg(dir / "a/y.JPEG", 16, 12, 2);
  write_smooth_jpg(dir / "c.jpg", 12, 16, 3);
  write_random_png(dir / "d.png", 10, 10, 1, 4);
  write_bytes(dir / "b/broken.jpg", random_pixels(300, 9));  // garbage bytes
  {
    std::string full = dir / "full.png";
    write_random_png(full, 20, 20, 3, 5);
    std::vector<uint8_t> z = read_bytes(full);
    write_bytes(dir / "b/truncated.png", std::vector<uint8_t>(z.begin(), z.begin() + z.size() / 2));
    fs::remove(full);
  }
  write_bytes(dir / "notes.txt", {'h', 'i'});
  write_bytes(dir / "a/readme.md", {'h', 'i'});

  ImageFolderOptions opt;
  opt.size = 8;
  ImageFolder ds(dir.path.string(), opt);
  std::vector<std::string> rel;
  for (int64_t i = 0; i < ds.size(); ++i) rel.push_back(fs::relative(ds.path(i), dir.path).generic_string());
  REQUIRE(rel == std::vector<std::string>{"a/y.JPEG", "b/broken.jpg", "b/deep/z.PNG", "b/truncated.png", "c.jpg",
                                          "d.png"});
  REQUIRE(ds.skipped() == 0);  // the first file decoded: nothing else is touched at construction
  std::vector<std::vector<float>> all;
  for (int64_t i = 0; i < ds.size(); ++i) all.push_back(ds.load_sample(i, 0));
  REQUIRE(ds.skipped() == 2);
  // An unreadable file is replaced by the next readable one in sorted order.
  REQUIRE(all[1] == all[2]);
  REQUIRE(all[3] == all[4]);
  REQUIRE(all[0] != all[2]);
  for (int64_t i = 0; i < ds.size(); ++i) ds.load_sample(i, 0);
  REQUIRE(ds.skipped() == 2);  // counted once per file

  // Unreadable files first in order are found by the constructor.
  TempDir dir2("scan2");
  write_bytes(dir2 / "0.png", random_pixels(100, 1));
  write_random_png(dir2 / "1.png", 8, 8, 3, 1);
  ImageFolder ds2(dir2.path.string(), opt);
  REQUIRE(ds2.skipped() == 1);
  REQUIRE(ds2.load_sample(0, 0) == ds2.load_sample(1, 0));
}

TEST_CASE("data: missing, empty or unreadable image folders throw before training", "[data][image]") {
  TempDir dir("empty");
  REQUIRE_THROWS_WITH(ImageFolder(dir / "does_not_exist"), Contains("does not exist") && Contains("does_not_exist"));
  REQUIRE_THROWS_WITH(ImageFolder(dir.path.string()), Contains("no .jpg/.jpeg/.png") && Contains(dir.path.string()));
  write_bytes(dir / "a.txt", {'x'});
  REQUIRE_THROWS_WITH(ImageFolder(dir.path.string()), Contains("no .jpg/.jpeg/.png"));
  write_bytes(dir / "bad.jpg", random_pixels(64, 3));
  write_bytes(dir / "bad2.png", {});
  REQUIRE_THROWS_WITH(ImageFolder(dir.path.string()), Contains("none of the 2 image files"));
  write_bytes(dir / "file.png", random_pixels(64, 3));
  REQUIRE_THROWS_WITH(ImageFolder(dir / "file.png"), Contains("not a folder"));
  ImageFolderOptions opt;
  opt.channels = 2;
  REQUIRE_THROWS_WITH(ImageFolder(dir.path.string(), opt), Contains("channels 2"));
}

// ---- BatchLoader -----------------------------------------------------------------------------

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

// ---- PNG output ----------------------------------------------------------------------------

TEST_CASE("data: PNG grid reads back with the right size and pixels", "[data][png]") {
  TempDir dir("png");
  for (int c : {1, 3}) {
    INFO("channels " << c);
    const int n = 5, h = 4, w = 3, nrow = 2, pad = 2;
    std::vector<float> imgs(size_t(n * c * h * w));
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> U(-1.2f, 1.2f);  // includes values to clamp
    for (float& v : imgs) v = U(rng);
    const std::string path = dir / ("grid" + std::to_string(c) + ".png");
    write_png_grid(path, imgs.data(), n, c, h, w, nrow, pad);
    REQUIRE_FALSE(fs::exists(path + ".tmp"));
    int W = 0, H = 0, comp = 0;
    uint8_t* px = stbi_load(path.c_str(), &W, &H, &comp, 0);
    REQUIRE(px != nullptr);
    REQUIRE(W == nrow * (w + pad) + pad);
    REQUIRE(H == 3 * (h + pad) + pad);
    REQUIRE(comp == c);
    std::vector<int> covered(size_t(W * H), 0);
    for (int i = 0; i < n; ++i)
      for (int ch = 0; ch < c; ++ch)
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x) {
            const int gy = pad + (i / nrow) * (h + pad) + y, gx = pad + (i % nrow) * (w + pad) + x;
            const double v = std::clamp(double(imgs[size_t(((i * c + ch) * h + y) * w + x)]), -1.0, 1.0);
            const double want = std::round((v + 1) * 127.5);
            REQUIRE(std::abs(px[(gy * W + gx) * c + ch] - want) <= 0.5);
            covered[size_t(gy * W + gx)] = 1;
          }
    for (int k = 0; k < W * H; ++k)
      if (!covered[size_t(k)])
        for (int ch = 0; ch < c; ++ch) REQUIRE(px[k * c + ch] == 0);  // padding and the empty 6th cell
    stbi_image_free(px);
  }
  REQUIRE_THROWS_WITH(write_png_grid(dir / "no/such/dir/g.png", std::vector<float>(12, 0.f).data(), 1, 1, 3, 4),
                      Contains("no/such/dir/g.png"));
}

TEST_CASE("data: attention figure layout, heat colours and markers", "[data][png]") {
  TempDir dir("attn");
  // The ramp gets brighter monotonically and spans dark to light.
  double prev = -1;
  for (int k = 0; k <= 100; ++k) {
    Rgb c = heat_color(k / 100.0f);
    double lum = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
    REQUIRE(lum > prev);
    prev = lum;
  }
  REQUIRE(heat_color(0).r == 0);
  REQUIRE(prev > 230);

  const int c = 3, h = 16, w = 16, g = 8, zoom = 2;
  std::vector<float> img(size_t(c * h * w));
  for (size_t i = 0; i < img.size(); ++i) img[i] = float(i % 7) / 3.5f - 1.0f;
  std::vector<AttentionMap> maps(2);
  for (int m = 0; m < 2; ++m) {
    maps[size_t(m)].grid_h = maps[size_t(m)].grid_w = g;
    maps[size_t(m)].weights.resize(g * g);
    for (int k = 0; k < g * g; ++k) maps[size_t(m)].weights[size_t(k)] = float((k * (m + 3)) % 17) / 100.0f;
  }
  maps[0].query_y = 3, maps[0].query_x = 4;
  maps[1].query_y = 12, maps[1].query_x = 9;
  const std::string path = dir / "attn.png";
  write_attention_png(path, img.data(), c, h, w, maps, zoom);
  int W = 0, H = 0, comp = 0;
  uint8_t* px = stbi_load(path.c_str(), &W, &H, &comp, 3);
  REQUIRE(px != nullptr);
  const int pw = w * zoom + 4;
  REQUIRE(W == 3 * pw);
  REQUIRE(H == h * zoom + 4);
  // A map pixel far from the marker: the map cell's weight / the map's max through the ramp.
  const int m = 1, y = 2, x = 3;  // image pixel (2, 3) -> grid cell (1, 1)
  const float mx = *std::max_element(maps[1].weights.begin(), maps[1].weights.end());
  Rgb want = heat_color(maps[1].weights[size_t(1 * g + 1)] / mx);
  const uint8_t* p = px + ((2 + y * zoom) * W + (m + 1) * pw + 2 + x * zoom) * 3;
  REQUIRE(int(p[0]) == want.r);
  REQUIRE(int(p[1]) == want.g);
  REQUIRE(int(p[2]) == want.b);
  // The image panel keeps the image's pixels away from markers.
  const uint8_t* q = px + ((2 + 14 * zoom) * W + 2 + 1 * zoom) * 3;
  REQUIRE(int(q[0]) == to_byte(img[size_t(14 * w + 1)]));
  // Query 0's marker on the image: its centre has the marker colour, not the image's.
  const uint8_t* mk = px + ((2 + 3 * zoom + 1) * W + 2 + 4 * zoom + 1) * 3;
  REQUIRE((int(mk[0]) == 0 && int(mk[1]) == 220 && int(mk[2]) == 255));
  stbi_image_free(px);

  std::vector<AttentionMap> wrong = maps;
  wrong[0].weights.pop_back();
  REQUIRE_THROWS_WITH(write_attention_png(path, img.data(), c, h, w, wrong), Contains("63 weights"));
}

// ---- throughput (hidden: run with `ember_tests "[.bench]"`) ----------------------------------

TEST_CASE("data: image decode throughput", "[.bench]") {
  const fs::path root = fs::temp_directory_path() / "ember_bench_jpegs";
  fs::create_directories(root);
  for (int i = 0; i < 200; ++i) {
    std::string p = (root / ("img" + std::to_string(1000 + i) + ".jpg")).string();
    if (!fs::exists(p)) write_smooth_jpg(p, 178, 218, uint32_t(i));
  }
  ImageFolderOptions opt;  // CelebA defaults: crop 178 -> 128x128
  auto ds = std::make_shared<ImageFolder>(root.string(), opt);
  for (int threads : {1, 2}) {
    measure_images_per_second(ds, threads, 64);  // warm the page cache
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) best = std::max(best, measure_images_per_second(ds, threads, 400));
    std::printf("decode+crop+resize 178x218 JPEG -> 128x128: %d thread(s): %.0f images/s\n", threads, best);
  }
}
