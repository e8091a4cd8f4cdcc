// sync_batch_norm (sync_batch_norm.h), composed of dispatch-level ops: it runs on CPU and CUDA
// tensors alike. The per-channel arithmetic ([C] vectors) is done on the host in double; the
// all-reduces move them anyway.
#include "core/dist/sync_batch_norm.h"

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace ember::dist {

namespace {

std::vector<double> to_doubles(const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  return std::vector<double>(v.begin(), v.end());
}

Tensor channel_tensor(const std::vector<double>& v, Device d) {
  std::vector<float> f(v.begin(), v.end());
  return Tensor::from_vector(f, Shape{static_cast<int64_t>(f.size())}, d);
}

// t[n, c, *] = v[c] for every n and *.
Tensor broadcast_channels(const Tensor& like, const std::vector<double>& v) {
  return ops::bias_add(Tensor::zeros(like.shape(), like.device()), channel_tensor(v, like.device()));
}

}  // namespace

Tensor sync_batch_norm(ProcessGroup& pg, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                       Tensor& running_mean, Tensor& running_var, float momentum, float eps) {
  EMBER_CHECK(x.defined() && x.dim() >= 2, "sync_batch_norm: expected input [N, C, *], got "
                                               << (x.defined() ? x.shape().str() : "undefined"));
  const int64_t C = x.size(1);
  for (const Tensor* t : std::initializer_list<const Tensor*>{&gamma, &beta, &running_mean, &running_var})
    EMBER_CHECK(!t->defined() || (t->dim() == 1 && t->size(0) == C && t->device() == x.device()),
                "sync_batch_norm: per-channel tensors must be [" << C << "] on the input's device, got "
                                                                 << t->shape().str());
  EMBER_CHECK(eps > 0.0f, "sync_batch_norm: eps must be positive, got " << eps);
  std::vector<int> dims{0};
  for (int d = 2; d < x.dim(); ++d) dims.push_back(d);
  const Device dev = x.device();

  std::vector<double> mean, var(C), invstd(C);
  double M = 0;  // values per channel over all ranks
  Tensor xhat, y;
  {
    NoGradGuard ng;
    // Pass 1: global mean. The count travels with the sums (ranks may hold different batches).
    mean = to_doubles(ops::sum(x, dims));
    mean.push_back(static_cast<double>(x.numel() / std::max<int64_t>(C, 1)));
    pg.all_reduce(mean.data(), static_cast<int64_t>(mean.size()));
    M = mean.back();
    mean.pop_back();
    EMBER_CHECK(M > 1, "sync_batch_norm: training needs more than one value per channel over all ranks, got " << M);
    for (double& m : mean) m /= M;
    // Pass 2: global biased variance, about the global mean.
    std::vector<double> neg(C);
    for (int64_t c = 0; c < C; ++c) neg[c] = -mean[c];
    Tensor xc = ops::bias_add(x, channel_tensor(neg, dev));
    std::vector<double> ss = to_doubles(ops::sum(ops::mul(xc, xc), dims));
    pg.all_reduce(ss.data(), C);
    for (int64_t c = 0; c < C; ++c) {
      var[c] = ss[c] / M;
      invstd[c] = 1.0 / std::sqrt(var[c] + eps);
    }
    // xhat and y through the eval kernel with the global statistics.
    Tensor mean_t = channel_tensor(mean, dev), var_t = channel_tensor(var, dev);
    xhat = ops::batch_norm(x, Tensor(), Tensor(), mean_t, var_t, false, 0.0f, eps);
    y = ops::batch_norm(x, gamma, beta, mean_t, var_t, false, 0.0f, eps);
    // Running statistics, as the one-process kernel: unbiased variance.
    if (running_mean.defined() && running_var.defined()) {
      std::vector<double> rm = to_doubles(running_mean), rv = to_doubles(running_var);
      for (int64_t c = 0; c < C; ++c) {
        rm[c] = (1.0 - momentum) * rm[c] + momentum * mean[c];
        rv[c] = (1.0 - momentum) * rv[c] + momentum * var[c] * M / (M - 1.0);
      }
      running_mean.copy_(channel_tensor(rm, dev));
      running_var.copy_(channel_tensor(rv, dev));
    }
  }

  const std::vector<double> g = gamma.defined() ? to_doubles(gamma) : std::vector<double>(C, 1.0);
  ProcessGroup* group = &pg;
  const bool need_gamma = gamma.defined() && gamma.requires_grad();
  const bool need_beta = beta.defined() && beta.requires_grad();
  record("sync_batch_norm", y, {x, gamma, beta}, [=](const Tensor& dy) {
    NoGradGuard ng;
    std::vector<double> sums = to_doubles(ops::sum(dy, dims));          // [0, C): sum dy
    const std::vector<double> s_dyx = to_doubles(ops::sum(ops::mul(dy, xhat), dims));
    sums.insert(sums.end(), s_dyx.begin(), s_dyx.end());                // [C, 2C): sum dy * xhat
    const std::vector<double> local = sums;
    group->all_reduce(sums.data(), static_cast<int64_t>(sums.size()));
    std::vector<double> k(C), a(C), b(C);
    for (int64_t c = 0; c < C; ++c) {
      k[c] = g[c] * invstd[c];
      a[c] = -k[c] * sums[C + c] / M;
      b[c] = -k[c] * sums[c] / M;
    }
    // dx = k * dy + a * xhat + b
    Tensor dx = ops::bias_add(ops::add(ops::mul(dy, broadcast_channels(dy, k)), ops::mul(xhat, broadcast_channels(dy, a))),
                              channel_tensor(b, dev));
    Tensor dgamma = need_gamma ? channel_tensor(std::vector<double>(local.begin() + C, local.end()), dev) : Tensor();
    Tensor dbeta = need_beta ? channel_tensor(std::vector<double>(local.begin(), local.begin() + C), dev) : Tensor();
    return std::vector<Tensor>{dx, dgamma, dbeta};
  });
  return y;
}

}  // namespace ember::dist
