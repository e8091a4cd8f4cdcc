// Fuzz target: the IDX reader (examples/common/idx.cpp) on arbitrary decompressed bytes, read as
// images and as labels; an accepted image file's first image goes through the float conversion
// (padded to 32 x 32, which refuses sizes it cannot centre). Refusals are ember::Error.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "examples/common/idx.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    const ember::data::IdxImages im = ember::data::parse_idx_images(bytes, "fuzz-input");
    FUZZ_REQUIRE(im.rows > 0 && im.cols > 0);
    FUZZ_REQUIRE(uint64_t(im.pixels.size()) == uint64_t(im.n) * uint64_t(im.rows) * uint64_t(im.cols));
    if (im.n > 0) {
      ember::data::MnistFormat fmt;
      fmt.size = 32;
      std::vector<float> out(32 * 32);
      ember::data::mnist_to_float(im.pixels.data(), im.rows, im.cols, fmt, out.data());
    }
  } catch (const ember::Error&) {
  }
  try {
    const std::vector<int32_t> labels = ember::data::parse_idx_labels(bytes, "fuzz-input");
    FUZZ_REQUIRE(labels.size() + 8 == size);
  } catch (const ember::Error&) {
  }
  return 0;
}
