#include "examples/sagan_celeba/run.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/error.h"

namespace fs = std::filesystem;

namespace sagan_example {

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::string checkpoint_config(const TrainConfig& cfg, int64_t epoch, int64_t batch) {
  nlohmann::json j = {{"train", nlohmann::json::parse(cfg.to_json())}, {"loader_epoch", epoch}, {"loader_batch", batch}};
  return j.dump();
}

CheckpointConfig parse_checkpoint_config(const std::string& path) {
  std::string text = models::read_checkpoint_config(path);
  CheckpointConfig c;
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    c.cfg = TrainConfig::from_json(j.at("train").dump());
    c.loader_epoch = j.at("loader_epoch").get<int64_t>();
    c.loader_batch = j.at("loader_batch").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    EMBER_FAIL("checkpoint '" << path << "': its configuration is not a sagan_celeba one (" << e.what() << ")");
  }
  return c;
}

std::string newest_checkpoint(const std::string& run_dir) {
  fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "";
  static const std::regex re("step_(\\d+)\\.safetensors");
  int64_t best = -1;
  std::string best_path;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    std::string name = e.path().filename().string();
    if (std::regex_match(name, m, re) && std::stoll(m[1]) > best) {
      best = std::stoll(m[1]);
      best_path = e.path().string();
    }
  }
  return best_path;
}

}  // namespace sagan_example
