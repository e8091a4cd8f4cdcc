// Softmax over the last dimension (CPU): forward and backward against a naive double-precision
// computation, -inf and large inputs, and gradients by finite differences through ops::softmax.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/kernels.h"
#include "tests/harness.h"

using namespace ember;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Softmax of each row of length `cols`, in double, straight from the definition.
std::vector<double> softmax_ref(const std::vector<float>& x, int64_t cols) {
  std::vector<double> y(x.size());
  for (size_t r0 = 0; r0 < x.size(); r0 += cols) {
    double m = -std::numeric_limits<double>::infinity();
    for (int64_t c = 0; c < cols; ++c) m = std::max(m, static_cast<double>(x[r0 + c]));
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += std::exp(x[r0 + c] - m);
    for (int64_t c = 0; c < cols; ++c) y[r0 + c] = std::exp(x[r0 + c] - m) / s;
  }
  return y;
}

// dx = y * (dy - sum(y * dy)) per row, in double.
std::vector<double> softmax_backward_ref(const std::vector<float>& y, const std::vector<float>& dy, int64_t cols) {
  std::vector<double> dx(y.size());
  for (size_t r0 = 0; r0 < y.size(); r0 += cols) {
    double dot = 0;
    for (int64_t c = 0; c < cols; ++c) dot += static_cast<double>(y[r0 + c]) * dy[r0 + c];
    for (int64_t c = 0; c < cols; ++c) dx[r0 + c] = y[r0 + c] * (dy[r0 + c] - dot);
  }
  return dx;
}

Tensor with_values(std::vector<float> v, const Shape& s) { return Tensor::from_vector(v, s); }

}  // namespace

TEST_CASE("softmax: forward matches a double reference for awkward row lengths", "[softmax]") {
  for (int64_t cols : {1, 7, 33, 1000, 4097}) {
    for (int64_t rows : {1, 5}) {
      CAPTURE(rows, cols);
      Tensor x = test::random_tensor(Shape{rows, cols}, 100 + cols + rows, -6.f, 6.f);
      Tensor y = ops::softmax(x);
      REQUIRE(y.shape() == x.shape());
      CHECK(test::rel_err(y, softmax_ref(x.to_vector(), cols)) < 1e-6);
      // Each row sums to one.
      std::vector<float> yv = y.to_vector();
      for (int64_t r = 0; r < rows; ++r) {
        double s = 0;
        for (int64_t c = 0; c < cols; ++c) s += yv[r * cols + c];
        CHECK(s == Approx(1.0).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE("softmax: works over the last dimension of rank-1 and rank-4 tensors", "[softmax]") {
  Tensor a = test::random_tensor(Shape{11}, 7, -3.f, 3.f);
  CHECK(test::rel_err(ops::softmax(a), softmax_ref(a.to_vector(), 11)) < 1e-6);
  Tensor b = test::random_tensor(Shape{2, 3, 4, 5}, 8, -3.f, 3.f);
  CHECK(test::rel_err(ops::softmax(b), softmax_ref(b.to_vector(), 5)) < 1e-6);
}

TEST_CASE("softmax: large inputs do not overflow", "[softmax]") {
  // exp(1e4) overflows float and double alike: only the max subtraction keeps this finite.
  Tensor x = test::random_tensor(Shape{4, 300}, 21, 9000.f, 10000.f);
  Tensor y = ops::softmax(x);
  REQUIRE(test::all_finite(y));
  CHECK(test::rel_err(y, softmax_ref(x.to_vector(), 300)) < 1e-6);
  // Shifting a row leaves its softmax unchanged.
  Tensor z = ops::softmax(ops::add_scalar(x, -9500.f));
  CHECK(test::rel_err(z, y) < 1e-5);
}

TEST_CASE("softmax: -inf entries give 0, an all -inf row gives NaN", "[softmax]") {
  const int64_t cols = 37;
  std::vector<float> x = test::random_tensor(Shape{3, cols}, 31, -4.f, 4.f).to_vector();
  for (int64_t c = 0; c < cols; c += 3) x[c] = -kInf;     // row 0: every third entry masked
  x[cols + 5] = -kInf;                                     // row 1: one masked entry
  for (int64_t c = 0; c < cols; ++c) x[2 * cols + c] = -kInf;  // row 2: all masked
  Tensor y = ops::softmax(with_values(x, Shape{3, cols}));
  std::vector<float> yv = y.to_vector();
  for (int64_t c = 0; c < cols; c += 3) CHECK(yv[c] == 0.0f);
  CHECK(yv[cols + 5] == 0.0f);
  for (int64_t c = 0; c < cols; ++c) CHECK(std::isnan(yv[2 * cols + c]));
  // The first two rows match the reference (which also gives exp(-inf) = 0).
  std::vector<float> first(yv.begin(), yv.begin() + 2 * cols);
  std::vector<double> ref = softmax_ref(std::vector<float>(x.begin(), x.begin() + 2 * cols), cols);
  CHECK(test::rel_err(with_values(first, Shape{2, cols}), ref) < 1e-6);
}

TEST_CASE("softmax: a row of one element is 1", "[softmax]") {
  Tensor y = ops::softmax(with_values({-3.f, 0.f, 50.f, -kInf}, Shape{4, 1}));
  std::vector<float> yv = y.to_vector();
  CHECK(yv[0] == 1.0f);
  CHECK(yv[1] == 1.0f);
  CHECK(yv[2] == 1.0f);
  CHECK(std::isnan(yv[3]));  // a row that is all -inf, as in PyTorch
}

TEST_CASE("softmax: backward kernel matches a double reference", "[softmax]") {
  for (int64_t cols : {1, 7, 33, 1000, 4097}) {
    CAPTURE(cols);
    const int64_t rows = 3;
    Tensor y = ops::softmax(test::random_tensor(Shape{rows, cols}, 40 + cols, -5.f, 5.f));
    Tensor dy = test::random_tensor(Shape{rows, cols}, 50 + cols);
    Tensor dx = Tensor::full(Shape{rows, cols}, std::nanf(""));
    cpu::softmax_backward(y, dy, dx);
    std::vector<double> ref = softmax_backward_ref(y.to_vector(), dy.to_vector(), cols);
    if (cols == 1) {
      // The gradient of a one-element softmax is exactly 0.
      for (float g : dx.to_vector()) CHECK(g == 0.0f);
    } else {
      CHECK(test::rel_err(dx, ref) < 1e-6);
    }
  }
}

TEST_CASE("softmax: autograd gradient of sum(softmax(x) * r) matches the double formula", "[softmax]") {
  const int64_t rows = 4, cols = 19;
  Tensor x = test::random_param(Shape{rows, cols}, 61, -3.f, 3.f);
  Tensor r = test::random_tensor(Shape{rows, cols}, 62);
  ops::sum(ops::mul(ops::softmax(x), r)).backward();
  std::vector<double> y = softmax_ref(x.to_vector(), cols);
  std::vector<float> yf(y.begin(), y.end());
  CHECK(test::rel_err(x.grad(), softmax_backward_ref(yf, r.to_vector(), cols)) < 1e-5);
}

TEST_CASE("softmax: gradcheck by finite differences", "[softmax][gradcheck]") {
  auto f = [](const std::vector<Tensor>& in) { return ops::softmax(in[0]); };
  for (int64_t cols : {2, 7, 33}) {
    CAPTURE(cols);
    Tensor x = test::random_param(Shape{3, cols}, 70 + cols, -2.f, 2.f);
    CHECK(test::gradcheck(f, {x}) < 1e-2);
  }
}

TEST_CASE("softmax: a NaN or +Inf entry makes its row NaN, other rows untouched, as in PyTorch", "[softmax][nonfinite]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const int64_t cols = 37;
  std::vector<float> x = test::random_tensor(Shape{4, cols}, 41, -4.f, 4.f).to_vector();
  x[5] = nan;              // row 0: a NaN in the middle
  x[cols] = nan;           // row 1: a NaN first
  x[2 * cols + 7] = kInf;  // row 2: +Inf (inf - inf in the shifted exponent)
  Tensor in = with_values(x, Shape{4, cols});
  in.requires_grad_();
  Tensor y = ops::softmax(in);
  std::vector<float> yv = y.to_vector();
  for (int64_t c = 0; c < 3 * cols; ++c) CHECK(std::isnan(yv[c]));
  std::vector<double> ref = softmax_ref(std::vector<float>(x.begin() + 3 * cols, x.end()), cols);
  CHECK(test::rel_err(with_values(std::vector<float>(yv.begin() + 3 * cols, yv.end()), Shape{1, cols}), ref) < 1e-6);
  // Backward: the NaN rows' gradients are NaN, the clean row's stay finite.
  ops::sum(y).backward();
  std::vector<float> g = in.grad().to_vector();
  CHECK(std::isnan(g[0]));
  CHECK(std::isnan(g[cols + 1]));
  for (int64_t c = 3 * cols; c < 4 * cols; ++c) CHECK(std::isfinite(g[c]));
}
