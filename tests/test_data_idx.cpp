// Tests of the Fashion-MNIST reading of the example data code (examples/common/idx.h): the
// published files' counts, labels and pixel statistics, corrupt or truncated IDX and gzip files
// rejected with the file named, and the conversion of the 28x28 bytes to padded, scaled floats.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "examples/common/idx.h"
#include "tests/data_files.h"

using namespace ember;
using namespace ember::data;
using namespace ember::data_test;
using Catch::Matchers::Contains;

namespace {

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

}  // namespace

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
