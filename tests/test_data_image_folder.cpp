// Tests of the image folders of the example data code (examples/common/image_folder.h): JPEG/PNG
// decoding, centre crop and box-filter resize, grey conversion and flips, the recursive scan, and
// unreadable files skipped, counted or (for a whole folder) rejected before training.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "examples/common/image_folder.h"
#include "examples/common/loader.h"
#include "tests/data_files.h"

namespace fs = std::filesystem;
using namespace ember;
using namespace ember::data;
using namespace ember::data_test;
using Catch::Matchers::Contains;

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
