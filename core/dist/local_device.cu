// select_local_device (backend.h): one GPU per process of a machine, chosen by local rank.
#include <cuda_runtime.h>

#include "core/cuda/check.cuh"
#include "core/dist/backend.h"

namespace ember::dist {

int select_local_device(int local_rank) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    (void)cudaGetLastError();  // clear the sticky "no device" error: the run may be on the CPU
    return -1;
  }
  const int device = local_rank % count;
  EMBER_CUDA_CHECK(cudaSetDevice(device));
  return device;
}

}  // namespace ember::dist
