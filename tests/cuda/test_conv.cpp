// CUDA convolution (cuDNN) against the CPU: the three kernels over the shapes the CPU tests
// use (odd sizes, strides, paddings, 1x1, rectangular, whole-input kernels), fp32 and TF32;
// conv2d / conv_transpose2d values and gradients through the ops.
#include "tests/cuda/compare.h"
#include "tests/reference.h"

using namespace ember;
using namespace ember::test;
using namespace ember::test::gpu;

namespace {

using Case = ref::ConvShape;
// {N, Ci, H, W, Co, KH, KW, stride, pad}
const Case kCases[] = {
    {3, 5, 7, 9, 7, 3, 3, 1, 1},     {3, 7, 5, 6, 11, 1, 1, 1, 0},    {2, 3, 7, 7, 5, 1, 1, 2, 0},
    {1, 3, 9, 11, 5, 3, 3, 2, 1},    {3, 3, 8, 8, 13, 4, 4, 2, 1},    {1, 2, 6, 5, 3, 5, 5, 1, 2},
    {2, 1, 4, 4, 1, 4, 4, 1, 0},     {2, 3, 6, 7, 2, 3, 2, 1, 1},     {1, 1, 1, 1, 1, 1, 1, 1, 0},
    {8, 64, 16, 16, 32, 3, 3, 1, 1}, {4, 32, 32, 32, 64, 4, 4, 2, 1},
};

std::string describe(const Case& c, bool tf32) {
  return "N=" + std::to_string(c.N) + " Ci=" + std::to_string(c.Ci) + " H=" + std::to_string(c.H) +
         " W=" + std::to_string(c.W) + " Co=" + std::to_string(c.Co) + " K=" + std::to_string(c.KH) + "x" +
         std::to_string(c.KW) + " s=" + std::to_string(c.stride) + " p=" + std::to_string(c.pad) +
         (tf32 ? " tf32" : " fp32");
}

}  // namespace

TEST_CASE("conv: forward, backward-data and backward-filter kernels, fp32 and TF32", "[cuda][conv][cudnn][library]") {
  uint64_t seed = 1;
  for (const Case& c : kCases)
    for (bool tf32 : {false, true}) {
      Tf32Scope scope(tf32);
      const double tol = tf32 ? kTf32Tol : kFp32Tol;
      const Shape xs{c.N, c.Ci, c.H, c.W}, ws{c.Co, c.Ci, c.KH, c.KW}, ys{c.N, c.Co, c.Ho(), c.Wo()};
      Tensor x = random_tensor(xs, seed++), w = random_tensor(ws, seed++), dy = random_tensor(ys, seed++);
      const int s = c.stride, p = c.pad;
      const std::string what = describe(c, tf32);
      compare_kernel(
          "conv2d_forward " + what, {x, w}, {nan_tensor(ys)},
          [s, p](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
            EMBER_DISPATCH("t", d, conv2d_forward, i[0], i[1], s, p, o[0]);
          },
          tol);
      compare_kernel(
          "conv2d_backward_data " + what, {dy, w}, {nan_tensor(xs)},
          [s, p](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
            EMBER_DISPATCH("t", d, conv2d_backward_data, i[0], i[1], s, p, o[0]);
          },
          tol);
      compare_kernel(
          "conv2d_backward_filter " + what, {x, dy}, {nan_tensor(ws)},
          [s, p](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
            EMBER_DISPATCH("t", d, conv2d_backward_filter, i[0], i[1], s, p, o[0]);
          },
          tol);
    }
}

TEST_CASE("conv: switching TF32 off after a TF32 run uses a full-precision algorithm", "[cuda][conv][cudnn][library]") {
  const Case c{4, 16, 12, 12, 8, 3, 3, 1, 1};
  Tensor x = random_tensor(Shape{c.N, c.Ci, c.H, c.W}, 5), w = random_tensor(Shape{c.Co, c.Ci, 3, 3}, 6);
  const Shape ys{c.N, c.Co, c.Ho(), c.Wo()};
  auto run = [](Device d, const std::vector<Tensor>& i, std::vector<Tensor>& o) {
    EMBER_DISPATCH("t", d, conv2d_forward, i[0], i[1], 1, 1, o[0]);
  };
  {
    Tf32Scope on(true);
    compare_kernel("tf32 first", {x, w}, {nan_tensor(ys)}, run, kTf32Tol);
  }
  Tf32Scope off(false);
  compare_kernel("then fp32", {x, w}, {nan_tensor(ys)}, run, kFp32Tol);
}

TEST_CASE("conv: conv2d and conv_transpose2d values and gradients through the ops",
          "[cuda][conv][autograd][cudnn][library]") {
  Tf32Scope fp32(false);
  Tensor x = random_tensor(Shape{3, 4, 9, 7}, 1), w = random_tensor(Shape{5, 4, 3, 3}, 2),
         b = random_tensor(Shape{5}, 3);
  compare_op("conv2d s1 p1", [](const std::vector<Tensor>& v) { return ops::conv2d(v[0], v[1], v[2], 1, 1); },
             {x, w, b});
  compare_op("conv2d s2 p0", [](const std::vector<Tensor>& v) { return ops::conv2d(v[0], v[1], v[2], 2, 0); },
             {x, w, b});
  // Transposed: w is [Ci, Co, K, K]; k4 s2 p1 doubles the size; k3 s2 p1 output_pad 1; k5 s3 p2 output_pad 2.
  Tensor xt = random_tensor(Shape{2, 6, 5, 4}, 4), wt4 = random_tensor(Shape{6, 3, 4, 4}, 5);
  Tensor wt3 = random_tensor(Shape{6, 3, 3, 3}, 6), wt5 = random_tensor(Shape{6, 3, 5, 5}, 7),
         bt = random_tensor(Shape{3}, 8);
  compare_op("conv_transpose2d k4 s2 p1",
             [](const std::vector<Tensor>& v) { return ops::conv_transpose2d(v[0], v[1], v[2], 2, 1); }, {xt, wt4, bt});
  compare_op("conv_transpose2d k3 s2 p1 op1",
             [](const std::vector<Tensor>& v) { return ops::conv_transpose2d(v[0], v[1], v[2], 2, 1, 1); },
             {xt, wt3, bt});
  compare_op("conv_transpose2d k5 s3 p2 op2",
             [](const std::vector<Tensor>& v) { return ops::conv_transpose2d(v[0], v[1], v[2], 3, 2, 2); },
             {xt, wt5, bt});
  Tensor x1 = random_tensor(Shape{2, 8, 1, 1}, 9), w1 = random_tensor(Shape{8, 4, 4, 4}, 10);
  compare_op("conv_transpose2d from 1x1",
             [](const std::vector<Tensor>& v) { return ops::conv_transpose2d(v[0], v[1], Tensor(), 1, 0); }, {x1, w1});
}
