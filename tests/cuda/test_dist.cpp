// The data-parallel layer on the GPU (core/dist): SyncBatchNorm on CUDA tensors in a group of one
// against the CPU batch-norm kernel, and NCCL's backend with a one-GPU communicator (init,
// all-reduce, broadcast, barrier, teardown). Two or more GPUs: scripts/gpu_check.sh's notes and
// the README (NCCL across several ranks needs mpirun and one process per GPU).
#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/dist/backend.h"
#include "core/dist/process_group.h"
#include "core/dist/sync_batch_norm.h"
#include "core/ops.h"
#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test;

TEST_CASE("dist: sync_batch_norm on CUDA equals the CPU batch norm (group of one)", "[cuda][dist]") {
  const int64_t N = 6, C = 5, H = 3;
  Tensor x = random_tensor(Shape{N, C, H, H}, 1, -2.f, 3.f), dy = random_tensor(Shape{N, C, H, H}, 2);
  Tensor g = random_tensor(Shape{C}, 3, 0.5f, 1.5f), b = random_tensor(Shape{C}, 4);
  // CPU reference: the one-process kernel.
  Tensor xr = x.clone(), gr = g.clone(), br = b.clone();
  xr.requires_grad_(), gr.requires_grad_(), br.requires_grad_();
  Tensor rm_r = Tensor::zeros(Shape{C}), rv_r = Tensor::full(Shape{C}, 1.0f);
  Tensor yr = ops::batch_norm(xr, gr, br, rm_r, rv_r, true, 0.1f, 1e-5f);
  ops::sum(ops::mul(yr, dy)).backward();
  // CUDA, through the distributed formulas.
  auto pg = dist::ProcessGroup::single();
  Tensor xc = x.to(Device::CUDA), gc = g.to(Device::CUDA), bc = b.to(Device::CUDA);
  xc.requires_grad_(), gc.requires_grad_(), bc.requires_grad_();
  Tensor rm = Tensor::zeros(Shape{C}, Device::CUDA), rv = Tensor::full(Shape{C}, 1.0f, Device::CUDA);
  Tensor yc = dist::sync_batch_norm(*pg, xc, gc, bc, rm, rv, 0.1f, 1e-5f);
  ops::sum(ops::mul(yc, dy.to(Device::CUDA))).backward();
  CHECK(rel_err(yc.to(Device::CPU), yr) <= gpu::kFp32Tol);
  CHECK(rel_err(xc.grad().to(Device::CPU), xr.grad()) <= gpu::kFp32Tol);
  CHECK(rel_err(gc.grad().to(Device::CPU), gr.grad()) <= gpu::kFp32Tol);
  CHECK(rel_err(bc.grad().to(Device::CPU), br.grad()) <= gpu::kFp32Tol);
  CHECK(rel_err(rm.to(Device::CPU), rm_r) <= gpu::kFp32Tol);
  CHECK(rel_err(rv.to(Device::CPU), rv_r) <= gpu::kFp32Tol);
}

#ifdef EMBER_WITH_NCCL
TEST_CASE("dist: NCCL communicator of one GPU initialises, reduces, broadcasts and tears down", "[cuda][dist][nccl][library]") {
  dist::WorldInfo one;  // rank 0 of 1: the unique id needs no bootstrap
  std::unique_ptr<dist::Backend> nccl = dist::make_nccl_backend(nullptr, one);
  REQUIRE(nccl);
  CHECK(nccl->name() == "nccl");
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(3 << 20) + 5}) {
    INFO("n = " << n);
    Tensor host = random_tensor(Shape{n}, 5);
    Tensor t = host.to(Device::CUDA);
    nccl->all_reduce_sum(t.data(), n);  // the sum over one rank: the values themselves
    CHECK(t.to(Device::CPU).to_vector() == host.to_vector());
    nccl->broadcast(t.data(), n * static_cast<int64_t>(sizeof(float)), 0);
    CHECK(t.to(Device::CPU).to_vector() == host.to_vector());
  }
  nccl->barrier();
  CHECK_THROWS_WITH(dist::make_nccl_backend(nullptr, dist::WorldInfo{0, 2, 0}), Catch::Contains("bootstrap"));
  nccl.reset();  // ncclCommDestroy
}
#endif

#ifdef EMBER_WITH_NCCL
TEST_CASE("dist: NCCL all-reduce started on its own stream follows ember's stream and is waited for", "[cuda][dist][nccl][library]") {
  // The gradient buckets' path (all_reduce_sum_async): the buffer is written by a kernel queued on
  // ember's stream just before the start; the collective on the communication stream must see
  // those values (event dependency), and wait() must order ember's stream after it.
  dist::WorldInfo one;
  std::unique_ptr<dist::Backend> nccl = dist::make_nccl_backend(nullptr, one);
  for (int64_t n : {int64_t(1), int64_t(4097), int64_t(3 << 20) + 5}) {
    INFO("n = " << n);
    Tensor host = random_tensor(Shape{n}, 6);
    Tensor src = host.to(Device::CUDA);
    Tensor t = Tensor::full(Shape{n}, std::nanf(""), Device::CUDA);
    t.copy_(ops::scale(src, 2.0f));  // kernels on ember's stream
    std::unique_ptr<dist::PendingCollective> p = nccl->all_reduce_sum_async(t.data(), n);
    p->wait();
    Tensor after = ops::add_scalar(t, 1.0f);  // ember's stream, after the wait
    CHECK(p->test());
    const std::vector<float> h = host.to_vector(), got = after.to(Device::CPU).to_vector();
    bool exact = true;
    for (int64_t i = 0; i < n && exact; ++i) exact = got[i] == 2.0f * h[i] + 1.0f;
    CHECK(exact);
  }
}
#endif
