// CUDA losses against the CPU: hinge (both signs), BCE with logits (hard and soft targets,
// large logits), cross-entropy (1 to 1000 classes), forward and backward, and through the ops.
#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test;
using namespace ember::test::gpu;

namespace {

// Integer class indices stored as floats.
Tensor labels(int64_t N, int64_t K, uint64_t seed) {
  std::vector<float> v = random_tensor(Shape{N}, seed, 0.f, static_cast<float>(K)).to_vector();
  for (float& x : v) x = std::min(static_cast<float>(K - 1), std::floor(x));
  return Tensor::from_vector(v, Shape{N});
}

}  // namespace

TEST_CASE("loss: hinge forward and backward for both signs", "[cuda][loss]") {
  uint64_t seed = 1;
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(4096), int64_t(100003)})
    for (float sign : {1.f, -1.f}) {
      Tensor x = random_tensor(Shape{n}, seed++, -3.f, 3.f), dl = random_tensor(Shape{1}, seed++, 0.5f, 2.f);
      compare_kernel("hinge_forward", {x}, {nan_tensor(Shape{1})},
                     [sign](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                       EMBER_DISPATCH("t", d, hinge_forward, i[0], sign, o[0]);
                     });
      compare_kernel("hinge_backward", {x, dl}, {nan_tensor(Shape{n})},
                     [sign](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                       EMBER_DISPATCH("t", d, hinge_backward, i[0], sign, i[1], o[0]);
                     });
    }
}

TEST_CASE("loss: bce with logits forward and backward, hard and soft targets", "[cuda][loss]") {
  uint64_t seed = 100;
  for (int64_t n : {int64_t(1), int64_t(9), int64_t(65537)})
    for (bool soft : {false, true}) {
      Tensor x = random_tensor(Shape{n}, seed++, -50.f, 50.f), t = random_tensor(Shape{n}, seed++, 0.f, 1.f);
      if (!soft) {
        std::vector<float> v = t.to_vector();
        for (float& a : v) a = a < 0.5f ? 0.f : 1.f;
        t = Tensor::from_vector(v, Shape{n});
      }
      Tensor dl = random_tensor(Shape{1}, seed++, 0.5f, 2.f);
      compare_kernel("bce_logits_forward", {x, t}, {nan_tensor(Shape{1})},
                     [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                       EMBER_DISPATCH("t", d, bce_logits_forward, i[0], i[1], o[0]);
                     });
      compare_kernel("bce_logits_backward", {x, t, dl}, {nan_tensor(Shape{n})},
                     [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                       EMBER_DISPATCH("t", d, bce_logits_backward, i[0], i[1], i[2], o[0]);
                     });
    }
}

TEST_CASE("loss: cross-entropy forward and backward from 1 to 1000 classes", "[cuda][loss]") {
  uint64_t seed = 200;
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {1, 5}, {7, 3}, {64, 10}, {513, 33}, {5, 1000}, {3, 40}};
  for (auto [N, K] : shapes) {
    // Large logits check the max shift.
    Tensor x = random_tensor(Shape{N, K}, seed++, -30.f, 30.f), y = labels(N, K, seed++);
    Tensor dl = random_tensor(Shape{1}, seed++, 0.5f, 2.f);
    const std::string what = "N=" + std::to_string(N) + " K=" + std::to_string(K);
    compare_kernel("cross_entropy_forward " + what, {x, y}, {nan_tensor(Shape{1})},
                   [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                     EMBER_DISPATCH("t", d, cross_entropy_forward, i[0], i[1], o[0]);
                   });
    compare_kernel("cross_entropy_backward " + what, {x, y, dl}, {nan_tensor(Shape{N, K})},
                   [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                     EMBER_DISPATCH("t", d, cross_entropy_backward, i[0], i[1], i[2], o[0]);
                   });
  }
}

TEST_CASE("loss: losses through the ops, values and gradients", "[cuda][loss][autograd]") {
  Tensor x = random_tensor(Shape{6, 5}, 1, -3.f, 3.f), t = random_tensor(Shape{6, 5}, 2, 0.f, 1.f);
  compare_op("hinge real", [](const std::vector<Tensor>& v) { return ops::hinge_loss(v[0], 1.f); }, {x});
  compare_op("hinge fake", [](const std::vector<Tensor>& v) { return ops::hinge_loss(v[0], -1.f); }, {x});
  compare_op("bce", [](const std::vector<Tensor>& v) { return ops::bce_with_logits(v[0], v[1]); }, {x, t}, kFp32Tol,
             {true, false});
  compare_op("cross_entropy", [](const std::vector<Tensor>& v) { return ops::cross_entropy(v[0], v[1]); },
             {x, labels(6, 5, 3)}, kFp32Tol, {true, false});
}

TEST_CASE("loss: NaN and +-Inf logits give the CPU's (PyTorch's) losses and gradients", "[cuda][loss][nonfinite]") {
  Tensor x = with_nonfinite(random_tensor(Shape{1000}, 71, -3.f, 3.f), 97, 5);
  for (float sign : {1.f, -1.f})
    compare_op_nonfinite("hinge sign " + std::to_string(sign),
                         [sign](const std::vector<Tensor>& i) { return ops::hinge_loss(i[0], sign); }, {x});
  // Only the NaN: a single NaN makes every loss NaN, so the gradients are compared on one.
  Tensor one_nan = random_tensor(Shape{257}, 72, -3.f, 3.f);
  std::vector<float> v = one_nan.to_vector();
  v[100] = kNaN;
  one_nan = Tensor::from_vector(v, one_nan.shape());
  compare_op_nonfinite("hinge, one NaN", [](const std::vector<Tensor>& i) { return ops::hinge_loss(i[0], 1.f); }, {one_nan});
  Tensor t = random_tensor(Shape{257}, 73, 0.f, 1.f);
  compare_op_nonfinite("bce, one NaN", [t](const std::vector<Tensor>& i) { return ops::bce_with_logits(i[0], t.to(i[0].device())); },
                       {one_nan});
  Tensor logits = with_nonfinite(random_tensor(Shape{8, 37}, 74, -3.f, 3.f), 61, 3);  // some rows hit
  std::vector<float> lab(8);
  for (int r = 0; r < 8; ++r) lab[size_t(r)] = float(r * 5 % 37);
  Tensor labels = Tensor::from_vector(lab, Shape{8});
  compare_op_nonfinite("cross_entropy",
                       [labels](const std::vector<Tensor>& i) { return ops::cross_entropy(i[0], labels.to(i[0].device())); },
                       {logits});
}
