// GradientReducer (core/dist/gradient_reducer.h) under `mpirun -np 2` and as a group of one:
// the buckets started from gradient-ready hooks during backward give bitwise the gradients of
// ProcessGroup::average_gradients (the after-backward path), with overlap on and off.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "core/autograd.h"
#include "core/dist/gradient_reducer.h"
#include "core/dist/process_group.h"
#include "core/ops.h"
#include "core/rng.h"
#include "tests/dist/world.h"

using namespace ember;

namespace {

// A small MLP's parameters in registration order (w1, b1, w2, b2, w3, b3), seeded alike on
// every rank as data-parallel replicas are.
std::vector<Tensor> mlp_params() {
  const std::vector<Shape> shapes{Shape{24, 16}, Shape{24}, Shape{40, 24}, Shape{40}, Shape{3, 40}, Shape{3}};
  Generator gen(5);
  std::vector<Tensor> ps;
  for (const Shape& s : shapes) {
    Tensor p = ops::scale(randn(s, gen), 0.3f);
    p.requires_grad_();
    ps.push_back(p);
  }
  return ps;
}

// One backward of the MLP on this rank's own input (rank-dependent, non-integer gradients).
void mlp_backward(const std::vector<Tensor>& p, int rank) {
  Generator gen(100 + static_cast<uint64_t>(rank));
  Tensor x = randn(Shape{8, 16}, gen);
  Tensor h = ops::tanh(ops::linear(x, p[0], p[1]));
  h = ops::tanh(ops::linear(h, p[2], p[3]));
  ops::sum(ops::mul(ops::linear(h, p[4], p[5]), ops::linear(h, p[4], p[5]))).backward();
}

std::vector<Tensor> detached_copies(const std::vector<Tensor>& ps) {
  std::vector<Tensor> out;
  for (const Tensor& p : ps) {
    Tensor c = p.clone();
    c.requires_grad_();
    if (p.grad().defined()) c.set_grad(p.grad().clone());
    out.push_back(c);
  }
  return out;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("GradientReducer buckets in reverse registration order with a small first bucket", "[dist]") {
  // Sizes (floats): w1 384, b1 24, w2 960, b2 40, w3 120, b3 3. First bucket <= 200 floats,
  // the others <= 1000: [b3 w3 b2 (163) | w2 b1 (984) | w1 (384)].
  std::vector<Tensor> ps = mlp_params();
  dist::ReducerOptions o;
  o.first_bucket_bytes = 200 * sizeof(float);
  o.bucket_bytes = 1000 * sizeof(float);
  dist::GradientReducer r(test_world(), ps, o);
  REQUIRE(r.bucket_count() == 3);
  CHECK(r.bucket_params(0) == (std::vector<size_t>{5, 4, 3}));
  CHECK(r.bucket_params(1) == (std::vector<size_t>{2, 1}));
  CHECK(r.bucket_params(2) == (std::vector<size_t>{0}));
  // A parameter larger than the cap travels alone.
  o.bucket_bytes = o.first_bucket_bytes = 100 * sizeof(float);
  dist::GradientReducer alone(test_world(), ps, o);
  REQUIRE(alone.bucket_count() == 6);
  for (int b = 0; b < 6; ++b) CHECK(alone.bucket_params(b) == std::vector<size_t>{static_cast<size_t>(5 - b)});
}

TEST_CASE("GradientReducer: overlapped buckets give bitwise the gradients of average_gradients", "[dist]") {
  dist::ProcessGroup& pg = test_world();
  for (const bool overlap : {true, false}) {
    INFO("overlap " << overlap);
    std::vector<Tensor> ps = mlp_params();
    dist::ReducerOptions o;
    o.first_bucket_bytes = 200 * sizeof(float);
    o.bucket_bytes = 1000 * sizeof(float);
    o.overlap = overlap;
    dist::GradientReducer r(pg, ps, o);
    for (int round = 0; round < 2; ++round) {  // the buffers are reused: the second round too
      INFO("round " << round);
      for (Tensor& p : ps) p.zero_grad();
      r.prepare();
      mlp_backward(ps, pg.rank() + 7 * round);
      // The reference: today's after-backward path on copies of the same local gradients.
      std::vector<Tensor> ref = detached_copies(ps);
      pg.average_gradients(ref);
      r.finish();
      for (size_t k = 0; k < ps.size(); ++k) {
        INFO("parameter " << k);
        REQUIRE(ps[k].grad().defined());
        CHECK(bitwise_equal(ps[k].grad(), ref[k].grad()));
      }
    }
    const dist::ReducerStats& st = r.stats();
    if (pg.size() == 1) {
      CHECK(st.rounds == 0);  // a group of one has nothing to do
      continue;
    }
    CHECK(st.rounds == 2);
    CHECK(st.buckets_started == 6);
    // With overlap every bucket's gradients complete inside backward, so all start there.
    CHECK(st.started_in_backward == (overlap ? 6 : 0));
  }
}

TEST_CASE("GradientReducer: a parameter without a gradient counts as zeros or stays without one", "[dist]") {
  // The after-backward rules of average_gradients, with hooks: c is used on rank 0 only (its
  // hook never fires on rank 1, whose bucket then starts in finish()), d on no rank.
  dist::ProcessGroup& pg = test_world();
  std::vector<Tensor> ps;
  for (int k = 0; k < 4; ++k) {
    Tensor p = Tensor::zeros(Shape{5});
    p.requires_grad_();
    ps.push_back(p);
  }
  const Tensor& a = ps[0], &b = ps[1], &c = ps[2];
  dist::ReducerOptions o;
  o.first_bucket_bytes = o.bucket_bytes = 8 * sizeof(float);  // one parameter per bucket
  dist::GradientReducer r(pg, ps, o);
  REQUIRE(r.bucket_count() == 4);
  r.prepare();
  const float w = static_cast<float>(pg.rank() + 1);
  Tensor x = Tensor::full(Shape{5}, w);
  Tensor loss = ops::sum(ops::add(ops::mul(a, x), ops::scale(b, 2.f * w)));  // d/da = w, d/db = 2w
  if (pg.rank() == 0) loss = ops::add(loss, ops::sum(ops::scale(c, 3.f)));   // d/dc = 3 on rank 0
  loss.backward();
  r.finish();
  const float n = static_cast<float>(pg.size());
  const float mean_w = n * (n + 1) / 2 / n;  // ranks' w = r + 1, exact in float
  CHECK(a.grad().to_vector() == std::vector<float>(5, mean_w));
  CHECK(b.grad().to_vector() == std::vector<float>(5, 2 * mean_w));
  REQUIRE(c.grad().defined());  // rank 1 had none: set from the others' mean
  CHECK(c.grad().to_vector() == std::vector<float>(5, 3.f / n));
  CHECK_FALSE(ps[3].grad().defined());
  // Outside prepare()/finish() the hooks do nothing (another module's backward).
  for (Tensor& p : ps) p.zero_grad();
  ops::sum(a).backward();
  CHECK(a.grad().to_vector() == std::vector<float>(5, 1.f));
  CHECK(r.stats().rounds == (pg.size() > 1 ? 1 : 0));
}
