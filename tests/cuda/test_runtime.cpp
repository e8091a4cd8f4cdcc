// The CUDA runtime: device probe, caching allocator (reuse, statistics, a training step that
// makes no cudaMalloc the second time, out of memory), copies, error messages of the check
// macros, cross-device errors and the sync-debug mode.
#include <cstdlib>
#include <memory>

#include "core/cuda/check.cuh"
#include "tests/cuda/compare.h"

using namespace ember;
using namespace ember::test;
using namespace ember::test::gpu;

namespace {
// EMBER_CUDA_NO_CACHE=1 (for compute-sanitizer) turns the cache off: reuse cannot be tested then.
bool caching_off() {
  const char* e = std::getenv("EMBER_CUDA_NO_CACHE");
  return e && e[0] == '1';
}
}  // namespace

TEST_CASE("runtime: a usable device is reported with no reason", "[cuda][runtime]") {
  CHECK(cuda_available());
  CHECK(cuda_unavailable_reason().empty());
  CHECK(default_device() == Device::CUDA);
  CHECK(parse_device("cuda") == Device::CUDA);
}

TEST_CASE("runtime: freed blocks are reused without cudaMalloc", "[cuda][runtime][allocator]") {
  if (caching_off()) return;
  cuda_rt::synchronize();
  { Tensor warm = Tensor::empty(Shape{1000, 1000}, Device::CUDA); }  // ~4 MB, now cached
  const cuda_rt::AllocatorStats s0 = cuda_rt::allocator_stats();
  for (int i = 0; i < 5; ++i) {
    Tensor a = Tensor::empty(Shape{1000, 1000}, Device::CUDA);
    Tensor b = Tensor::empty(Shape{999, 1001}, Device::CUDA);  // a nearby size: same 2 MiB bucket
    (void)a;
    (void)b;
  }
  const cuda_rt::AllocatorStats s1 = cuda_rt::allocator_stats();
  CHECK(s1.device_allocs - s0.device_allocs <= 1);  // b's block, once
  CHECK(s1.in_use == s0.in_use);
  CHECK(s1.peak_in_use >= s0.in_use + 2 * 4000000);
  {
    Tensor held = Tensor::empty(Shape{123457}, Device::CUDA);
    CHECK(cuda_rt::allocator_stats().in_use >= s0.in_use + 123457 * 4);
  }
  cuda_rt::empty_cache();
  const cuda_rt::AllocatorStats s2 = cuda_rt::allocator_stats();
  CHECK(s2.cached == 0);
  CHECK(s2.device_frees > s1.device_frees);
  CHECK(cuda_rt::allocator_summary().find("cudaMalloc") != std::string::npos);
}

TEST_CASE("runtime: a repeated training step makes no cudaMalloc",
          "[cuda][runtime][allocator][cublas][cudnn][library]") {
  // conv -> batch norm -> relu -> linear -> cross-entropy, backward, Adam: every kind of
  // temporary (cuDNN workspace, reduction partials, optimiser chunk lists) is exercised.
  const Device D = Device::CUDA;
  Tensor x = random_tensor(Shape{8, 3, 16, 16}, 1).to(D);
  Tensor labels = Tensor::from_vector({0, 3, 9, 1, 2, 2, 7, 5}, Shape{8}, D);
  std::vector<Tensor> params = {random_tensor(Shape{8, 3, 3, 3}, 2, -0.3f, 0.3f).to(D),
                                random_tensor(Shape{8}, 3).to(D),
                                Tensor::full(Shape{8}, 1.f, D),
                                Tensor::zeros(Shape{8}, D),
                                random_tensor(Shape{10, 8 * 16 * 16}, 4, -0.05f, 0.05f).to(D),
                                random_tensor(Shape{10}, 5).to(D)};
  for (Tensor& p : params) p.requires_grad_(true);
  Tensor rm = Tensor::zeros(Shape{8}, D), rv = Tensor::full(Shape{8}, 1.f, D);
  std::vector<Tensor> m, v;
  for (const Tensor& p : params) {
    m.push_back(Tensor::zeros(p.shape(), D));
    v.push_back(Tensor::zeros(p.shape(), D));
  }
  int64_t step = 0;
  auto train_step = [&] {
    for (Tensor& p : params) p.zero_grad();
    Tensor h = ops::conv2d(x, params[0], params[1], 1, 1);
    h = ops::relu(ops::batch_norm(h, params[2], params[3], rm, rv, true));
    Tensor loss = ops::cross_entropy(ops::linear(h.flatten(1), params[4], params[5]), labels);
    loss.backward();
    std::vector<Tensor> grads;
    for (const Tensor& p : params) grads.push_back(p.grad());
    NoGradGuard ng;
    cuda::adam_update(params, grads, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.f, ++step);
    return loss.item();
  };
  // Step 1 is not the reference: the cuDNN workspace grows during it (each direction's
  // algorithm asks for its own size; the old block goes back to the cache mid-step), so the
  // workspace that step 2 holds from its start may occupy the size class of a step-1 temporary
  // and cost one cudaMalloc. From step 2 on the sequence of requests repeats exactly.
  const float first = train_step();
  const float second = train_step();
  if (caching_off()) return;
  const cuda_rt::AllocatorStats after_second = cuda_rt::allocator_stats();
  const float third = train_step();
  const cuda_rt::AllocatorStats after_third = cuda_rt::allocator_stats();
  INFO("allocator after step 2: " << after_second.device_allocs << " cudaMalloc, after step 3: "
                                  << after_third.device_allocs << "; " << cuda_rt::allocator_summary());
  CHECK(after_third.device_allocs == after_second.device_allocs);
  CHECK(after_third.in_use == after_second.in_use);  // nothing leaked by the step
  CHECK(std::isfinite(first));
  CHECK(std::isfinite(second));
  CHECK(std::isfinite(third));
}

TEST_CASE("runtime: an impossible allocation throws OutOfMemory naming the size", "[cuda][runtime][allocator]") {
  const int64_t n = int64_t(1) << 48;  // 2^50 bytes = 1 PiB
  CHECK_THROWS_AS(Tensor::empty(Shape{n}, Device::CUDA), OutOfMemory);
  CHECK_THROWS_WITH(Tensor::empty(Shape{n}, Device::CUDA),
                    Catch::Contains("1125899906842624 bytes") && Catch::Contains("cudaMalloc"));
  // The allocator still works afterwards.
  Tensor ok = Tensor::full(Shape{7}, 2.f, Device::CUDA);
  CHECK(ok.to_vector() == std::vector<float>(7, 2.f));
}

TEST_CASE("runtime: copies host to device to host, device to device, odd sizes", "[cuda][runtime]") {
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(1000003)}) {
    Tensor g;
    std::vector<float> expect;
    {
      // The host source dies right after the upload.
      auto src = std::make_unique<std::vector<float>>(random_tensor(Shape{n}, 5).to_vector());
      expect = *src;
      g = Tensor::from_vector(*src, Shape{n}, Device::CUDA);
    }
    Tensor c = g.clone();
    CHECK(c.to_vector() == expect);
    Tensor back = c.to(Device::CPU);
    CHECK(back.to_vector() == expect);
    Tensor other = Tensor::empty(Shape{n}, Device::CUDA);
    other.copy_(back);  // host -> device through copy_
    CHECK(other.to_vector() == expect);
  }
}

TEST_CASE("runtime: check macros name the library, the call, the status and the place", "[cuda][runtime][errors]") {
  CHECK_THROWS_WITH(EMBER_CUDA_CHECK(cudaSetDevice(9999)), Catch::Contains("CUDA error") &&
                                                               Catch::Contains("cudaSetDevice(9999)") &&
                                                               Catch::Contains("test_runtime.cpp"));
  (void)cudaGetLastError();  // the failed call must not be reported by a later check
  CHECK_THROWS_WITH(EMBER_CUBLAS_CHECK(cublasSetMathMode(nullptr, CUBLAS_DEFAULT_MATH)),
                    Catch::Contains("cuBLAS error") && Catch::Contains("cublasSetMathMode"));
  CHECK_THROWS_WITH(EMBER_CUDNN_CHECK(cudnnSetStream(nullptr, nullptr)),
                    Catch::Contains("cuDNN error") && Catch::Contains("cudnnSetStream"));
}

TEST_CASE("runtime: an op on tensors of two devices names both", "[cuda][runtime][errors]") {
  Tensor a = Tensor::full(Shape{3}, 1.f), b = Tensor::full(Shape{3}, 1.f, Device::CUDA);
  CHECK_THROWS_WITH(ops::add(a, b), Catch::Contains("add") && Catch::Contains("different devices") &&
                                        Catch::Contains("cpu") && Catch::Contains("cuda"));
  CHECK_THROWS_WITH(ops::matmul(a.reshape({1, 3}), b.reshape({3, 1})),
                    Catch::Contains("cpu") && Catch::Contains("cuda"));
  CHECK_THROWS_WITH(ops::concat({a.reshape({3, 1}), b.reshape({3, 1})}), Catch::Contains("input 1 is on cuda"));
}

TEST_CASE("runtime: sync-debug mode synchronises after every op", "[cuda][runtime]") {
  context().sync_debug = true;
  Tensor x = random_tensor(Shape{4, 5}, 3).to(Device::CUDA);
  Tensor y = ops::sum(ops::relu(x));
  context().sync_debug = false;
  CHECK(std::isfinite(y.item()));
}

TEST_CASE("runtime: concat, narrow and split copy rows on the device, with gradients", "[cuda][runtime]") {
  Tensor a = random_tensor(Shape{5, 3, 2}, 1), b = random_tensor(Shape{2, 3, 2}, 2);
  compare_op("concat", [](const std::vector<Tensor>& v) { return ops::concat({v[0], v[1], v[0]}); }, {a, b});
  compare_op("narrow", [](const std::vector<Tensor>& v) { return ops::narrow(v[0], 1, 3); }, {a});
  compare_op("split",
             [](const std::vector<Tensor>& v) {
               std::vector<Tensor> parts = ops::split(v[0], {2, 3});
               return ops::concat({parts[1], parts[0]});
             },
             {a});
}
