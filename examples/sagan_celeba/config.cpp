#include "examples/sagan_celeba/config.h"

#include <nlohmann/json.hpp>
#include <type_traits>

#include "core/error.h"
#include "models/config_json.h"

namespace sagan_example {

using nlohmann::json;

std::string TrainConfig::to_json() const {
  json j = {{"data", data},       {"out", out},
            {"size", size},       {"arch", arch},
            {"attention", attention}, {"width", width},
            {"batch", batch},
            {"steps", steps},     {"lr_g", lr_g},
            {"lr_d", lr_d},       {"beta1", beta1},
            {"beta2", beta2},     {"n_dis", n_dis},
            {"device", device},   {"seed", seed},
            {"sample_every", sample_every}, {"checkpoint_every", checkpoint_every},
            {"log_every", log_every}, {"crop", crop},
            {"flip", flip},       {"workers", workers},
            {"deterministic", deterministic}, {"ema", ema},
            {"channels", channels}};
  return j.dump();
}

TrainConfig TrainConfig::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    EMBER_FAIL("checkpoint configuration is not valid JSON: " << e.what());
  }
  TrainConfig c;
  // Numbers are read strictly (models/config_json.h): "steps": 1e20 was undefined behaviour
  // (found by tests/fuzz/model_config.cpp), 2^32 + 64 was truncated.
  auto get = [&](const char* key, auto& field) {
    using T = std::decay_t<decltype(field)>;
    if (!j.contains(key)) return;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
      field = ember::models::json_int(j, key, field, "checkpoint configuration");
    else if constexpr (std::is_floating_point_v<T>)
      field = ember::models::json_float(j, key, field, "checkpoint configuration");
    else
      j.at(key).get_to(field);
  };
  try {
    get("data", c.data), get("out", c.out), get("size", c.size), get("arch", c.arch);
    get("attention", c.attention), get("width", c.width);
    get("batch", c.batch), get("steps", c.steps), get("lr_g", c.lr_g), get("lr_d", c.lr_d);
    get("beta1", c.beta1), get("beta2", c.beta2), get("n_dis", c.n_dis), get("device", c.device);
    get("seed", c.seed), get("sample_every", c.sample_every), get("checkpoint_every", c.checkpoint_every);
    get("log_every", c.log_every), get("crop", c.crop), get("flip", c.flip), get("workers", c.workers);
    get("deterministic", c.deterministic), get("ema", c.ema), get("channels", c.channels);
  } catch (const std::exception& e) {
    EMBER_FAIL("checkpoint configuration has a field of the wrong type: " << e.what());
  }
  return c;
}

void TrainConfig::finalize() {
  EMBER_CHECK(size == 32 || size == 64 || size == 128, "--size must be 32, 64 or 128, got " << size);
  EMBER_CHECK(arch == "sagan" || arch == "sagan-resnet" || arch == "dcgan",
              "--arch must be sagan, sagan-resnet or dcgan, got '" << arch << "'");
  EMBER_CHECK(attention == "article" || attention == "official",
              "--attention must be article or official, got '" << attention << "'");
  EMBER_CHECK(batch >= 1, "--batch must be >= 1, got " << batch);
  EMBER_CHECK(steps >= 1, "--steps must be >= 1, got " << steps);
  EMBER_CHECK(n_dis >= 1, "--n-dis must be >= 1, got " << n_dis);
  EMBER_CHECK(lr_g > 0 && lr_d > 0, "learning rates must be positive");
  EMBER_CHECK(width > 0, "--width must be positive, got " << width);
  EMBER_CHECK(ema >= 0 && ema < 1, "--ema must be in [0, 1), got " << ema);
  if (crop == 0) crop = size == 128 ? 178 : size == 64 ? 160 : 0;  // 0 at 32: largest centred square
  if (sample_every <= 0) sample_every = steps;
  if (checkpoint_every <= 0) checkpoint_every = steps;
  if (log_every <= 0) log_every = 1;
}

}  // namespace sagan_example
