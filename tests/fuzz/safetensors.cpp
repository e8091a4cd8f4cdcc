// Fuzz target: the safetensors reader (core/safetensors.cpp) on arbitrary file bytes. Any input
// loads or is refused with ember::Error; a loaded file's every tensor converts to float32 with
// the shape its header gives.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ember::SafetensorsFile f =
        ember::load_safetensors_bytes(std::vector<unsigned char>(data, data + size), "fuzz-input");
    for (const std::string& name : f.names) {
      const ember::Tensor t = f.get(name);
      FUZZ_REQUIRE(t.shape() == f.shape_of(name));
    }
  } catch (const ember::Error&) {
    // refused with a message: the expected outcome for bad input
  }
  return 0;
}
