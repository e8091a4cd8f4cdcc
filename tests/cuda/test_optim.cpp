// CUDA optimiser updates (one multi-tensor launch per list) against a double-precision host
// reference of PyTorch's formulas: Adam, SGD with and without momentum, EMA; tensors of odd
// sizes, several chunks, misaligned data (scalar path), and new gradient tensors every step
// (the cached chunk descriptors must be refreshed).
#include <cmath>
#include <iterator>

#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test;
using namespace ember::test::gpu;

namespace {

// 1 to 3 elements, exactly one chunk (65536), one element over, several chunks.
const int64_t kSizes[] = {1, 3, 4, 5, 65536, 65537, 200003};

std::vector<Tensor> gpu_list(uint64_t seed, float lo, float hi, bool misaligned_last = true) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < std::size(kSizes); ++i) {
    Tensor t = random_tensor(Shape{kSizes[i]}, seed + i, lo, hi);
    out.push_back(misaligned_last && i + 1 == std::size(kSizes) ? misaligned_cuda(t) : t.to(Device::CUDA));
  }
  return out;
}

std::vector<std::vector<double>> host(const std::vector<Tensor>& ts) {
  std::vector<std::vector<double>> out;
  for (const Tensor& t : ts) out.push_back(to_double(t));
  return out;
}

void check_list(const std::string& what, const std::vector<Tensor>& got, const std::vector<std::vector<double>>& ref,
                double tol) {
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = rel_err(got[i], ref[i]);
    INFO(what << " tensor " << i << " (" << got[i].numel() << " elements): error " << e);
    CHECK(e <= tol);
  }
}

// Parameter steps (new - old): the update itself, not hidden under the parameter's magnitude.
std::vector<std::vector<double>> deltas(const std::vector<std::vector<double>>& now,
                                        const std::vector<std::vector<double>>& before) {
  std::vector<std::vector<double>> d = now;
  for (size_t i = 0; i < d.size(); ++i)
    for (size_t j = 0; j < d[i].size(); ++j) d[i][j] -= before[i][j];
  return d;
}

std::vector<Tensor> minus(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(ops::sub(a[i].clone(), b[i].clone()));
  return out;
}

}  // namespace

TEST_CASE("optim: Adam over many tensors matches PyTorch's formula for several steps", "[cuda][optim]") {
  const float lr = 0.3f, b1 = 0.5f, b2 = 0.9f, eps = 1e-8f;
  for (float wd : {0.f, 0.1f}) {
    std::vector<Tensor> p = gpu_list(1, -1.f, 1.f), m = gpu_list(20, -0.1f, 0.1f), v = gpu_list(40, 0.f, 0.1f);
    auto hp = host(p), hm = host(m), hv = host(v);
    for (int64_t step = 1; step <= 3; ++step) {
      std::vector<Tensor> g = gpu_list(60 + 10 * step, -1.f, 1.f, false);  // new tensors each step
      std::vector<Tensor> before;
      for (const Tensor& t : p) before.push_back(t.clone());
      auto hg = host(g), hbefore = hp;
      const double bc1 = 1 - std::pow(double(b1), double(step)), bc2 = 1 - std::pow(double(b2), double(step));
      for (size_t t = 0; t < hp.size(); ++t)
        for (size_t i = 0; i < hp[t].size(); ++i) {
          const double gi = hg[t][i] + wd * hp[t][i];
          hm[t][i] = b1 * hm[t][i] + (1 - b1) * gi;
          hv[t][i] = b2 * hv[t][i] + (1 - b2) * gi * gi;
          hp[t][i] -= lr / bc1 * hm[t][i] / (std::sqrt(hv[t][i]) / std::sqrt(bc2) + eps);
        }
      cuda::adam_update(p, g, m, v, lr, b1, b2, eps, wd, step);
      const std::string what = "adam wd=" + std::to_string(wd) + " step " + std::to_string(step);
      check_list(what + " param step", minus(p, before), deltas(hp, hbefore), kFp32Tol);
      check_list(what + " m", m, hm, kFp32Tol);
      check_list(what + " v", v, hv, kFp32Tol);
    }
  }
}

TEST_CASE("optim: SGD with and without momentum and weight decay", "[cuda][optim]") {
  const float lr = 0.5f;
  for (float momentum : {0.f, 0.9f})
    for (float wd : {0.f, 0.05f}) {
      std::vector<Tensor> p = gpu_list(1, -1.f, 1.f), buf = gpu_list(30, -0.5f, 0.5f);
      auto hp = host(p), hb = host(buf);
      for (int step = 1; step <= 2; ++step) {
        std::vector<Tensor> g = gpu_list(100 + 10 * step, -1.f, 1.f, false);
        std::vector<Tensor> before;
        for (const Tensor& t : p) before.push_back(t.clone());
        auto hg = host(g), hbefore = hp;
        for (size_t t = 0; t < hp.size(); ++t)
          for (size_t i = 0; i < hp[t].size(); ++i) {
            double d = hg[t][i] + wd * hp[t][i];
            if (momentum != 0.f) d = hb[t][i] = momentum * hb[t][i] + d;
            hp[t][i] -= lr * d;
          }
        // Without momentum the buffers are not even passed.
        cuda::sgd_update(p, g, momentum != 0.f ? buf : std::vector<Tensor>{}, lr, momentum, wd);
        const std::string what = "sgd momentum=" + std::to_string(momentum) + " wd=" + std::to_string(wd);
        check_list(what + " param step", minus(p, before), deltas(hp, hbefore), kFp32Tol);
        check_list(what + " buffers", buf, hb, kFp32Tol);
      }
    }
}

TEST_CASE("optim: EMA of parameters", "[cuda][optim]") {
  // decay 0.6, not a realistic 0.999: the new parameter's share must be large enough to be checked.
  const float decay = 0.6f;
  std::vector<Tensor> ema = gpu_list(1, -1.f, 1.f), p = gpu_list(50, -1.f, 1.f, false);
  auto he = host(ema), hp = host(p);
  for (int step = 0; step < 2; ++step) {
    for (size_t t = 0; t < he.size(); ++t)
      for (size_t i = 0; i < he[t].size(); ++i) he[t][i] = decay * he[t][i] + (1.0 - decay) * hp[t][i];
    cuda::ema_update(ema, p, decay);
    check_list("ema", ema, he, kFp32Tol);
  }
}

TEST_CASE("optim: empty lists and empty tensors are no-ops", "[cuda][optim]") {
  cuda::adam_update({}, {}, {}, {}, 0.1f, 0.9f, 0.999f, 1e-8f, 0.f, 1);
  Tensor e = Tensor::empty(Shape{0}, Device::CUDA), p = Tensor::full(Shape{3}, 1.f, Device::CUDA);
  Tensor g = Tensor::full(Shape{3}, 1.f, Device::CUDA);
  cuda::sgd_update({e, p}, {e, g}, {}, 0.5f, 0.f, 0.f);
  for (float x : p.to_vector()) CHECK(x == 0.5f);
}
