// PyTorch parity on CUDA: the cases of tests/parity/parity_cases.h (layers, whole models,
// losses, three Adam steps) with every module and input on the GPU, TF32 off so that the
// float32 tolerances apply; and a checkpoint written from CUDA tensors restored on the CPU.
#include <catch2/catch.hpp>

#include <filesystem>

#include "core/context.h"
#include "models/checkpoint.h"
#include "tests/parity/parity_cases.h"

using namespace ember;

namespace {
// Full fp32 for the duration of a test (TF32 would need looser, different tolerances).
struct NoTf32 {
  NoTf32() : prev(context().allow_tf32) { context().allow_tf32 = false; }
  ~NoTf32() { context().allow_tf32 = prev; }
  bool prev;
};
}  // namespace

TEST_CASE("cuda parity: spectral-norm layers, BatchNorm2d, SelfAttention", "[cuda][parity][cublas][cudnn][library]") {
  NoTf32 fp32;
  parity::sn_layers(Device::CUDA);
  parity::batch_norm(Device::CUDA);
  parity::attention(Device::CUDA);
}

TEST_CASE("cuda parity: whole G and D at 32x32", "[cuda][parity][cublas][cudnn][library]") {
  NoTf32 fp32;
  parity::whole_models(Device::CUDA);
}

TEST_CASE("cuda parity: losses and three Adam steps", "[cuda][parity][cublas][library]") {
  NoTf32 fp32;
  parity::losses(Device::CUDA);
  parity::adam_steps(Device::CUDA);
}

TEST_CASE("cuda: a checkpoint written from the GPU restores the same state on the CPU",
          "[cuda][checkpoint][cublas][cudnn][library]") {
  namespace fs = std::filesystem;
  models::SaganConfig c;
  c.resolution = 32, c.width = 1.0f / 16, c.z_dim = 8;
  Generator g1(5), g2(5), g3(6);
  models::SaganGenerator gpu(c, g1), cpu(c, g3), same_seed(c, g2);
  // Built from one seed on the CPU and moved: the same weights on both devices.
  gpu.to(Device::CUDA);
  REQUIRE(gpu.device() == Device::CUDA);
  gpu(randn(Shape{2, 8}, g1).to(Device::CUDA));  // advance u, v and the running statistics on the GPU
  fs::path path = fs::temp_directory_path() / "ember_cuda_G.safetensors";
  models::save_module(path.string(), gpu);
  models::load_module(path.string(), cpu);
  StateDict a = gpu.state_dict(), b = cpu.state_dict();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(a[i].second.to_vector() == b[i].second.to_vector());
  }
  CHECK(same_seed.fc->weight.to_vector() == cpu.fc->weight.to_vector());
  fs::remove(path);
}
