// Spectral normalisation (CPU): sigma against the top singular value from a Jacobi
// eigen-decomposition in double, one power-iteration step (u, v, sigma, output, gradient)
// against an independent double implementation, finite-difference gradients, the dim = 1
// (ConvTranspose2d) view, eval mode, and argument errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"
#include "tests/harness.h"

using namespace ember;

namespace {

// The weight as a double matrix, built the way PyTorch does: move `dim` to the front, keep
// the other dimensions in order, flatten them into the columns.
struct Mat {
  int64_t rows = 0, cols = 0;
  std::vector<double> a;  // (rows, cols) row-major
  double at(int64_t r, int64_t c) const { return a[r * cols + c]; }
};

Mat matrix_of(const Tensor& w, int dim) {
  const std::vector<int64_t> s = w.shape().vec();
  Mat m;
  m.rows = s[dim];
  m.cols = w.numel() / m.rows;
  m.a.assign(w.numel(), 0.0);
  std::vector<float> wv = w.to_vector();
  std::vector<int64_t> idx(s.size(), 0);  // multi-index of element e
  for (int64_t e = 0; e < w.numel(); ++e) {
    int64_t col = 0;
    for (size_t d = 0; d < s.size(); ++d)
      if (static_cast<int>(d) != dim) col = col * s[d] + idx[d];
    m.a[idx[dim] * m.cols + col] = wv[e];
    for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {  // next multi-index, last dim fastest
      if (++idx[d] < s[d]) break;
      idx[d] = 0;
    }
  }
  return m;
}

double norm(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v * v;
  return std::sqrt(s);
}

std::vector<double> normalized(std::vector<double> x, double eps = 1e-12) {
  const double n = std::max(norm(x), eps);
  for (double& v : x) v /= n;
  return x;
}

// One power-iteration step in double: what u, v, sigma should become.
struct Step {
  std::vector<double> u, v;
  double sigma = 0;
};
Step power_step(const Mat& m, const std::vector<float>& u0) {
  Step s;
  std::vector<double> wtu(m.cols, 0.0), wv(m.rows, 0.0);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c) wtu[c] += m.at(r, c) * u0[r];
  s.v = normalized(wtu);
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c) wv[r] += m.at(r, c) * s.v[c];
  s.u = normalized(wv);
  for (int64_t r = 0; r < m.rows; ++r) s.sigma += s.u[r] * wv[r];
  return s;
}

// The largest singular value: the largest eigenvalue of the smaller Gram matrix, found by
// cyclic Jacobi rotations (converges for any symmetric matrix, whatever the eigenvalue gaps).
// Also returns the second one, so a test can check the power iteration had a gap to work with.
std::pair<double, double> top_singular_values(const Mat& m) {
  const bool wide = m.rows <= m.cols;
  const int64_t n = wide ? m.rows : m.cols, k = wide ? m.cols : m.rows;
  std::vector<double> g(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t t = 0; t < k; ++t)
        g[i * n + j] += wide ? m.at(i, t) * m.at(j, t) : m.at(t, i) * m.at(t, j);
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, diag = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) (i == j ? diag : off) += g[i * n + j] * g[i * n + j];
    if (off <= 1e-28 * diag) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = g[p * n + q];
        if (apq == 0) continue;
        const double theta = (g[q * n + q] - g[p * n + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t i = 0; i < n; ++i) {  // columns p, q
          const double gp = g[i * n + p], gq = g[i * n + q];
          g[i * n + p] = c * gp - s * gq;
          g[i * n + q] = s * gp + c * gq;
        }
        for (int64_t i = 0; i < n; ++i) {  // rows p, q
          const double gp = g[p * n + i], gq = g[q * n + i];
          g[p * n + i] = c * gp - s * gq;
          g[q * n + i] = s * gp + c * gq;
        }
      }
  }
  std::vector<double> ev(n);
  for (int64_t i = 0; i < n; ++i) ev[i] = std::max(0.0, g[i * n + i]);
  std::sort(ev.rbegin(), ev.rend());
  return {std::sqrt(ev[0]), n > 1 ? std::sqrt(ev[1]) : 0.0};
}

// A random unit vector, as torch.nn.utils.spectral_norm initialises u and v.
Tensor random_unit(int64_t n, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> x = randn(Shape{n}, gen).to_vector();
  std::vector<double> d = normalized(std::vector<double>(x.begin(), x.end()));
  return Tensor::from_vector(std::vector<float>(d.begin(), d.end()), Shape{n});
}

struct Case {
  Shape shape;
  int dim;
};

// The shapes every test runs: Linear, Conv2d and ConvTranspose2d weights, one row, one column.
const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {Shape{24, 40}, 0},       {Shape{16, 3, 3, 3}, 0}, {Shape{6, 10, 4, 4}, 1}, {Shape{5, 7, 3, 3}, 1},
      {Shape{1, 13}, 0},        {Shape{13, 1}, 0},       {Shape{50, 9}, 0},
  };
  return c;
}

// dw = (g - <g, W/sigma> u v^T) / sigma in the matrix view, mapped back to w's layout through
// the same index mapping as matrix_of (by transforming an index tensor).
std::vector<double> grad_ref(const Tensor& w, int dim, const Tensor& g, const std::vector<double>& u,
                             const std::vector<double>& v, double sigma) {
  std::vector<float> pos(w.numel());
  for (int64_t e = 0; e < w.numel(); ++e) pos[e] = static_cast<float>(e);
  const Mat where = matrix_of(Tensor::from_vector(pos, w.shape()), dim);  // where[r][c] = flat index
  const Mat gm = matrix_of(g, dim), wm = matrix_of(w, dim);
  double gw = 0;
  for (size_t i = 0; i < gm.a.size(); ++i) gw += gm.a[i] * wm.a[i];
  std::vector<double> dw(w.numel());
  for (int64_t r = 0; r < wm.rows; ++r)
    for (int64_t c = 0; c < wm.cols; ++c)
      dw[static_cast<int64_t>(where.at(r, c))] = (gm.at(r, c) - gw / sigma * u[r] * v[c]) / sigma;
  return dw;
}

std::vector<double> as_double(const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); }

}  // namespace

TEST_CASE("spectral_norm: sigma converges to the top singular value", "[spectral_norm]") {
  uint64_t seed = 1000;
  for (const Case& k : cases()) {
    CAPTURE(k.shape, k.dim);
    Tensor w = test::random_tensor(k.shape, ++seed);
    const Mat m = matrix_of(w, k.dim);
    const auto [s1, s2] = top_singular_values(m);
    REQUIRE(s2 < 0.99 * s1);  // a gap, so 2000 steps converge far below the tolerance
    Tensor u = random_unit(m.rows, ++seed), v = random_unit(m.cols, ++seed), sigma = Tensor::zeros(Shape{1});
    for (int it = 0; it < 2000; ++it) ops::spectral_norm(w, k.dim, u, v, sigma, /*training=*/true);
    CHECK(std::fabs(sigma.item() - s1) / s1 < 1e-4);
  }
}

TEST_CASE("spectral_norm: one training step matches an independent double implementation", "[spectral_norm]") {
  uint64_t seed = 2000;
  for (const Case& k : cases()) {
    CAPTURE(k.shape, k.dim);
    Tensor w = test::random_param(k.shape, ++seed);
    const Mat m = matrix_of(w, k.dim);
    Tensor u = random_unit(m.rows, ++seed), v = random_unit(m.cols, ++seed);
    Tensor sigma = Tensor::full(Shape{1}, std::nanf(""));
    const Step ref = power_step(m, u.to_vector());

    Tensor out = ops::spectral_norm(w, k.dim, u, v, sigma, /*training=*/true);
    CHECK(test::rel_err(u, ref.u) < 1e-6);
    CHECK(test::rel_err(v, ref.v) < 1e-6);
    CHECK(std::fabs(sigma.item() - ref.sigma) / ref.sigma < 1e-6);
    std::vector<double> out_ref = as_double(w.to_vector());
    for (double& x : out_ref) x /= ref.sigma;
    CHECK(test::rel_err(out, out_ref) < 1e-6);

    Tensor g = test::random_tensor(k.shape, ++seed);
    out.backward(g);
    CHECK(test::rel_err(w.grad(), grad_ref(w, k.dim, g, ref.u, ref.v, ref.sigma)) < 1e-5);
  }
}

TEST_CASE("spectral_norm: eval mode uses the stored u and v without changing them", "[spectral_norm]") {
  Tensor w = test::random_tensor(Shape{12, 5, 3, 3}, 3001);
  Tensor u = random_unit(12, 3002), v = random_unit(45, 3003), sigma = Tensor::zeros(Shape{1});
  for (int it = 0; it < 3; ++it) ops::spectral_norm(w, 0, u, v, sigma, true);
  std::vector<float> u0 = u.to_vector(), v0 = v.to_vector();
  Tensor out = ops::spectral_norm(w, 0, u, v, sigma, /*training=*/false);
  CHECK(u.to_vector() == u0);
  CHECK(v.to_vector() == v0);
  const Mat m = matrix_of(w, 0);
  double s = 0;
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t c = 0; c < m.cols; ++c) s += u0[r] * m.at(r, c) * v0[c];
  CHECK(std::fabs(sigma.item() - s) / s < 1e-6);
  std::vector<double> out_ref = as_double(w.to_vector());
  for (double& x : out_ref) x /= s;
  CHECK(test::rel_err(out, out_ref) < 1e-6);
}

TEST_CASE("spectral_norm: gradient by finite differences (u, v held fixed)", "[spectral_norm][gradcheck]") {
  // In eval mode u and v are constants, so w -> w / sigma(w) is a fixed function whose exact
  // derivative is what the backward computes (in training PyTorch also treats u, v as constants).
  uint64_t seed = 4000;
  for (const Case& k : {Case{Shape{6, 11}, 0}, Case{Shape{4, 5, 3, 3}, 1}, Case{Shape{8, 2, 3, 3}, 0}}) {
    CAPTURE(k.shape, k.dim);
    Tensor w = test::random_param(k.shape, ++seed);
    const Mat m = matrix_of(w, k.dim);
    Tensor u = random_unit(m.rows, ++seed), v = random_unit(m.cols, ++seed), sigma = Tensor::zeros(Shape{1});
    {
      NoGradGuard ng;
      for (int it = 0; it < 5; ++it) ops::spectral_norm(w, k.dim, u, v, sigma, true);
    }
    const int dim = k.dim;
    auto f = [&, dim](const std::vector<Tensor>& in) { return ops::spectral_norm(in[0], dim, u, v, sigma, false); };
    CHECK(test::gradcheck(f, {w}, 1e-3, 64) < 1e-2);
  }
}

TEST_CASE("spectral_norm: dim 1 equals dim 0 on the explicitly permuted weight", "[spectral_norm]") {
  const int64_t in = 4, out = 6, kk = 3;
  Tensor w = test::random_tensor(Shape{in, out, kk, kk}, 5001);  // ConvTranspose2d [in, out, kh, kw]
  std::vector<float> wv = w.to_vector(), pv(wv.size());
  for (int64_t i = 0; i < in; ++i)
    for (int64_t o = 0; o < out; ++o)
      for (int64_t s = 0; s < kk * kk; ++s) pv[(o * in + i) * kk * kk + s] = wv[(i * out + o) * kk * kk + s];
  Tensor wp = Tensor::from_vector(pv, Shape{out, in, kk, kk});
  Tensor u1 = random_unit(out, 5002), v1 = random_unit(in * kk * kk, 5003), s1 = Tensor::zeros(Shape{1});
  Tensor u2 = u1.clone(), v2 = v1.clone(), s2 = Tensor::zeros(Shape{1});
  ops::spectral_norm(w, 1, u1, v1, s1, true);
  ops::spectral_norm(wp, 0, u2, v2, s2, true);
  CHECK(test::rel_err(u1, u2) < 1e-6);
  CHECK(test::rel_err(v1, v2) < 1e-6);
  CHECK(s1.item() == Approx(s2.item()).epsilon(1e-6));
}

TEST_CASE("spectral_norm: the backward of a step uses that step's u, v, sigma", "[spectral_norm]") {
  // A discriminator runs twice (real, fake) before one backward: the second forward advances
  // u and v in place, and the first output's gradient must not see that.
  Tensor w = test::random_param(Shape{9, 14}, 6001);
  Tensor u = random_unit(9, 6002), v = random_unit(14, 6003), sigma = Tensor::zeros(Shape{1});
  const Step first = power_step(matrix_of(w, 0), u.to_vector());
  Tensor out1 = ops::spectral_norm(w, 0, u, v, sigma, true);
  Tensor out2 = ops::spectral_norm(w, 0, u, v, sigma, true);
  (void)out2;
  Tensor g = test::random_tensor(Shape{9, 14}, 6004);
  out1.backward(g);
  CHECK(test::rel_err(w.grad(), grad_ref(w, 0, g, first.u, first.v, first.sigma)) < 1e-5);
}

TEST_CASE("spectral_norm: bad arguments are reported with the shapes", "[spectral_norm]") {
  Tensor w = test::random_tensor(Shape{4, 6}, 7001);
  Tensor u = random_unit(4, 7002), v = random_unit(6, 7003), sigma = Tensor::zeros(Shape{1});
  Tensor bad_u = random_unit(5, 7004), bad_v = random_unit(4, 7005);
  CHECK_THROWS_WITH(ops::spectral_norm(w, 0, bad_u, v, sigma, true), Catch::Contains("u must be [4]"));
  CHECK_THROWS_WITH(ops::spectral_norm(w, 0, u, bad_v, sigma, true), Catch::Contains("v must be [6]"));
  CHECK_THROWS_WITH(ops::spectral_norm(w, 2, u, v, sigma, true), Catch::Contains("dim 2 out of range"));
  Tensor vec = test::random_tensor(Shape{4}, 7006);
  CHECK_THROWS_WITH(ops::spectral_norm(vec, 0, u, v, sigma, true), Catch::Contains("rank >= 2"));
}

TEST_CASE("spectral_norm: a NaN weight makes sigma and the output NaN (the eps clamp keeps it)", "[spectral_norm][nonfinite]") {
  std::vector<float> wv = test::random_tensor(Shape{6, 4}, 4001).to_vector();
  wv[5] = std::nanf("");
  Tensor w = Tensor::from_vector(wv, Shape{6, 4});
  Tensor u = random_unit(6, 4002), v = random_unit(4, 4003), sigma = Tensor::zeros(Shape{1});
  Tensor out = ops::spectral_norm(w, 0, u, v, sigma, /*training=*/true);
  CHECK(std::isnan(sigma.item()));
  CHECK(std::isnan(out.to_vector()[0]));
  CHECK(std::isnan(u.to_vector()[0]));  // u = t / max(||t||, eps): max(NaN, eps) is NaN, as clamp_min
}

namespace {
// A model's worth of spectral-normalised weights: Linear, Conv2d (dim 0), ConvTranspose2d (dim 1),
// a 1 x 1 projection and a tiny one; buffers u, v as the layers draw them.
std::vector<SnStepItem> group_items(uint64_t seed) {
  const std::vector<std::pair<Shape, int>> shapes = {{Shape{16, 40}, 0},     {Shape{8, 3, 3, 3}, 0},
                                                     {Shape{12, 6, 4, 4}, 1}, {Shape{4, 16, 1, 1}, 0},
                                                     {Shape{1, 2}, 0}};
  std::vector<SnStepItem> items;
  for (const auto& [shape, dim] : shapes) {
    SnStepItem it;
    it.w = test::random_tensor(shape, ++seed);
    it.dim = dim;
    it.u = test::random_tensor(Shape{shape[dim]}, ++seed);
    it.v = test::random_tensor(Shape{it.w.numel() / shape[dim]}, ++seed);
    it.sigma = Tensor::full(Shape{1}, std::nanf(""));
    items.push_back(it);
  }
  return items;
}

// Deep copies of the buffers, so two paths can run from the same state.
std::vector<SnStepItem> clone_buffers(const std::vector<SnStepItem>& items) {
  std::vector<SnStepItem> out = items;
  for (SnStepItem& it : out) it.u = it.u.clone(), it.v = it.v.clone(), it.sigma = it.sigma.clone();
  return out;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), [](float p, float q) {
           return std::memcmp(&p, &q, sizeof p) == 0;
         });
}
}  // namespace

TEST_CASE("spectral_norm: the grouped step equals stepping each weight alone (bitwise)", "[spectral_norm][group]") {
  std::vector<SnStepItem> group = group_items(1200), alone = clone_buffers(group);
  // Three training steps, then an eval step (which must leave u and v alone).
  for (int step = 0; step < 4; ++step) {
    const bool training = step < 3;
    CAPTURE(step);
    ops::spectral_norm_step_group(group, training);
    for (SnStepItem& it : alone) ops::spectral_norm_step(it.w, it.dim, it.u, it.v, it.sigma, training, it.eps);
    for (size_t i = 0; i < group.size(); ++i) {
      CAPTURE(i);
      CHECK(std::isfinite(group[i].sigma.item()));
      CHECK(same_bits(group[i].u, alone[i].u));
      CHECK(same_bits(group[i].v, alone[i].v));
      CHECK(same_bits(group[i].sigma, alone[i].sigma));
    }
  }
  std::vector<SnStepItem> before = clone_buffers(group);
  ops::spectral_norm_step_group(group, false);
  for (size_t i = 0; i < group.size(); ++i) CHECK((same_bits(group[i].u, before[i].u) && same_bits(group[i].v, before[i].v)));
  ops::spectral_norm_step_group({}, true);  // nothing to do
}

TEST_CASE("spectral_norm: the grouped step names the bad item", "[spectral_norm][group]") {
  std::vector<SnStepItem> items = group_items(1300);
  items[2].v = Tensor::zeros(Shape{5});
  const std::vector<SnStepItem> saved = clone_buffers(items);
  CHECK_THROWS_WITH(ops::spectral_norm_step_group(items, true),
                    Catch::Contains("item 2") && Catch::Contains("v must be [192]"));
  // Checked before anything runs: item 0 is untouched.
  CHECK(same_bits(items[0].u, saved[0].u));
  items = group_items(1300);
  items[1].eps = 0.0f;
  CHECK_THROWS_WITH(ops::spectral_norm_step_group(items, true), Catch::Contains("item 1") && Catch::Contains("eps"));
}
