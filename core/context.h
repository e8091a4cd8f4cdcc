// The one context object: which devices can be used, numeric modes, and (in the CUDA build)
// the stream, library handles and workspace, which live in core/cuda/context.cu.
// There are no other globals in ember.
#pragma once
#include <cstdint>
#include <string>

#include "core/device.h"

namespace ember {

// How a CPU convolution chooses its implementation (kernels/cpu/conv_choice.h). Auto times oneDNN
// and im2col + GEMM on each shape's first call and keeps the faster: two processes may choose
// differently, so results agree to float rounding, not bitwise; force a path for bitwise repeats.
enum class CpuConv { Auto, Onednn, Im2col };

struct Context {
  // TF32 tensor cores for fp32 GEMMs and convolutions on CUDA (PyTorch's default for convs).
  // Off forces full fp32 everywhere.
  bool allow_tf32 = true;
  // Synchronise and check for errors after every CUDA op, to pinpoint asynchronous faults.
  // Also switched on by the environment variable EMBER_SYNC_DEBUG=1.
  bool sync_debug = false;
  // CPU convolution implementation; the environment variable EMBER_CONV=auto|onednn|im2col sets it.
  CpuConv cpu_conv = CpuConv::Auto;
};

Context& context();

// True when the CUDA backend is compiled in and a device is usable. Probed once.
bool cuda_available();
// Why CUDA cannot be used ("built without CUDA", "cudaGetDeviceCount: driver version ...").
std::string cuda_unavailable_reason();
// Reads "auto", "onednn" or "im2col" (EMBER_CONV's values); anything else is an error naming it.
CpuConv parse_cpu_conv(const std::string& name);

// CUDA if available, else CPU, saying so once on stderr.
Device default_device();
// Resolves a user's choice ("cuda", "cpu" or "auto"); asking for cuda without one is an error.
Device parse_device(const std::string& name);

}  // namespace ember
