// The hostile-image corpus in tests/hostile_images (written by scripts/make_hostile_images.py):
// every encoding of one 40x30 picture decodes to that picture with the channels asked for; odd
// sizes decode with their shape; every unreadable file is skipped with exactly one warning that
// names it, is counted, and a header claiming too many pixels is refused before decoding.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "examples/common/image_folder.h"

namespace fs = std::filesystem;
using namespace ember::data;
using Catch::Matchers::Contains;

namespace {

const fs::path kCorpus = fs::path(EMBER_SOURCE_DIR) / "tests" / "hostile_images";

std::vector<uint8_t> corpus_bytes(const std::string& name) {
  std::ifstream f(kCorpus / name, std::ios::binary);
  REQUIRE(f.good());
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Decodes a corpus file that must decode.
DecodedImage decode(const std::string& name, int channels) {
  const std::vector<uint8_t> bytes = corpus_bytes(name);
  DecodedImage im;
  std::string why;
  INFO(name << ": " << why);
  REQUIRE(decode_image(bytes.data(), bytes.size(), channels, &im, &why));
  REQUIRE(im.channels == channels);
  return im;
}

// Mean |a - b| over all bytes of two images of one size.
double mean_abs_diff(const DecodedImage& a, const DecodedImage& b) {
  REQUIRE(a.w == b.w);
  REQUIRE(a.h == b.h);
  REQUIRE(a.channels == b.channels);
  const size_t n = size_t(a.w) * a.h * a.channels;
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += std::abs(int(a.pixels.get()[i]) - int(b.pixels.get()[i]));
  return s / double(n);
}

// Sends std::cerr to a string while alive (ImageFolder warns on std::cerr).
struct CaptureCerr {
  std::ostringstream text;
  std::streambuf* old = std::cerr.rdbuf(text.rdbuf());
  ~CaptureCerr() { std::cerr.rdbuf(old); }
};

size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("image corpus: every supported encoding decodes to the same picture", "[data][image][corpus]") {
  const DecodedImage ref = decode("ok_rgb.png", 3);  // lossless: the picture itself
  REQUIRE(ref.w == 40);
  REQUIRE(ref.h == 30);
  // Lossless re-encodings are exact; JPEG (quality 90) and a 256-colour palette are close.
  // CMYK has K = 0, so it comes back as the RGB picture only if the Adobe inversion is handled.
  struct Case {
    const char* name;
    double max_mean_diff;
  };
  for (const Case& c : {Case{"ok_rgba.png", 0.0}, Case{"ok_rgb.jpg", 3.0}, Case{"ok_progressive.jpg", 3.0},
                        Case{"ok_cmyk.jpg", 3.0}, Case{"ok_palette.png", 5.0}}) {
    const double d = mean_abs_diff(decode(c.name, 3), ref);
    INFO(c.name << ": mean |decoded - ok_rgb.png| = " << d);
    CHECK(d <= c.max_mean_diff);
  }
  // Grey: stb's luma of the RGB picture against PIL's grey of it (8-bit, 16-bit, JPEG).
  const DecodedImage grey = decode("ok_rgb.png", 1);
  for (const Case& c : {Case{"ok_gray16.png", 1.0}, Case{"ok_gray.jpg", 3.0}}) {
    const double d = mean_abs_diff(decode(c.name, 1), grey);
    INFO(c.name << ": mean |decoded - grey(ok_rgb.png)| = " << d);
    CHECK(d <= c.max_mean_diff);
  }
  // A grey file asked for as RGB has three equal channels.
  const DecodedImage g3 = decode("ok_gray16.png", 3);
  for (int i = 0; i < g3.w * g3.h; ++i) {
    const uint8_t* p = g3.pixels.get() + 3 * i;
    REQUIRE((p[0] == p[1] && p[1] == p[2]));
  }
}

TEST_CASE("image corpus: odd sizes decode with their shape and crop to a square", "[data][image][corpus]") {
  const DecodedImage small = decode("ok_7x5.png", 3), wide = decode("ok_3000x40.jpg", 1);
  CHECK((small.w == 7 && small.h == 5));
  CHECK((wide.w == 3000 && wide.h == 40));
  ImageFolderOptions opt;
  opt.size = 16;
  opt.crop = 0;
  for (const char* name : {"ok_7x5.png", "ok_3000x40.jpg"}) {
    for (int channels : {1, 3}) {
      opt.channels = channels;
      std::vector<float> out(size_t(channels) * 16 * 16 + 1, NAN);
      std::string why;
      INFO(name << " as " << channels << " channels");
      REQUIRE(load_image_file((kCorpus / name).string(), opt, false, out.data(), &why));
      for (size_t i = 0; i + 1 < out.size(); ++i) REQUIRE((out[i] >= -1.f && out[i] <= 1.f));
      CHECK(std::isnan(out.back()));  // nothing written past channels x 16 x 16
    }
  }
}

TEST_CASE("image corpus: unreadable files are skipped, counted and named once each", "[data][image][corpus]") {
  const std::vector<std::string> bad = {"bad_empty.png",  "bad_huge_header.png", "bad_large_header.png",
                                        "bad_random.jpg", "bad_text.png",        "bad_truncated.jpg",
                                        "bad_truncated.png"};
  const std::vector<std::string> good = {"ok_3000x40.jpg", "ok_7x5.png",     "ok_cmyk.jpg",        "ok_gray.jpg",
                                         "ok_gray16.png",  "ok_palette.png", "ok_progressive.jpg", "ok_rgb.jpg",
                                         "ok_rgb.png",     "ok_rgba.png"};
  for (const std::string& name : bad) {
    const std::vector<uint8_t> bytes = corpus_bytes(name);
    DecodedImage im;
    std::string why;
    INFO(name);
    CHECK_FALSE(decode_image(bytes.data(), bytes.size(), 3, &im, &why));
    CHECK_FALSE(why.empty());
    CHECK(im.pixels == nullptr);
  }
  {
    // Refused from its header by ember's limit (stb_image alone would allocate 768 MB first).
    const std::vector<uint8_t> bytes = corpus_bytes("bad_large_header.png");
    DecodedImage im;
    std::string why;
    CHECK_FALSE(decode_image(bytes.data(), bytes.size(), 3, &im, &why));
    CHECK_THAT(why, Contains("16000 x 16000") && Contains("limit"));
  }

  CaptureCerr err;
  ImageFolderOptions opt;
  opt.size = 8;
  ImageFolder ds(kCorpus.string(), opt);
  REQUIRE(size_t(ds.size()) == bad.size() + good.size());  // notes.txt is not an image name
  for (int pass = 0; pass < 2; ++pass)
    for (int64_t i = 0; i < ds.size(); ++i) {
      std::vector<float> x = ds.load_sample(i, 0);
      REQUIRE(x.size() == 3 * 8 * 8);
    }
  CHECK(ds.skipped() == int64_t(bad.size()));
  const std::string log = err.text.str();
  INFO("stderr:\n" << log);
  CHECK(count_of(log, "warning") == bad.size());
  for (const std::string& name : bad) CHECK(count_of(log, "'" + (kCorpus / name).string() + "'") == 1);
  for (const std::string& name : good) CHECK(count_of(log, name) == 0);
}

TEST_CASE("image corpus: inputs that broke stb_image under the fuzzer are refused with a reason",
          "[data][image][corpus]") {
  // All found by tests/fuzz/image.cpp: a JPEG huffman table of more than 256 codes (stb_image
  // 2.27 wrote past its table), a PNG whose failure left stb's reason empty, and a PNG whose
  // empty first IDAT chunk made stb pass a null pointer to memcpy.
  const fs::path dir = fs::path(EMBER_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / "image";
  struct Case {
    const char* name;
    const char* reason;
  };
  for (const Case& c : {Case{"crash-jpeg-dht-over-256-codes.jpg", "huffman table"},
                        Case{"crash-png-empty-stb-reason.png", "cannot decode"},
                        Case{"crash-png-empty-first-idat.png", "empty first IDAT"}}) {
    std::ifstream f(dir / c.name, std::ios::binary);
    REQUIRE(f.good());
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    DecodedImage im;
    std::string why;
    INFO(c.name);
    CHECK_FALSE(decode_image(bytes.data(), bytes.size(), 3, &im, &why));
    CHECK_THAT(why, Contains(c.reason));
  }
}
