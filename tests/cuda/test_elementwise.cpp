// CUDA elementwise family against the CPU kernels: every map at odd sizes, with aligned (float4)
// and misaligned (scalar) pointers, in place, plus gradients through the ops.
#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test;
using namespace ember::test::gpu;

namespace {

// Tails of every length mod 4, one and several blocks; the largest is 2^14 + 3 under sanitizers
// (one thread per element: more blocks reach no other branch, and cost ~50x there).
const int64_t kSizes[] = {1, 3, 4, 5, 7, 1000, 4099, kSanitized ? (1 << 14) + 3 : (1 << 18) + 3};

// Runs the map `run(in, out)` on CPU and CUDA; on CUDA also with misaligned copies of
// everything, and in place (out aliases input 0) when `in_place`.
using Map = std::function<void(Device, const std::vector<Tensor>&, Tensor&)>;
void compare_map(const std::string& name, int inputs, const Map& run, float lo = -2.f, float hi = 2.f,
                 bool in_place = true) {
  uint64_t seed = 11;
  for (int64_t n : kSizes) {
    std::vector<Tensor> in;
    for (int k = 0; k < inputs; ++k) in.push_back(random_tensor(Shape{n}, seed++, lo, hi));
    const std::string what = name + " n=" + std::to_string(n);
    Tensor ref = nan_tensor(Shape{n});
    run(Device::CPU, in, ref);

    std::vector<Tensor> gin, min;
    for (const Tensor& t : in) {
      gin.push_back(t.to(Device::CUDA));
      min.push_back(misaligned_cuda(t));
    }
    Tensor out = nan_tensor(Shape{n}, Device::CUDA);
    run(Device::CUDA, gin, out);
    check_close(what + " aligned", out, ref, kFp32Tol);
    Tensor mout = misaligned_cuda(nan_tensor(Shape{n}));
    run(Device::CUDA, min, mout);
    check_close(what + " misaligned", mout, ref, kFp32Tol);
    if (in_place && inputs > 0) {
      Tensor alias = gin[0].clone();
      std::vector<Tensor> ain = gin;
      ain[0] = alias;
      run(Device::CUDA, ain, alias);
      check_close(what + " in place", alias, ref, kFp32Tol);
    }
  }
}

}  // namespace

TEST_CASE("elementwise: add, sub, mul, axpby and scale_shift", "[cuda][elementwise]") {
  compare_map("add", 2,
              [](Device d, const std::vector<Tensor>& i, Tensor& y) { EMBER_DISPATCH("t", d, add, i[0], i[1], y); });
  compare_map("sub", 2,
              [](Device d, const std::vector<Tensor>& i, Tensor& y) { EMBER_DISPATCH("t", d, sub, i[0], i[1], y); });
  compare_map("mul", 2,
              [](Device d, const std::vector<Tensor>& i, Tensor& y) { EMBER_DISPATCH("t", d, mul, i[0], i[1], y); });
  compare_map("scale_shift", 1, [](Device d, const std::vector<Tensor>& i, Tensor& y) {
    EMBER_DISPATCH("t", d, scale_shift, i[0], -1.5f, 0.25f, y);
  });
  // axpby reads y: y starts as input 1 (copied so that the input stays intact).
  compare_map(
      "axpby", 2,
      [](Device d, const std::vector<Tensor>& i, Tensor& y) {
        y.copy_(i[1]);
        EMBER_DISPATCH("t", d, axpby, 0.75f, i[0], -2.f, y);
      },
      -2.f, 2.f, false);
  // beta == 0 must not read y (NaN there must not leak into the result).
  compare_map(
      "axpby beta=0", 1,
      [](Device d, const std::vector<Tensor>& i, Tensor& y) { EMBER_DISPATCH("t", d, axpby, 3.f, i[0], 0.f, y); }, -2.f,
      2.f, false);
}

TEST_CASE("elementwise: activations forward and backward", "[cuda][elementwise]") {
  using V = const std::vector<Tensor>&;
  compare_map("relu", 1, [](Device d, V i, Tensor& y) { EMBER_DISPATCH("t", d, relu_forward, i[0], y); });
  compare_map("relu backward", 2,
              [](Device d, V i, Tensor& y) { EMBER_DISPATCH("t", d, relu_backward, i[0], i[1], y); });
  compare_map("leaky_relu", 1,
              [](Device d, V i, Tensor& y) { EMBER_DISPATCH("t", d, leaky_relu_forward, i[0], 0.2f, y); });
  compare_map("leaky_relu backward", 2,
              [](Device d, V i, Tensor& y) { EMBER_DISPATCH("t", d, leaky_relu_backward, i[0], 0.2f, i[1], y); });
  compare_map(
      "tanh", 1, [](Device d, V i, Tensor& y) { EMBER_DISPATCH("t", d, tanh_forward, i[0], y); }, -6.f, 6.f);
  compare_map("tanh backward", 2,
              [](Device d, V i, Tensor& y) { EMBER_DISPATCH("t", d, tanh_backward, i[0], i[1], y); });
  compare_map(
      "sigmoid", 1, [](Device d, V i, Tensor& y) { EMBER_DISPATCH("t", d, sigmoid_forward, i[0], y); }, -90.f, 90.f);
  compare_map("sigmoid backward", 2,
              [](Device d, V i, Tensor& y) { EMBER_DISPATCH("t", d, sigmoid_backward, i[0], i[1], y); });
}

TEST_CASE("elementwise: bias_add and bias_grad over N,C and N,C,H,W layouts", "[cuda][elementwise]") {
  // Planes below and above the flat / per-plane switch (128), odd and multiple-of-4 planes.
  const std::vector<Shape> shapes = {Shape{1, 1},         Shape{7, 13},        Shape{5, 3, 1, 1}, Shape{2, 3, 5, 7},
                                     Shape{4, 6, 16, 16}, Shape{3, 5, 11, 13}, Shape{1, 2, 129},  Shape{64, 3, 32, 32}};
  uint64_t seed = 100;
  for (const Shape& s : shapes) {
    Tensor x = random_tensor(s, seed++), b = random_tensor(Shape{s[1]}, seed++);
    compare_kernel("bias_add " + s.str(), {x, b}, {nan_tensor(s)},
                   [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                     EMBER_DISPATCH("t", d, bias_add, i[0], i[1], o[0]);
                   });
    compare_kernel("bias_grad " + s.str(), {x}, {nan_tensor(Shape{s[1]})},
                   [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
                     EMBER_DISPATCH("t", d, bias_grad, i[0], o[0]);
                   });
  }
}

TEST_CASE("elementwise: gamma_residual forward and backward", "[cuda][elementwise]") {
  for (int64_t n : {int64_t(1), int64_t(5), int64_t(4099), int64_t(1) << 18}) {
    Tensor gamma = random_tensor(Shape{1}, 1), o = random_tensor(Shape{2, n}, 2), x = random_tensor(Shape{2, n}, 3);
    Tensor dy = random_tensor(Shape{2, n}, 4);
    compare_kernel("gamma_residual", {gamma, o, x}, {nan_tensor(x.shape())},
                   [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& out) {
                     EMBER_DISPATCH("t", d, gamma_residual_forward, i[0], i[1], i[2], out[0]);
                   });
    compare_kernel("gamma_residual backward", {gamma, o, dy}, {nan_tensor(Shape{1}), nan_tensor(o.shape())},
                   [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& out) {
                     EMBER_DISPATCH("t", d, gamma_residual_backward, i[0], i[1], i[2], out[0], out[1]);
                   });
  }
}

TEST_CASE("elementwise: gradients through the ops match the CPU", "[cuda][elementwise][autograd]") {
  Tensor a = random_tensor(Shape{3, 7, 5}, 1), b = random_tensor(Shape{3, 7, 5}, 2);
  Tensor bias = random_tensor(Shape{7}, 3), g = random_tensor(Shape{1}, 4);
  compare_op("add/sub/mul",
             [](const std::vector<Tensor>& v) { return ops::mul(ops::add(v[0], v[1]), ops::sub(v[0], v[1])); }, {a, b});
  compare_op("scale/add_scalar",
             [](const std::vector<Tensor>& v) { return ops::add_scalar(ops::scale(v[0], -3.f), 2.f); }, {a});
  compare_op("bias_add", [](const std::vector<Tensor>& v) { return ops::bias_add(v[0], v[1]); }, {a, bias});
  compare_op(
      "activations",
      [](const std::vector<Tensor>& v) { return ops::sigmoid(ops::tanh(ops::leaky_relu(ops::relu(v[0]), 0.1f))); },
      {a});
  compare_op("leaky_relu", [](const std::vector<Tensor>& v) { return ops::leaky_relu(v[0], 0.2f); }, {a});
  compare_op("gamma_residual", [](const std::vector<Tensor>& v) { return ops::gamma_residual(v[0], v[1], v[2]); },
             {g, a, b});
}

TEST_CASE("elementwise: NaN and +-Inf give the CPU's (PyTorch's) results, values and gradients", "[cuda][elementwise][nonfinite]") {
  for (int64_t n : {5, 4099}) {  // scalar tail only; float4 body and tail
    Tensor x = with_nonfinite(random_tensor(Shape{n}, 61, -2.f, 2.f), 3);
    const std::string at = " n=" + std::to_string(n);
    compare_op_nonfinite("relu" + at, [](const std::vector<Tensor>& i) { return ops::relu(i[0]); }, {x});
    compare_op_nonfinite("leaky_relu" + at, [](const std::vector<Tensor>& i) { return ops::leaky_relu(i[0], 0.2f); }, {x});
    compare_op_nonfinite("tanh" + at, [](const std::vector<Tensor>& i) { return ops::tanh(i[0]); }, {x});
    compare_op_nonfinite("sigmoid" + at, [](const std::vector<Tensor>& i) { return ops::sigmoid(i[0]); }, {x});
    Tensor y = with_nonfinite(random_tensor(Shape{n}, 62, -2.f, 2.f), 4, 1);
    compare_op_nonfinite("add" + at, [](const std::vector<Tensor>& i) { return ops::add(i[0], i[1]); }, {x, y});
    compare_op_nonfinite("mul" + at, [](const std::vector<Tensor>& i) { return ops::mul(i[0], i[1]); }, {x, y});
  }
}
