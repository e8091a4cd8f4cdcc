// Generator: a seed and a running counter over Philox blocks. Each fill consumes
// ceil(n/4) blocks, so successive draws never overlap and the state is two integers
// (saved in checkpoints for exact resume).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_state(uint64_t seed, uint64_t offset) { seed_ = seed, offset_ = offset; }
  // Reserves the blocks for n numbers and returns the first block's counter.
  uint64_t advance(int64_t n) {
    uint64_t first = offset_;
    offset_ += static_cast<uint64_t>((n + 3) / 4);
    return first;
  }
  // A 64-bit random integer from the stream (for shuffles and flips on the host).
  uint64_t next_u64();

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// Fresh tensors with numbers that are identical on CPU and CUDA for the same generator state.
Tensor randn(const Shape& shape, Generator& gen, Device device = Device::CPU, float mean = 0.f, float std = 1.f);
Tensor rand_uniform(const Shape& shape, Generator& gen, Device device = Device::CPU, float lo = 0.f, float hi = 1.f);
// In place (no autograd), for initialisers.
void normal_(Tensor& t, Generator& gen, float mean = 0.f, float std = 1.f);
void uniform_(Tensor& t, Generator& gen, float lo = 0.f, float hi = 1.f);

}  // namespace ember
