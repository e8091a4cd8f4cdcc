// Stand-in for cuDNN in the emulated build: only the types and status calls ember's shared
// headers name. kernels/cuda/conv.cu (the one cuDNN user) is not compiled there; the
// convolutions run the CPU kernels on the host-resident buffers (tests/emulation/conv_standin.cpp).
#pragma once
enum cudnnStatus_t { CUDNN_STATUS_SUCCESS = 0, CUDNN_STATUS_ALLOC_FAILED = 2, CUDNN_STATUS_BAD_PARAM = 3, CUDNN_STATUS_NOT_SUPPORTED = 9 };
struct cudnnContext;
using cudnnHandle_t = cudnnContext*;
const char* cudnnGetErrorString(cudnnStatus_t s);
cudnnStatus_t cudnnCreate(cudnnHandle_t* h);
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, struct CUstream_st* s);
