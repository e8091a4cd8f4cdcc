// PyTorch parity on the CPU: every case of tests/parity/parity_cases.h (which explains the
// golden files and the tolerances). tests/cuda/test_parity.cpp runs the same cases on CUDA.
#include <catch2/catch.hpp>

#include "tests/parity/parity_cases.h"

using ember::Device;

TEST_CASE("parity: spectral-norm Linear, Conv2d, ConvTranspose2d (outputs, grads, u/v updates, eval)",
          "[parity][layers]") {
  ember::parity::sn_layers(Device::CPU);
}

TEST_CASE("parity: BatchNorm2d training and eval", "[parity][layers]") { ember::parity::batch_norm(Device::CPU); }

TEST_CASE("parity: SelfAttention, both variants", "[parity][layers]") { ember::parity::attention(Device::CPU); }

TEST_CASE("parity: whole G and D at 32x32 (SAGAN article, SAGAN ResNet, DCGAN)", "[parity][models]") {
  ember::parity::whole_models(Device::CPU);
}

TEST_CASE("parity: hinge and non-saturating losses with their gradients", "[parity][losses]") {
  ember::parity::losses(Device::CPU);
}

TEST_CASE("parity: three Adam steps of a SAGAN G/D pair", "[parity][optim]") { ember::parity::adam_steps(Device::CPU); }
