// CUDA fill family: constants, and Philox uniform/normal numbers bit-identical to the CPU.
#include <cstring>

#include "core/rng.h"
#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test::gpu;

namespace {

// Bit patterns, so that -0 != +0 and NaN payloads count.
std::vector<uint32_t> bits(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  std::vector<uint32_t> b(v.size());
  std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
  return b;
}

// Index of the first differing element, or -1.
int64_t first_difference(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  if (a.size() != b.size()) return 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return -1;
}

// Tails of every length mod 4, one block and a partial one, many blocks (2^16 + 3 under
// sanitizers, where 2^20 + 3 costs minutes over the eight size-offset draws).
const int64_t kSizes[] = {1, 2, 3, 4, 5, 7, 1023, 4097, kSanitized ? (1 << 16) + 3 : (1 << 20) + 3};

}  // namespace

TEST_CASE("fill: constants fill every element, aligned or not", "[cuda][fill]") {
  for (int64_t n : kSizes) {
    Tensor y = nan_tensor(Shape{n}, Device::CUDA);
    cuda::fill(y, -2.5f);
    for (float v : y.to_vector()) REQUIRE(v == -2.5f);
    Tensor m = misaligned_cuda(nan_tensor(Shape{n}));
    cuda::fill(m, 3.f);
    for (float v : m.to_vector()) REQUIRE(v == 3.f);
  }
}

TEST_CASE("fill: Philox uniforms are bit-identical to the CPU for any size and offset", "[cuda][fill][rng]") {
  const uint64_t offsets[] = {0, 1, 12345, uint64_t(1) << 40};
  for (int64_t n : kSizes)
    for (uint64_t off : offsets) {
      Tensor c = nan_tensor(Shape{n}), g = nan_tensor(Shape{n}, Device::CUDA);
      cpu::fill_uniform(c, 0x5eedull + n, off, -3.f, 2.f);
      cuda::fill_uniform(g, 0x5eedull + n, off, -3.f, 2.f);
      INFO("n = " << n << ", offset = " << off);
      CHECK(first_difference(bits(g), bits(c)) == -1);
    }
}

TEST_CASE("fill: Philox normals are bit-identical to the CPU for any size and offset", "[cuda][fill][rng]") {
  const uint64_t offsets[] = {0, 3, 987654321, uint64_t(1) << 40};
  for (int64_t n : kSizes)
    for (uint64_t off : offsets) {
      Tensor c = nan_tensor(Shape{n}), g = nan_tensor(Shape{n}, Device::CUDA);
      cpu::fill_normal(c, 42 + n, off, 0.5f, 2.f);
      cuda::fill_normal(g, 42 + n, off, 0.5f, 2.f);
      INFO("n = " << n << ", offset = " << off);
      CHECK(first_difference(bits(g), bits(c)) == -1);
    }
}

TEST_CASE("fill: a Generator draws the same tensors on CPU and CUDA", "[cuda][fill][rng]") {
  Generator a(2024), b(2024);
  for (int round = 0; round < 3; ++round) {
    Tensor c = randn(Shape{3, 5, 7}, a, Device::CPU, 0.f, 0.02f);
    Tensor g = randn(Shape{3, 5, 7}, b, Device::CUDA, 0.f, 0.02f);
    CHECK(first_difference(bits(g), bits(c)) == -1);
    Tensor cu = rand_uniform(Shape{101}, a, Device::CPU);
    Tensor gu = rand_uniform(Shape{101}, b, Device::CUDA);
    CHECK(first_difference(bits(gu), bits(cu)) == -1);
  }
  CHECK(a.offset() == b.offset());
}
