// The caching allocator of CPU tensors (core/host_allocator.h): blocks are reused by size class,
// the statistics add up, and a warm SAGAN training step makes no system allocation for tensors.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "core/autograd.h"
#include "core/host_allocator.h"
#include "core/rng.h"
#include "layers/optim.h"
#include "models/losses.h"
#include "models/sagan.h"
#include "tests/harness.h"

using namespace ember;

namespace {
bool caching_on() {
  const char* env = std::getenv("EMBER_CPU_NO_CACHE");
#if defined(__SANITIZE_ADDRESS__)
  return false;
#else
  return !(env && env[0] == '1');
#endif
}
}  // namespace

TEST_CASE("host allocator: a freed block is reused by the next request of its class", "[allocator]") {
  if (!caching_on()) SUCCEED("caching is off (EMBER_CPU_NO_CACHE or AddressSanitizer)");
  else {
    const host::AllocatorStats s0 = host::allocator_stats();
    void* a = host::allocate(100000);
    REQUIRE(a != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(a) % 64 == 0);
    const host::AllocatorStats s1 = host::allocator_stats();
    CHECK(s1.in_use >= s0.in_use + 100000);
    host::deallocate(a, 100000);
    const host::AllocatorStats s2 = host::allocator_stats();
    CHECK(s2.in_use == s0.in_use);
    CHECK(s2.cached >= s0.cached + 100000);
    // 99,900 bytes round to the same 512-byte class: the cached block comes back, no system call.
    void* b = host::allocate(99900);
    CHECK(b == a);
    CHECK(host::allocator_stats().system_allocs == s2.system_allocs);
    host::deallocate(b, 99900);
    // A 3 MiB request is in a 2 MiB-step class of its own.
    void* c = host::allocate(size_t(3) << 20);
    CHECK(c != a);
    host::deallocate(c, size_t(3) << 20);
    host::empty_cache();
    const host::AllocatorStats s3 = host::allocator_stats();
    CHECK(s3.cached == 0);
    CHECK(s3.system_frees >= s2.system_frees + 2);  // at least the 100,000-byte and the 3 MiB blocks
    CHECK(s3.in_use == s0.in_use);
  }
}

TEST_CASE("host allocator: a warm training step allocates no tensor memory from the system", "[allocator]") {
  if (!caching_on()) {
    SUCCEED("caching is off (EMBER_CPU_NO_CACHE or AddressSanitizer)");
    return;
  }
  // A tiny SAGAN (attention, spectral norm, batch norm, Adam), one full D + G step as the trainer.
  Generator gen(5);
  models::SaganConfig c;
  c.resolution = 32, c.width = 0.125f, c.image_channels = 1;
  models::SaganGenerator G(c, gen);
  models::SaganDiscriminator D(c, gen);
  AdamOptions og, od;
  og.lr = 1e-4f, od.lr = 4e-4f;
  Adam opt_G(G.named_parameters(), og), opt_D(D.named_parameters(), od);
  Generator rng(6);
  const int64_t B = 4;
  const Tensor real = rand_uniform(Shape{B, 1, 32, 32}, rng, Device::CPU, -1.f, 1.f);
  auto step = [&] {
    Tensor fake;
    {
      NoGradGuard no_grad;
      fake = G(randn(Shape{B, c.z_dim}, rng, Device::CPU));
    }
    models::DLogits d = models::discriminate(D, real, fake);
    Tensor loss_d = models::d_loss_hinge(d.real, d.fake);
    opt_D.zero_grad();
    loss_d.backward();
    opt_D.step();
    Tensor loss_g = models::g_loss_hinge(D(G(randn(Shape{B, c.z_dim}, rng, Device::CPU))));
    opt_G.zero_grad();
    loss_g.backward();
    opt_G.step();
    return loss_d.item() + loss_g.item();
  };
  step();
  step();  // Adam's moments appear in step 1; from step 2 on every step repeats the previous one
  const host::AllocatorStats warm = host::allocator_stats();
  for (int i = 0; i < 2; ++i) CHECK(std::isfinite(step()));
  const host::AllocatorStats after = host::allocator_stats();
  INFO(host::allocator_summary());
  CHECK(after.system_allocs == warm.system_allocs);
  CHECK(after.in_use == warm.in_use);  // nothing leaks from step to step
}
