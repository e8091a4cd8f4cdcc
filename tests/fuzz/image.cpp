// Fuzz target: the image path of ImageFolder (examples/common/image_folder.cpp): stb_image
// decoding behind ember's header check, then the crop / resize / CHW conversion. The input's
// size picks grey or RGB (parity), so both conversions are fuzzed. Undecodable input must be
// refused with a reason; decoded images must respect the pixel limit.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "examples/common/image_folder.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember::data;
  ImageFolderOptions opt;
  opt.size = 8;
  opt.crop = 0;
  opt.channels = size % 2 ? 1 : 3;
  DecodedImage im;
  std::string why;
  if (!decode_image(data, size, opt.channels, &im, &why)) {
    FUZZ_REQUIRE(!why.empty());
    return 0;
  }
  FUZZ_REQUIRE(im.w > 0 && im.h > 0 && int64_t(im.w) * im.h <= kMaxImagePixels && im.channels == opt.channels);
  std::vector<float> out(size_t(opt.channels) * opt.size * opt.size);
  try {
    crop_resize_to_chw(im.pixels.get(), im.w, im.h, opt, size % 3 == 0, out.data());
  } catch (const ember::Error&) {
    return 0;
  }
  for (float v : out) FUZZ_REQUIRE(v >= -1.f && v <= 1.f);
  return 0;
}
