// CUDA event pairs for the op profiler (core/profile.h), behind a plain C++ interface so that the
// profiler itself compiles without CUDA headers. A mark is a slot holding a start and a stop event
// recorded on ember's stream; slots are reused once read.
#pragma once

namespace ember::cuda_rt {

int profile_start();                 // records the start event of a free slot; returns the slot
void profile_stop(int mark);         // records its stop event
float profile_elapsed_ms(int mark);  // waits for the stop event, returns the time, frees the slot

}  // namespace ember::cuda_rt
