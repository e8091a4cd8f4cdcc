// Fuzz target: the configuration JSON a checkpoint carries: the models' configs (SAGAN,
// SAGAN-ResNet, DCGAN: from_json) and sagan_celeba's TrainConfig (from_json, then finalize as
// --resume does). Each parse succeeds or throws ember::Error; an accepted model config must
// survive its own round trip (to_json then from_json gives the same text), since a checkpoint
// written from it must be loadable.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "examples/sagan_celeba/config.h"
#include "models/dcgan.h"
#include "models/sagan.h"
#include "models/sagan_resnet.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

template <class Config>
void round_trip(const std::string& text) {
  std::string saved;
  try {
    saved = Config::from_json(text).to_json();
  } catch (const ember::Error&) {
    return;
  }
  std::string again;
  try {
    again = Config::from_json(saved).to_json();
  } catch (const ember::Error& e) {
    std::fprintf(stderr, "an accepted config does not load back: %s\n", e.what());
    FUZZ_REQUIRE(false);
  }
  FUZZ_REQUIRE(again == saved);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  round_trip<ember::models::SaganConfig>(text);
  round_trip<ember::models::SaganResNetConfig>(text);
  round_trip<ember::models::DcganConfig>(text);
  try {
    sagan_example::TrainConfig c = sagan_example::TrainConfig::from_json(text);
    c.finalize();
  } catch (const ember::Error&) {
  }
  return 0;
}
