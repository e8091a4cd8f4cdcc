// CUDA reductions against the CPU: sum_mid over many (outer, mid, inner) shapes covering the
// short-mid, single-pass and sliced (two-pass) paths, broadcast_mid, determinism, and the ops.
#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test;
using namespace ember::test::gpu;

namespace {

struct Omi {
  int64_t outer, mid, inner;
};

const Omi kShapes[] = {
    {1, 1, 1},     {1, 7, 1},       {3, 16, 5},    {1000, 3, 1},    {1, 17, 1},
    {5, 1000, 1},  {1, 1000003, 1}, {2, 1000, 33}, {7, 129, 3},     {1, 4096, 1024},
    {3, 65537, 2}, {64, 4099, 1},   {11, 257, 31}, {1, 300, 10007}, {2, 0, 3},
};

}  // namespace

TEST_CASE("reduce: sum_mid matches the CPU on every path", "[cuda][reduce]") {
  uint64_t seed = 1;
  for (const Omi& s : kShapes) {
    Tensor x = random_tensor(Shape{s.outer * s.mid * s.inner}, seed++);
    const std::string what = "sum_mid outer=" + std::to_string(s.outer) + " mid=" + std::to_string(s.mid) +
                             " inner=" + std::to_string(s.inner);
    compare_kernel(what, {x}, {nan_tensor(Shape{s.outer, s.inner})},
                   [s](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                     EMBER_DISPATCH("t", d, sum_mid, i[0], s.outer, s.mid, s.inner, o[0]);
                   });
  }
}

TEST_CASE("reduce: sum_mid of a positive offset keeps float accuracy", "[cuda][reduce]") {
  // Two million values near 1: a naive running float sum would drift by ~1e-3 relative.
  Tensor x = random_tensor(Shape{2000000}, 5, 0.9f, 1.1f);
  compare_kernel("sum of 2e6 values near 1", {x}, {nan_tensor(Shape{1, 1})},
                 [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                   EMBER_DISPATCH("t", d, sum_mid, i[0], 1, 2000000, 1, o[0]);
                 });
}

TEST_CASE("reduce: sums are bitwise reproducible run to run", "[cuda][reduce]") {
  Tensor x = random_tensor(Shape{3 * 100003 * 5}, 9).to(Device::CUDA);
  Tensor a = nan_tensor(Shape{3, 5}, Device::CUDA), b = nan_tensor(Shape{3, 5}, Device::CUDA);
  cuda::sum_mid(x, 3, 100003, 5, a);
  cuda::sum_mid(x, 3, 100003, 5, b);
  CHECK(a.to_vector() == b.to_vector());
}

TEST_CASE("reduce: broadcast_mid matches the CPU", "[cuda][reduce]") {
  uint64_t seed = 50;
  for (const Omi& s : kShapes) {
    // One thread per output element: under sanitizers the shapes up to 2e5 outputs reach every
    // branch (32-bit index, tails); the larger ones only add blocks.
    if (s.outer * s.mid * s.inner > (kSanitized ? 200000 : 5000000)) continue;
    Tensor dy = random_tensor(Shape{s.outer, s.inner}, seed++);
    compare_kernel("broadcast_mid", {dy}, {nan_tensor(Shape{s.outer * s.mid * s.inner})},
                   [s](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                     EMBER_DISPATCH("t", d, broadcast_mid, i[0], s.outer, s.mid, s.inner, 0.37f, o[0]);
                   });
  }
}

TEST_CASE("reduce: sum and mean ops with gradients", "[cuda][reduce][autograd]") {
  Tensor x = random_tensor(Shape{4, 5, 6, 7}, 3);
  compare_op("sum all", [](const std::vector<Tensor>& v) { return ops::sum(v[0]); }, {x});
  compare_op("mean all", [](const std::vector<Tensor>& v) { return ops::mean(v[0]); }, {x});
  compare_op("sum dims 0,2", [](const std::vector<Tensor>& v) { return ops::sum(v[0], {0, 2}); }, {x});
  compare_op("mean dims 1,3 keepdim", [](const std::vector<Tensor>& v) { return ops::mean(v[0], {1, 3}, true); }, {x});
  compare_op("mean dim -1", [](const std::vector<Tensor>& v) { return ops::mean(v[0], {-1}); }, {x});
}
