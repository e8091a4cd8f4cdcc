// Files for the tests of the example data code (tests/test_data_*.cpp): a temporary folder, raw
// bytes in and out, and PNG/JPEG images of known pixels written with stb_image_write.
#pragma once
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "stb_image_write.h"

namespace ember::data_test {

// A fresh folder under the system temp dir, removed on exit (pid in the name: ctest runs
// test cases as parallel processes).
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name) {
    path = std::filesystem::temp_directory_path() / ("ember_test_" + name + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& rel) const { return (path / rel).string(); }
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline std::vector<uint8_t> random_pixels(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> px(n);
  for (auto& p : px) p = uint8_t(rng() & 255);
  return px;
}

// A PNG of w x h x c random bytes; returns the bytes.
inline std::vector<uint8_t> write_random_png(const std::string& path, int w, int h, int c, uint32_t seed) {
  std::vector<uint8_t> px = random_pixels(size_t(w) * h * c, seed);
  REQUIRE(stbi_write_png(path.c_str(), w, h, c, px.data(), w * c) != 0);
  return px;
}

// A smooth RGB image (JPEG compresses it well, like a photo).
inline std::vector<uint8_t> smooth_pixels(int w, int h, uint32_t seed) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  const double a = 0.02 + 0.01 * (seed % 7), b = 0.03 + 0.01 * (seed % 5);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        px[(size_t(y) * w + x) * 3 + c] = uint8_t(127.5 + 120 * std::sin(a * x * (c + 1) + b * y + seed));
  return px;
}

inline void write_smooth_jpg(const std::string& path, int w, int h, uint32_t seed) {
  std::vector<uint8_t> px = smooth_pixels(w, h, seed);
  REQUIRE(stbi_write_jpg(path.c_str(), w, h, 3, px.data(), 90) != 0);
}

}  // namespace ember::data_test
