// Between the executor (emu.cpp) and the launch/runtime side (launch.cpp): one block's run.
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <string>

namespace ember::emu {

Block* new_block();
void delete_block(Block* b);
void setup_block(Block& b, uint3 bid, dim3 bdim, dim3 gdim, size_t dyn_bytes, const char* kernel);
// Runs every thread of the block to completion; block_error() is empty when all went well.
void run_block(Block& b, const std::function<void()>& body);
const std::string& block_error(const Block& b);

// The sticky-free "last error" of the runtime, with the emulator's explanation of it.
void set_last_error(cudaError_t e, const std::string& detail);

}  // namespace ember::emu
