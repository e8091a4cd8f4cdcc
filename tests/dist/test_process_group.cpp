// The communication layer (core/dist) under `mpirun -np 2` (every rank runs every test; Catch2
// failures on any rank fail the job). Without mpirun the same binary checks the group of one.
// Expected values are hand-computed: rank r contributes (r + 1) * v[i] with small integers v, so
// every float sum is exact and the comparison is for equality.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/dist/process_group.h"
#include "core/dist/sync_batch_norm.h"
#include "core/ops.h"
#include "core/rng.h"
#include "tests/dist/world.h"

using namespace ember;
using ember::dist::ReduceOp;

namespace {

float v_of(int64_t i) { return static_cast<float>(i % 97) - 40.0f; }  // small integers, some negative

Tensor rank_tensor(int64_t n, int rank) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = (rank + 1) * v_of(i);
  return Tensor::from_vector(v, Shape{n});
}

// sum over ranks r of (r + 1) = W (W + 1) / 2
float rank_factor(int world) { return world * (world + 1) / 2.0f; }

// ||a - b|| / ||b|| in double.
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(std::isfinite(a[i]));
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace

TEST_CASE("all_reduce sums and averages for sizes from 1 element to several MB", "[dist]") {
  dist::ProcessGroup& pg = test_world();
  const float f = rank_factor(pg.size());
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(1000), int64_t(65537), int64_t(3 << 20) + 5}) {
    INFO("n = " << n);
    Tensor t = rank_tensor(n, pg.rank());
    pg.all_reduce(t, ReduceOp::Sum);
    std::vector<float> got = t.to_vector();
    bool ok = true;
    for (int64_t i = 0; i < n && ok; ++i) ok = got[i] == f * v_of(i);
    CHECK(ok);
    Tensor a = rank_tensor(n, pg.rank());
    pg.all_reduce(a, ReduceOp::Average);
    got = a.to_vector();
    ok = true;
    for (int64_t i = 0; i < n && ok; ++i) ok = got[i] == f * v_of(i) / static_cast<float>(pg.size());
    CHECK(ok);
  }
  std::vector<double> d{1.0 * pg.rank(), 0.25};
  pg.all_reduce(d.data(), 2);
  CHECK(d[0] == pg.size() * (pg.size() - 1) / 2.0);
  CHECK(d[1] == 0.25 * pg.size());
}

TEST_CASE("broadcast gives every rank the root's tensor", "[dist]") {
  dist::ProcessGroup& pg = test_world();
  for (int root = 0; root < pg.size(); ++root)
    for (int64_t n : {int64_t(1), int64_t(4099), int64_t(2 << 20) + 1}) {
      INFO("root " << root << ", n = " << n);
      Tensor t = rank_tensor(n, pg.rank());
      pg.broadcast(t, root);
      CHECK(t.to_vector() == rank_tensor(n, root).to_vector());
    }
  Tensor one = Tensor::zeros(Shape{1});
  CHECK_THROWS_WITH(pg.broadcast(one, pg.size()), Catch::Contains("outside the group"));
  pg.barrier();
}

TEST_CASE("average_gradients averages in buckets that split no parameter", "[dist]") {
  dist::ProcessGroup& pg = test_world();
  // Sizes that are not multiples of the bucket (1000 floats) and one larger than it.
  const std::vector<int64_t> sizes{1, 999, 1000, 1001, 2500, 17, 333};
  std::vector<Tensor> params;
  for (int64_t n : sizes) {
    Tensor p = Tensor::zeros(Shape{n});
    p.requires_grad_();
    params.push_back(p);
  }
  for (size_t k = 0; k < params.size(); ++k) {
    if (k == 5) continue;                       // no gradient anywhere: stays undefined
    if (k == 6 && pg.rank() == 1) continue;     // missing on rank 1 only: counts as zeros there
    Tensor g = rank_tensor(sizes[k], pg.rank());
    params[k].set_grad(g);
  }
  const int buckets = pg.average_gradients(params, 1000 * sizeof(float));
  if (pg.size() > 1) CHECK(buckets >= 5);
  const float f = rank_factor(pg.size()) / pg.size();
  for (size_t k = 0; k < params.size(); ++k) {
    INFO("parameter " << k);
    if (k == 5) {
      CHECK_FALSE(params[k].grad().defined());
      continue;
    }
    REQUIRE(params[k].grad().defined());
    std::vector<float> got = params[k].grad().to_vector();
    // Parameter 6: every rank but rank 1 contributed.
    const float fk = (k == 6 && pg.size() > 1) ? (rank_factor(pg.size()) - 2.0f) / pg.size() : f;
    bool ok = true;
    for (int64_t i = 0; i < sizes[k] && ok; ++i) ok = got[i] == fk * v_of(i);
    CHECK(ok);
  }
}

TEST_CASE("broadcast_tensors and state_hash make and prove identical states", "[dist]") {
  dist::ProcessGroup& pg = test_world();
  std::vector<Tensor> ts{rank_tensor(5, pg.rank()), rank_tensor(70000, pg.rank()).reshape({7, 10000}),
                         Tensor::full(Shape{}, 1.0f + pg.rank())};
  std::vector<double> h{static_cast<double>(dist::state_hash(ts) % 1000003)};
  const double mine = h[0];
  pg.all_reduce(h.data(), 1);
  if (pg.size() > 1) CHECK(h[0] != mine * pg.size());  // different states, different hashes
  pg.broadcast_tensors(ts, 0);
  CHECK(ts[1].to_vector() == rank_tensor(70000, 0).to_vector());
  CHECK(ts[2].item() == 1.0f);
  h = {static_cast<double>(dist::state_hash(ts) % 1000003)};
  const double same = h[0];
  pg.all_reduce(h.data(), 1);
  CHECK(h[0] == same * pg.size());
}

TEST_CASE("sync_batch_norm over ranks equals batch_norm over the whole batch", "[dist]") {
  dist::ProcessGroup& pg = test_world();
  const int W = pg.size(), B = 3, C = 5, H = 4;
  // The global batch, identical on every rank; this rank's slice is rows [rank*B, (rank+1)*B).
  Generator gen(11);
  Tensor x_all = randn(Shape{W * B, C, H, H}, gen, Device::CPU, 0.7f, 2.0f);
  Tensor dy_all = randn(Shape{W * B, C, H, H}, gen);
  Tensor gamma0 = randn(Shape{C}, gen, Device::CPU, 1.0f, 0.3f), beta0 = randn(Shape{C}, gen);

  // Reference: one process, the whole batch (the tested one-process kernel).
  Tensor xr = x_all.clone(), gr = gamma0.clone(), br = beta0.clone();
  xr.requires_grad_(), gr.requires_grad_(), br.requires_grad_();
  Tensor rm_r = Tensor::zeros(Shape{C}), rv_r = Tensor::full(Shape{C}, 1.0f);
  Tensor yr = ops::batch_norm(xr, gr, br, rm_r, rv_r, true, 0.1f, 1e-5f);
  ops::sum(ops::mul(yr, dy_all)).backward();

  // This rank's slice through sync_batch_norm.
  Tensor xs = ops::narrow(x_all, pg.rank() * B, B), dys = ops::narrow(dy_all, pg.rank() * B, B);
  xs.requires_grad_();
  Tensor gs = gamma0.clone(), bs = beta0.clone();
  gs.requires_grad_(), bs.requires_grad_();
  Tensor rm = Tensor::zeros(Shape{C}), rv = Tensor::full(Shape{C}, 1.0f);
  Tensor ys = dist::sync_batch_norm(pg, xs, gs, bs, rm, rv, 0.1f, 1e-5f);
  ops::sum(ops::mul(ys, dys)).backward();
  // Parameter gradients are per-rank sums; the data-parallel rule averages them and the loss
  // here is a sum over the global batch, so the reference is their sum over ranks.
  std::vector<Tensor> grads{gs.grad(), bs.grad()};
  for (Tensor& g : grads) pg.all_reduce(g, ReduceOp::Sum);

  const double tol = 1e-5;
  CHECK(rel_err(ys.to_vector(), ops::narrow(yr, pg.rank() * B, B).to_vector()) <= tol);
  CHECK(rel_err(xs.grad().to_vector(), ops::narrow(xr.grad(), pg.rank() * B, B).to_vector()) <= tol);
  CHECK(rel_err(grads[0].to_vector(), gr.grad().to_vector()) <= tol);
  CHECK(rel_err(grads[1].to_vector(), br.grad().to_vector()) <= tol);
  CHECK(rel_err(rm.to_vector(), rm_r.to_vector()) <= tol);
  CHECK(rel_err(rv.to_vector(), rv_r.to_vector()) <= tol);
}
