// CUDA pooling and upsampling against the CPU, forward and backward, including ties in max
// pooling (the gradient goes to the first maximum), and gradients through the ops.
#include <cmath>

#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test;
using namespace ember::test::gpu;

namespace {

const std::vector<Shape> kSmall = {Shape{1, 1, 1, 1}, Shape{2, 3, 3, 5}, Shape{4, 7, 16, 16}, Shape{3, 2, 33, 1},
                                   Shape{8, 16, 32, 32}};

// Values on a coarse grid so that windows contain equal maxima.
Tensor with_ties(const Shape& s, uint64_t seed) {
  std::vector<float> v = random_tensor(s, seed, -2.f, 2.f).to_vector();
  for (float& x : v) x = std::round(x * 2.f) / 2.f;
  return Tensor::from_vector(v, s);
}

}  // namespace

TEST_CASE("pool: avg and max pooling forward and backward", "[cuda][pool]") {
  uint64_t seed = 1;
  for (const Shape& small : kSmall) {
    const Shape big{small[0], small[1], 2 * small[2], 2 * small[3]};
    for (bool ties : {false, true}) {
      Tensor x = ties ? with_ties(big, seed++) : random_tensor(big, seed++);
      Tensor dy = random_tensor(small, seed++);
      const std::string what = big.str() + (ties ? " with ties" : "");
      compare_kernel("avgpool2x2_forward " + what, {x}, {nan_tensor(small)},
                     [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                       EMBER_DISPATCH("t", d, avgpool2x2_forward, i[0], o[0]);
                     });
      compare_kernel("avgpool2x2_backward " + what, {dy}, {nan_tensor(big)},
                     [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                       EMBER_DISPATCH("t", d, avgpool2x2_backward, i[0], o[0]);
                     });
      compare_kernel("maxpool2x2_forward " + what, {x}, {nan_tensor(small)},
                     [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                       EMBER_DISPATCH("t", d, maxpool2x2_forward, i[0], o[0]);
                     });
      // Exact: the gradient is routed, not computed, so ties must pick the same element.
      compare_kernel(
          "maxpool2x2_backward " + what, {x, dy}, {nan_tensor(big)},
          [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
            EMBER_DISPATCH("t", d, maxpool2x2_backward, i[0], i[1], o[0]);
          },
          0.0);
    }
  }
}

TEST_CASE("pool: upsample2x forward and backward", "[cuda][pool]") {
  uint64_t seed = 100;
  for (const Shape& small : kSmall) {
    const Shape big{small[0], small[1], 2 * small[2], 2 * small[3]};
    Tensor x = random_tensor(small, seed++), dy = random_tensor(big, seed++);
    compare_kernel(
        "upsample2x_forward " + small.str(), {x}, {nan_tensor(big)},
        [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
          EMBER_DISPATCH("t", d, upsample2x_forward, i[0], o[0]);
        },
        0.0);
    compare_kernel("upsample2x_backward " + small.str(), {dy}, {nan_tensor(small)},
                   [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                     EMBER_DISPATCH("t", d, upsample2x_backward, i[0], o[0]);
                   });
  }
}

TEST_CASE("pool: gradients through avg_pool2x2, max_pool2x2 and upsample2x", "[cuda][pool][autograd]") {
  Tensor x = random_tensor(Shape{2, 3, 6, 10}, 7);
  compare_op("avg_pool2x2", [](const std::vector<Tensor>& v) { return ops::avg_pool2x2(v[0]); }, {x});
  compare_op("max_pool2x2", [](const std::vector<Tensor>& v) { return ops::max_pool2x2(v[0]); }, {x});
  compare_op("upsample2x", [](const std::vector<Tensor>& v) { return ops::upsample2x(v[0]); }, {x});
}

TEST_CASE("pool: NaN and +-Inf in windows give the CPU's (PyTorch's) max, average and gradients", "[cuda][pool][nonfinite]") {
  Tensor x = with_nonfinite(random_tensor(Shape{2, 3, 8, 10}, 81), 7, 2);
  compare_op_nonfinite("max_pool2x2", [](const std::vector<Tensor>& i) { return ops::max_pool2x2(i[0]); }, {x});
  compare_op_nonfinite("avg_pool2x2", [](const std::vector<Tensor>& i) { return ops::avg_pool2x2(i[0]); }, {x});
  compare_op_nonfinite("upsample2x", [](const std::vector<Tensor>& i) { return ops::upsample2x(i[0]); }, {x});
}
