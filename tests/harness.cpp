#include "tests/harness.h"

#include <cmath>
#include <limits>

namespace ember::test {

Tensor random_tensor(const Shape& shape, uint64_t seed, float lo, float hi) {
  Generator gen(seed);
  return rand_uniform(shape, gen, Device::CPU, lo, hi);
}

Tensor random_param(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = random_tensor(shape, seed, lo, hi);
  t.requires_grad_(true);
  return t;
}

Tensor random_unit(int64_t n, uint64_t seed) {
  std::vector<float> a = random_tensor(Shape{n}, seed).to_vector();
  double ss = 0;
  for (float x : a) ss += static_cast<double>(x) * x;
  for (float& x : a) x = static_cast<float>(x / std::sqrt(ss));
  return Tensor::from_vector(a, Shape{n});
}

std::vector<double> to_double(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  return std::vector<double>(v.begin(), v.end());
}

double rel_err(const Tensor& out, const std::vector<double>& ref) {
  std::vector<float> o = out.to_vector();
  if (o.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < o.size(); ++i) {
    if (!std::isfinite(o[i])) return std::numeric_limits<double>::infinity();
    double d = o[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

double rel_err(const Tensor& out, const Tensor& ref) { return rel_err(out, to_double(ref)); }

bool all_finite(const Tensor& t) {
  for (float x : t.to_vector())
    if (!std::isfinite(x)) return false;
  return true;
}

bool same_values(const Tensor& t, const std::vector<float>& want) {
  std::vector<float> got = t.to_vector();
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i])))) return false;
  return true;
}

double gradcheck(const Fn& f, const std::vector<Tensor>& inputs, double eps, int max_coords, uint64_t seed) {
  // Projection R so that every output element matters.
  Tensor probe_out;
  {
    NoGradGuard ng;
    probe_out = f(inputs);
  }
  Tensor R = random_tensor(probe_out.shape(), seed, 0.5f, 1.5f).to(probe_out.device());
  auto loss_of = [&](const std::vector<Tensor>& ins) { return ops::sum(ops::mul(f(ins), R)); };

  for (const Tensor& t : inputs) t.impl()->grad = Tensor();
  loss_of(inputs).backward();

  Generator pick(seed + 1);
  double worst = 0;
  for (const Tensor& x : inputs) {
    Tensor g = x.grad();
    EMBER_CHECK(g.defined(), "gradcheck: no gradient reached an input of shape " << x.shape());
    std::vector<float> ga = g.to_vector();
    std::vector<float> xv = x.to_vector();
    const int64_t n = x.numel();
    std::vector<int64_t> coords;
    if (n <= max_coords) {
      for (int64_t i = 0; i < n; ++i) coords.push_back(i);
    } else {
      for (int k = 0; k < max_coords; ++k) coords.push_back(static_cast<int64_t>(pick.next_u64() % n));
    }
    double num = 0, den = 0;
    NoGradGuard ng;
    for (int64_t i : coords) {
      float orig = xv[i];
      xv[i] = static_cast<float>(orig + eps);
      x.copy_(Tensor::from_vector(xv, x.shape()));
      double lp = loss_of(inputs).item();
      xv[i] = static_cast<float>(orig - eps);
      x.copy_(Tensor::from_vector(xv, x.shape()));
      double lm = loss_of(inputs).item();
      xv[i] = orig;
      x.copy_(Tensor::from_vector(xv, x.shape()));
      double fd = (lp - lm) / (2 * eps);
      double d = ga[i] - fd;
      num += d * d;
      den += fd * fd;
    }
    double e = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    if (!(e <= worst)) worst = std::isnan(e) ? std::numeric_limits<double>::infinity() : std::max(worst, e);
  }
  return worst;
}

}  // namespace ember::test
