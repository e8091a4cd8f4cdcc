#include "examples/sagan_celeba/config.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>
#include <vector>

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
            {"deterministic", deterministic}, {"ema", ema}, {"ema_start", ema_start},
            {"frechet_every", frechet_every}, {"frechet_n", frechet_n},
            {"channels", channels}, {"sync_bn", sync_bn}, {"world_size", world_size}};
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
    get("deterministic", c.deterministic), get("ema", c.ema), get("ema_start", c.ema_start);
    get("frechet_every", c.frechet_every), get("frechet_n", c.frechet_n);
    get("channels", c.channels);
    get("sync_bn", c.sync_bn), get("world_size", c.world_size);
  } catch (const std::exception& e) {
    EMBER_FAIL("checkpoint configuration has a field of the wrong type: " << e.what());
  }
  return c;
}

namespace {

// One flag of `train` as --resume sees it: its name, whether it defines the models or the
// optimisation (then a resumed run must keep it), how to print it and how to copy it.
struct ResumeFlag {
  const char* flag;
  bool fixed;
  std::function<std::string(const TrainConfig&)> show;
  std::function<void(TrainConfig&, const TrainConfig&)> copy;
};

template <class T>
ResumeFlag flag_of(const char* flag, bool fixed, T TrainConfig::*field) {
  return {flag, fixed,
          [field](const TrainConfig& c) {
            std::ostringstream os;
            if constexpr (std::is_same_v<T, float>) {
              char buf[32];  // shortest text that reads back as the same float: "0.0004", not 0.00039999999
              auto r = std::to_chars(buf, buf + sizeof buf, c.*field);
              return std::string(buf, r.ptr);
            }
            if constexpr (std::is_same_v<T, bool>) os << (c.*field ? "on" : "off");
            else if constexpr (std::is_same_v<T, std::string>) os << '\'' << c.*field << '\'';
            else os << c.*field;
            return os.str();
          },
          [field](TrainConfig& dst, const TrainConfig& src) { dst.*field = src.*field; }};
}

const std::vector<ResumeFlag>& resume_flags() {
  static const std::vector<ResumeFlag> flags = {
      flag_of("--arch", true, &TrainConfig::arch),
      flag_of("--size", true, &TrainConfig::size),
      flag_of("--width", true, &TrainConfig::width),
      flag_of("--attention", true, &TrainConfig::attention),
      flag_of("--batch", true, &TrainConfig::batch),
      flag_of("--lr-g", true, &TrainConfig::lr_g),
      flag_of("--lr-d", true, &TrainConfig::lr_d),
      flag_of("--beta1", true, &TrainConfig::beta1),
      flag_of("--beta2", true, &TrainConfig::beta2),
      flag_of("--n-dis", true, &TrainConfig::n_dis),
      flag_of("--seed", true, &TrainConfig::seed),
      flag_of("--ema", true, &TrainConfig::ema),
      flag_of("--ema-start", true, &TrainConfig::ema_start),
      flag_of("--crop", true, &TrainConfig::crop),
      flag_of("--no-flip (random flips)", true, &TrainConfig::flip),
      flag_of("--data", false, &TrainConfig::data),
      flag_of("--workers", false, &TrainConfig::workers),
      flag_of("--steps", false, &TrainConfig::steps),
      flag_of("--sample-every", false, &TrainConfig::sample_every),
      flag_of("--checkpoint-every", false, &TrainConfig::checkpoint_every),
      flag_of("--log-every", false, &TrainConfig::log_every),
      flag_of("--frechet-every", false, &TrainConfig::frechet_every),
      flag_of("--frechet-n", false, &TrainConfig::frechet_n),
      flag_of("--device", false, &TrainConfig::device),
      flag_of("--deterministic", false, &TrainConfig::deterministic),
      flag_of("--sync-bn", false, &TrainConfig::sync_bn),
      flag_of("--no-overlap", false, &TrainConfig::grad_overlap),
      flag_of("--bucket-mb", false, &TrainConfig::bucket_mb),
  };
  return flags;
}

}  // namespace

TrainConfig merge_for_resume(const TrainConfig& ck, const TrainConfig& cl, const std::set<std::string>& given) {
  TrainConfig c = ck;  // what the checkpoint's run was; derived fields (channels) included
  std::ostringstream mismatches;
  int n_mismatch = 0;
  for (const ResumeFlag& f : resume_flags()) {
    const std::string name = std::string(f.flag).substr(0, std::string(f.flag).find(' '));
    if (!given.count(name)) continue;  // omitted: the checkpoint's value
    if (!f.fixed) {
      f.copy(c, cl);
      continue;
    }
    const std::string was = f.show(ck), now = f.show(cl);
    if (was != now) {
      mismatches << "\n  " << f.flag << ": the checkpoint has " << was << ", the command line " << now;
      ++n_mismatch;
    }
  }
  EMBER_INPUT_CHECK(n_mismatch == 0,
                    "--resume: " << n_mismatch << " flag(s) differ from the checkpoint's run, which they define:"
                                 << mismatches.str()
                                 << "\n  omit them to continue the run as it was, or start a new run in another --out");
  c.out = cl.out;
  c.resume = true;
  return c;
}

void TrainConfig::check_flags(const std::set<std::string>& given) const {
  auto finite_positive = [](float v) { return std::isfinite(v) && v > 0; };
  EMBER_INPUT_CHECK(size == 32 || size == 64 || size == 128, "--size must be 32, 64 or 128, got " << size);
  if (data.empty()) {
    EMBER_INPUT_CHECK(!given.count("--size") || size == 32,
                      "--size " << size << ": the default data (Fashion-MNIST) is 32x32 only; use --size 32, "
                                << "or --data DIR for a folder of images at 32, 64 or 128");
    EMBER_INPUT_CHECK(!given.count("--crop"), "--crop applies to a --data folder only, not to Fashion-MNIST");
  }
  EMBER_INPUT_CHECK(std::isfinite(bucket_mb) && bucket_mb > 0 && bucket_mb <= 4096,
                    "--bucket-mb must be in (0, 4096] (megabytes per gradient bucket), got " << bucket_mb);
  EMBER_INPUT_CHECK(crop >= 0, "--crop must be >= 0 (0 = the default for --size), got " << crop);
  EMBER_INPUT_CHECK(arch == "sagan" || arch == "sagan-resnet" || arch == "dcgan",
                    "--arch must be sagan, sagan-resnet or dcgan, got '" << arch << "'");
  EMBER_INPUT_CHECK(attention == "article" || attention == "official",
                    "--attention must be article or official, got '" << attention << "'");
  EMBER_INPUT_CHECK(batch >= 1, "--batch must be >= 1, got " << batch);
  EMBER_INPUT_CHECK(steps >= 1, "--steps must be >= 1, got " << steps);
  EMBER_INPUT_CHECK(n_dis >= 1, "--n-dis must be >= 1, got " << n_dis);
  EMBER_INPUT_CHECK(finite_positive(lr_g), "--lr-g must be a finite number > 0, got " << lr_g);
  EMBER_INPUT_CHECK(finite_positive(lr_d), "--lr-d must be a finite number > 0, got " << lr_d);
  // beta = 1 divides by 1 - beta^t = 0 in Adam's bias correction.
  EMBER_INPUT_CHECK(beta1 >= 0 && beta1 < 1, "--beta1 must be in [0, 1), got " << beta1);
  EMBER_INPUT_CHECK(beta2 >= 0 && beta2 < 1, "--beta2 must be in [0, 1), got " << beta2);
  EMBER_INPUT_CHECK(width == 0 || finite_positive(width), "--width must be a finite number > 0, got " << width);
  EMBER_INPUT_CHECK(ema >= 0 && ema < 1, "--ema must be in [0, 1), got " << ema);
  EMBER_INPUT_CHECK(ema_start >= 0, "--ema-start must be >= 0, got " << ema_start);
  EMBER_INPUT_CHECK(seed >= 0, "--seed must be >= 0, got " << seed);
  EMBER_INPUT_CHECK(workers >= 1, "--workers must be >= 1, got " << workers);
  // Set from mpirun, read back from checkpoints (the loader position counts its global batches).
  EMBER_INPUT_CHECK(world_size >= 1 && world_size <= (1 << 20), "world_size must be in [1, 2^20], got " << world_size);
  EMBER_INPUT_CHECK(device == "auto" || device == "cpu" || device == "cuda",
                    "--device must be cuda, cpu or auto, got '" << device << "'");
}

void TrainConfig::finalize() {
  check_flags({});
  EMBER_INPUT_CHECK(width > 0, "--width must be a finite number > 0, got " << width);
  if (crop == 0) crop = size == 128 ? 178 : size == 64 ? 160 : 0;  // 0 at 32: largest centred square
  if (sample_every <= 0) sample_every = steps;
  if (checkpoint_every <= 0) checkpoint_every = steps;
  if (log_every <= 0) log_every = 1;
  if (frechet_every < 0) frechet_every = sample_every;
}

}  // namespace sagan_example
