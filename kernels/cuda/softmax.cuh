// Host-side entry points of the softmax CUDA kernels (kernels/cuda/softmax.cu), below the
// Tensor-level ember::cuda::softmax_forward/backward: raw pointers, a row count and length,
// and a variant that may be forced. The tests and the benchmark include this header to run
// every variant of the production kernels; it compiles with a plain C++ compiler.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace ember::cuda {

enum class SoftmaxVariant {
  Auto = 0,            // what ember::cuda::softmax_* use: picked from the row length
  WarpRegisters = 1,   // a warp (or a group of lanes) per row, the row held in registers
  BlockShared = 2,     // a block per row, the row cached in shared memory
  BlockStreaming = 3,  // a block per row, two passes over global memory with an online max/sum
};

const char* softmax_variant_name(SoftmaxVariant v);

// The longest row a variant can take on the current device (forward or backward), or -1 for
// no limit. Auto and BlockStreaming take any length.
int64_t softmax_max_cols(SoftmaxVariant v, bool backward);

// The variant Auto resolves to for this row length.
SoftmaxVariant softmax_pick(int64_t cols, bool backward);

// y = softmax(x) over rows of length cols; x, y (rows, cols), device pointers. 16-byte loads
// are used when cols % 4 == 0 and every pointer is 16-byte aligned. Errors if the variant cannot
// take this row length.
void softmax_forward_launch(const float* x, float* y, int64_t rows, int64_t cols, SoftmaxVariant v,
                            cudaStream_t stream);
// dx = y * (dy - sum(y * dy)) per row; all (rows, cols).
void softmax_backward_launch(const float* y, const float* dy, float* dx, int64_t rows, int64_t cols,
                             SoftmaxVariant v, cudaStream_t stream);

}  // namespace ember::cuda
