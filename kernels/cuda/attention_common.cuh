// TEMPORARY glue for kernels/cuda/attention.cu until the CUDA backend's own headers
// (core/cuda/check.cuh: the CUDA check macros; core/cuda/cuda_context.cuh: the context's stream)
// land on main. Replace EMBER_ATTN_CHECK with the project's macro and attention_stream() with the
// context's stream then, and delete this file. Device code only ever sees the stream it is given.
#pragma once
#include <cuda_runtime.h>

#include "core/error.h"

// TEMPORARY: throws ember::Error naming the failed statement and CUDA's message.
#define EMBER_ATTN_CHECK(expr)                                                                     \
  do {                                                                                             \
    cudaError_t ember_attn_err_ = (expr);                                                          \
    if (ember_attn_err_ != cudaSuccess)                                                            \
      ::ember::detail::throw_error(std::string("CUDA error in ") + #expr + ": " +                 \
                                       cudaGetErrorString(ember_attn_err_),                        \
                                   __FILE__, __LINE__);                                            \
  } while (0)

namespace ember::cuda::attn_detail {
// TEMPORARY: the legacy default stream, until the context's stream exists.
inline cudaStream_t attention_stream() { return 0; }
}  // namespace ember::cuda::attn_detail
