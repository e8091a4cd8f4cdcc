#include "examples/sagan_celeba/run.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <algorithm>

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
  std::string text = ember::models::read_checkpoint_config(path);
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

std::vector<std::string> checkpoints_newest_first(const std::string& run_dir) {
  fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  // Exactly step_<digits>.safetensors: a writer's step_*.safetensors.tmp never matches.
  static const std::regex re("step_(\\d{1,18})\\.safetensors");
  std::vector<std::pair<int64_t, std::string>> found;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    std::string name = e.path().filename().string();
    if (std::regex_match(name, m, re)) found.emplace_back(std::stoll(m[1]), e.path().string());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> paths;
  for (auto& f : found) paths.push_back(std::move(f.second));
  return paths;
}

std::string newest_checkpoint(const std::string& run_dir) {
  std::vector<std::string> all = checkpoints_newest_first(run_dir);
  return all.empty() ? std::string() : all.front();
}

ResumePoint find_resume_point(const std::string& run_dir) {
  const std::string dir = run_dir + "/checkpoints";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".tmp")
      std::fprintf(stderr, "warning: ignoring '%s': an unfinished checkpoint write\n", e.path().string().c_str());
  std::vector<std::string> all = checkpoints_newest_first(run_dir);
  EMBER_INPUT_CHECK(!all.empty(), "--resume: no checkpoint under " << dir << " (step_*.safetensors)");
  for (const std::string& path : all) {
    try {
      // Reads and validates the whole file (sizes, header, metadata): a truncated one fails here.
      return {path, parse_checkpoint_config(path)};
    } catch (const ember::Error& e) {
      std::fprintf(stderr, "warning: skipping checkpoint '%s', which cannot be read: %s\n", path.c_str(),
                   ember::without_location(e.what()).c_str());
    }
  }
  EMBER_INPUT_CHECK(false, "--resume: none of the " << all.size() << " checkpoint(s) under " << dir
                                                    << " can be read (see the warnings above)");
  return {};
}

}  // namespace sagan_example
