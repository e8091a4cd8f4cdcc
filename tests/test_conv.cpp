// Convolution family: the three CPU kernels against direct double-precision formulas (no
// im2col), ops::conv2d / ops::conv_transpose2d values and gradients, and argument errors.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "kernels/kernels.h"
#include "tests/conv_cases.h"
#include "tests/harness.h"

using namespace ember;

namespace {

using Case = test::ref::ConvShape;
using test::ref::at4;
using test::describe;

// 3x3 pad 1, 1x1 (the GEMM shortcut), 1x1 stride 2 (not the shortcut), stride 2 with odd
// sizes, the SAGAN discriminator's 4x4 stride 2 pad 1, 5x5 pad 2, a kernel covering the whole
// input, a rectangular kernel, N = 1 and 3, prime channel counts; batches that the CPU kernels
// split into chunks of several images with a partial last chunk (3x3: 100 columns per image,
// chunks of 3 of 7; 1x1: 64 columns, chunks of 4 of 5).
const Case kCases[] = {
    {7, 3, 10, 10, 4, 3, 3, 1, 1}, {5, 4, 8, 8, 3, 1, 1, 1, 0}, {9, 2, 4, 4, 3, 4, 4, 2, 1},
    {3, 5, 7, 9, 7, 3, 3, 1, 1},  {3, 7, 5, 6, 11, 1, 1, 1, 0}, {2, 3, 7, 7, 5, 1, 1, 2, 0},
    {1, 3, 9, 11, 5, 3, 3, 2, 1}, {3, 3, 8, 8, 13, 4, 4, 2, 1}, {1, 2, 6, 5, 3, 5, 5, 1, 2},
    {2, 1, 4, 4, 1, 4, 4, 1, 0},  {2, 3, 6, 7, 2, 3, 2, 1, 1},  {1, 1, 1, 1, 1, 1, 1, 1, 0},
};

// Transposed convolution as a scatter: every x[n,ci,ih,iw] adds x * w[ci,co,kh,kw] to
// y[n,co,ih*s-p+kh,iw*s-p+kw]; w is [Ci, Co, K, K].
std::vector<double> ref_conv_transpose(const std::vector<float>& x, const std::vector<float>& w, int64_t N, int64_t Ci,
                                       int64_t H, int64_t W, int64_t Co, int64_t K, int s, int p, int64_t Ho,
                                       int64_t Wo) {
  std::vector<double> y(N * Co * Ho * Wo, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ci = 0; ci < Ci; ++ci)
      for (int64_t ih = 0; ih < H; ++ih)
        for (int64_t iw = 0; iw < W; ++iw)
          for (int64_t co = 0; co < Co; ++co)
            for (int64_t kh = 0; kh < K; ++kh)
              for (int64_t kw = 0; kw < K; ++kw) {
                const int64_t oy = ih * s - p + kh, ox = iw * s - p + kw;
                if (oy < 0 || oy >= Ho || ox < 0 || ox >= Wo) continue;
                y[at4(n, co, oy, ox, Co, Ho, Wo)] +=
                    static_cast<double>(x[at4(n, ci, ih, iw, Ci, H, W)]) * w[at4(ci, co, kh, kw, Co, K, K)];
              }
  return y;
}

}  // namespace

TEST_CASE("conv: the three CPU kernels match direct double-precision formulas", "[conv]") {
  uint64_t seed = 1;
  for (const Case& c : kCases) {
    INFO(describe(c));
    const test::ConvOperands in = test::random_conv_operands(c, seed);
    test::ConvResults out = test::nan_conv_results(in);
    cpu::conv2d_forward(in.x, in.w, c.stride, c.pad, out.y);
    cpu::conv2d_backward_data(in.dy, in.w, c.stride, c.pad, out.dx);
    cpu::conv2d_backward_filter(in.x, in.dy, c.stride, c.pad, out.dw);
    const test::ConvErrors e = test::conv_errors(c, in, out);
    CHECK(e.y < 1e-5);
    CHECK(e.dx < 1e-5);
    CHECK(e.dw < 1e-5);
  }
}

TEST_CASE("conv: ops::conv2d adds the bias and has correct gradients", "[conv][autograd]") {
  const Case cases[] = {{3, 2, 5, 4, 3, 3, 3, 1, 1}, {2, 3, 4, 4, 2, 1, 1, 1, 0}, {1, 2, 7, 6, 3, 4, 4, 2, 1}};
  uint64_t seed = 100;
  for (const Case& c : cases) {
    INFO(describe(c));
    Tensor x = test::random_param(Shape{c.N, c.Ci, c.H, c.W}, seed++);
    Tensor w = test::random_param(Shape{c.Co, c.Ci, c.KH, c.KW}, seed++);
    Tensor b = test::random_param(Shape{c.Co}, seed++);
    Tensor y = ops::conv2d(x, w, b, c.stride, c.pad);
    std::vector<double> ref = test::ref::conv_forward(c, x.to_vector(), w.to_vector());
    const std::vector<float> bv = b.to_vector();
    const int64_t plane = c.Ho() * c.Wo();
    for (size_t i = 0; i < ref.size(); ++i) ref[i] += bv[(i / plane) % c.Co];
    CHECK(test::rel_err(y, ref) < 1e-5);
    auto f = [s = c.stride, p = c.pad](const std::vector<Tensor>& in) {
      return ops::conv2d(in[0], in[1], in[2], s, p);
    };
    CHECK(test::gradcheck(f, {x, w, b}) < 1e-2);
  }
}

TEST_CASE("conv: ops::conv_transpose2d matches a scatter formula (DCGAN / SAGAN shapes)", "[conv]") {
  struct T {
    int64_t N, Ci, H, W, Co, K;
    int s, p, op;
  };
  // k4 s2 p1 doubles the size (the generators' upsampling); k4 s1 p0 from 1x1 is the first
  // layer; k3 s2 p1 with output_pad 1; k3 s1 p1; 1x1 (the GEMM shortcut); odd sizes.
  const T cases[] = {{3, 7, 4, 4, 5, 4, 2, 1, 0}, {2, 11, 1, 1, 3, 4, 1, 0, 0}, {1, 3, 5, 3, 2, 3, 2, 1, 1},
                     {3, 2, 5, 7, 3, 3, 1, 1, 0}, {2, 5, 3, 3, 7, 1, 1, 0, 0},  {1, 2, 3, 5, 3, 4, 2, 1, 1},
                     {2, 3, 5, 4, 2, 5, 3, 2, 2}};
  uint64_t seed = 200;
  for (const T& c : cases) {
    const int64_t Ho = (c.H - 1) * c.s - 2 * c.p + c.K + c.op, Wo = (c.W - 1) * c.s - 2 * c.p + c.K + c.op;
    INFO("N=" << c.N << " Ci=" << c.Ci << " H=" << c.H << " W=" << c.W << " Co=" << c.Co << " K=" << c.K << " s=" << c.s
              << " p=" << c.p << " output_pad=" << c.op);
    Tensor x = test::random_tensor(Shape{c.N, c.Ci, c.H, c.W}, seed++);
    Tensor w = test::random_tensor(Shape{c.Ci, c.Co, c.K, c.K}, seed++);
    Tensor y = ops::conv_transpose2d(x, w, Tensor(), c.s, c.p, c.op);
    REQUIRE(y.shape() == Shape{c.N, c.Co, Ho, Wo});
    CHECK(test::rel_err(y, ref_conv_transpose(x.to_vector(), w.to_vector(), c.N, c.Ci, c.H, c.W, c.Co, c.K, c.s, c.p,
                                              Ho, Wo)) < 1e-5);
  }
}

TEST_CASE("conv: ops::conv_transpose2d gradients of input, weight and bias", "[conv][autograd]") {
  struct T {
    int64_t N, Ci, H, W, Co, K;
    int s, p, op;
  };
  const T cases[] = {{3, 3, 3, 3, 2, 4, 2, 1, 0}, {1, 2, 3, 2, 3, 3, 2, 1, 1}, {2, 2, 1, 1, 3, 4, 1, 0, 0}};
  uint64_t seed = 300;
  for (const T& c : cases) {
    INFO("K=" << c.K << " s=" << c.s << " p=" << c.p << " output_pad=" << c.op);
    Tensor x = test::random_param(Shape{c.N, c.Ci, c.H, c.W}, seed++);
    Tensor w = test::random_param(Shape{c.Ci, c.Co, c.K, c.K}, seed++);
    Tensor b = test::random_param(Shape{c.Co}, seed++);
    auto f = [c](const std::vector<Tensor>& in) { return ops::conv_transpose2d(in[0], in[1], in[2], c.s, c.p, c.op); };
    CHECK(test::gradcheck(f, {x, w, b}) < 1e-2);
  }
}

TEST_CASE("conv: argument errors name the op, the shapes and what was expected", "[conv][errors]") {
  Tensor x = test::random_tensor(Shape{2, 3, 5, 5}, 1);
  REQUIRE_THROWS_WITH(ops::conv2d(x, test::random_tensor(Shape{4, 2, 3, 3}, 2), Tensor(), 1, 1),
                      Catch::Contains("conv2d") && Catch::Contains("[2, 3, 5, 5]") && Catch::Contains("[4, 2, 3, 3]") &&
                          Catch::Contains("channels"));
  REQUIRE_THROWS_WITH(ops::conv2d(x, test::random_tensor(Shape{4, 3, 8, 8}, 3), Tensor(), 1, 1),
                      Catch::Contains("conv2d") && Catch::Contains("larger than the padded input 7x7"));
  REQUIRE_NOTHROW(ops::conv2d(x, test::random_tensor(Shape{4, 3, 7, 7}, 3), Tensor(), 1, 1));
  REQUIRE_THROWS_WITH(
      ops::conv2d(test::random_tensor(Shape{3, 5, 5}, 4), test::random_tensor(Shape{4, 3, 3, 3}, 5), Tensor(), 1, 1),
      Catch::Contains("conv2d") && Catch::Contains("rank 4") && Catch::Contains("[3, 5, 5]"));
  REQUIRE_THROWS_WITH(ops::conv2d(x, test::random_tensor(Shape{4, 3, 3, 3}, 5), test::random_tensor(Shape{3}, 6), 1, 1),
                      Catch::Contains("conv2d: bias [3] should be [4]"));
  REQUIRE_THROWS_WITH(ops::conv2d(x, test::random_tensor(Shape{4, 3, 3, 3}, 5), Tensor(), 0, 1),
                      Catch::Contains("stride >= 1"));
  REQUIRE_THROWS_WITH(ops::conv_transpose2d(x, test::random_tensor(Shape{4, 3, 4, 4}, 7), Tensor(), 2, 1),
                      Catch::Contains("conv_transpose2d") && Catch::Contains("[2, 3, 5, 5]") &&
                          Catch::Contains("[4, 3, 4, 4]") && Catch::Contains("channels"));
  REQUIRE_THROWS_WITH(ops::conv_transpose2d(x, test::random_tensor(Shape{3, 4, 4, 4}, 7), Tensor(), 2, 1, 2),
                      Catch::Contains("conv_transpose2d: output_pad must be in [0, stride)"));
  REQUIRE_THROWS_WITH(ops::conv_transpose2d(test::random_tensor(Shape{1, 3, 1, 1}, 8),
                                            test::random_tensor(Shape{3, 4, 1, 1}, 9), Tensor(), 1, 1),
                      Catch::Contains("conv_transpose2d: output would be -1x-1"));
}

TEST_CASE("conv: a NaN input pixel spoils exactly the outputs whose window covers it", "[conv][nonfinite]") {
  std::vector<float> v(25, 1.f);
  v[0] = std::numeric_limits<float>::quiet_NaN();  // top-left corner of a 5x5 image
  Tensor x = Tensor::from_vector(v, Shape{1, 1, 5, 5});
  Tensor w = Tensor::from_vector(std::vector<float>(9, 1.f), Shape{1, 1, 3, 3}), b = Tensor::zeros(Shape{1});
  std::vector<float> y = ops::conv2d(x, w, b, 1, 0).to_vector();  // [1, 1, 3, 3]: only (0, 0) covers it
  REQUIRE(y.size() == 9);
  CHECK(std::isnan(y[0]));
  for (size_t i = 1; i < y.size(); ++i) CHECK(y[i] == 9.f);
}
