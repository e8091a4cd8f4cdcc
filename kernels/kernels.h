// Every kernel of both backends, declared once per family in kernels/<family>.inc and included
// here into ember::cpu and (in the CUDA build) ember::cuda: identical signatures by construction.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/attention_block_types.h"
#include "kernels/spectral_norm_types.h"


namespace ember::cpu {
#include "kernels/fill.inc"
#include "kernels/elementwise.inc"
#include "kernels/reduce.inc"
#include "kernels/gemm.inc"
#include "kernels/conv.inc"
#include "kernels/norm.inc"
#include "kernels/pool.inc"
#include "kernels/loss.inc"
#include "kernels/softmax.inc"
#include "kernels/attention.inc"
#include "kernels/attention_block.inc"
#include "kernels/spectral_norm.inc"
#include "kernels/optim.inc"
}  // namespace ember::cpu

#ifdef EMBER_WITH_CUDA
namespace ember::cuda {
#include "kernels/fill.inc"
#include "kernels/elementwise.inc"
#include "kernels/reduce.inc"
#include "kernels/gemm.inc"
#include "kernels/conv.inc"
#include "kernels/norm.inc"
#include "kernels/pool.inc"
#include "kernels/loss.inc"
#include "kernels/softmax.inc"
#include "kernels/attention.inc"
#include "kernels/attention_block.inc"
#include "kernels/spectral_norm.inc"
#include "kernels/optim.inc"
}  // namespace ember::cuda
#endif
