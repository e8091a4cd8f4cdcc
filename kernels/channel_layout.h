// How the per-channel kernels (bias, batch norm) of both backends see x [N, C, *]: one
// definition, so the CPU reference and the CUDA kernels agree on it by construction.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace ember {

struct ChannelLayout {
  int64_t N = 0, C = 0;
  int64_t inner = 1;                            // one (n, c) plane: H*W, or 1 for [N, C]
  int64_t count() const { return N * inner; }   // elements of one channel
};

inline ChannelLayout channel_layout(const Tensor& x) {
  ChannelLayout l{x.size(0), x.size(1), 1};
  if (l.N * l.C > 0) l.inner = x.numel() / (l.N * l.C);
  return l;
}

}  // namespace ember
