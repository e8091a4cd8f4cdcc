// Checkpoint save/load over safetensors (see checkpoint.h).
#include "models/checkpoint.h"

#include <set>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

namespace ember::models {

namespace {

const char* kFormat = "ember-checkpoint-1";

void append(StateDict& out, const std::string& prefix, const StateDict& sd) {
  for (const auto& kv : sd) out.emplace_back(prefix + kv.first, kv.second);
}

// The entries of `f` whose names start with `prefix`, prefix stripped; records them in `used`.
StateDict take(const SafetensorsFile& f, const std::string& prefix, std::set<std::string>& used) {
  StateDict sd;
  for (const std::string& n : f.names)
    if (n.compare(0, prefix.size(), prefix) == 0) {
      sd.emplace_back(n.substr(prefix.size()), f.get(n));
      used.insert(n);
    }
  return sd;
}

int64_t meta_int(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  EMBER_CHECK(it != f.metadata.end(), "checkpoint '" << f.path << "': metadata has no '" << key << "'");
  try {
    size_t used = 0;
    long long v = std::stoll(it->second, &used);
    EMBER_CHECK(used == it->second.size(), "trailing characters");
    return v;
  } catch (const std::exception&) {
    EMBER_FAIL("checkpoint '" << f.path << "': metadata '" << key << "' is not an integer: \"" << it->second << "\"");
  }
}

uint64_t meta_u64(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  EMBER_CHECK(it != f.metadata.end(), "checkpoint '" << f.path << "': metadata has no '" << key << "'");
  try {
    size_t used = 0;
    unsigned long long v = std::stoull(it->second, &used);
    EMBER_CHECK(used == it->second.size() && it->second[0] != '-', "not a plain unsigned integer");
    return v;
  } catch (const std::exception&) {
    EMBER_FAIL("checkpoint '" << f.path << "': metadata '" << key << "' is not an unsigned integer: \""
                              << it->second << "\"");
  }
}

// Runs fn (a check or a load), naming the file and the part in any error.
template <class F>
void named(const SafetensorsFile& f, const std::string& what, F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    EMBER_FAIL("checkpoint '" << f.path << "' (" << what << "): " << e.what());
  }
}

}  // namespace

void save_module(const std::string& path, const Module& m, const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, m.state_dict(), metadata);
}

std::map<std::string, std::string> load_module(const std::string& path, Module& m, bool strict) {
  SafetensorsFile f = load_safetensors(path);
  std::set<std::string> used;
  StateDict sd = take(f, "", used);
  named(f, "module", [&] { m.load_state_dict(sd, strict); });
  return f.metadata;
}

void save_checkpoint(const std::string& path, const TrainingState& s) {
  EMBER_CHECK(s.G && s.D && s.opt_G && s.opt_D, "save_checkpoint: G, D, opt_G and opt_D are required");
  StateDict all;
  append(all, "G.", s.G->state_dict());
  append(all, "D.", s.D->state_dict());
  if (s.G_ema) append(all, "G_ema.", s.G_ema->state_dict());
  append(all, "opt_G.", s.opt_G->state_dict());
  append(all, "opt_D.", s.opt_D->state_dict());
  std::map<std::string, std::string> meta = {{"format", kFormat},
                                             {"config", s.config},
                                             {"step", std::to_string(s.step)},
                                             {"opt_G.steps", std::to_string(s.opt_G->steps())},
                                             {"opt_D.steps", std::to_string(s.opt_D->steps())}};
  if (s.rng) {
    meta["rng.seed"] = std::to_string(s.rng->seed());
    meta["rng.offset"] = std::to_string(s.rng->offset());
  }
  save_safetensors(path, all, meta);
}

namespace {
SafetensorsFile open_checkpoint(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("format");
  EMBER_CHECK(it != f.metadata.end() && it->second == kFormat,
              "checkpoint '" << path << "': not an ember training checkpoint (metadata format is \""
                             << (it == f.metadata.end() ? std::string("<absent>") : it->second) << "\", expected \""
                             << kFormat << "\")");
  return f;
}
}  // namespace

std::string read_checkpoint_config(const std::string& path) {
  SafetensorsFile f = open_checkpoint(path);
  auto it = f.metadata.find("config");
  return it == f.metadata.end() ? std::string() : it->second;
}

void load_checkpoint(const std::string& path, TrainingState& s) {
  EMBER_CHECK(s.G && s.D && s.opt_G && s.opt_D, "load_checkpoint: G, D, opt_G and opt_D are required");
  SafetensorsFile f = open_checkpoint(path);
  std::set<std::string> used;
  StateDict g = take(f, "G.", used), d = take(f, "D.", used), ge = take(f, "G_ema.", used);
  StateDict og = take(f, "opt_G.", used), od = take(f, "opt_D.", used);
  std::vector<std::string> stray;
  for (const std::string& n : f.names)
    if (!used.count(n)) stray.push_back(n);
  if (!s.G_ema && !ge.empty()) stray.push_back("G_ema.* (no EMA model given to load it into)");
  EMBER_CHECK(stray.empty(), "checkpoint '" << path << "': unexpected tensors, e.g. '" << stray.front() << "' ("
                                            << stray.size() << " in all)");
  EMBER_CHECK(!s.G_ema || !ge.empty(), "checkpoint '" << path << "': no G_ema.* tensors, but an EMA model was given");

  // Validate everything before modifying anything.
  const int64_t step = meta_int(f, "step");
  const int64_t steps_G = meta_int(f, "opt_G.steps"), steps_D = meta_int(f, "opt_D.steps");
  uint64_t seed = 0, offset = 0;
  if (s.rng) {
    seed = meta_u64(f, "rng.seed");
    offset = meta_u64(f, "rng.offset");
  }
  named(f, "G", [&] { s.G->check_state_dict(g); });
  named(f, "D", [&] { s.D->check_state_dict(d); });
  if (s.G_ema) named(f, "G_ema", [&] { s.G_ema->check_state_dict(ge); });
  named(f, "opt_G", [&] { s.opt_G->check_state_dict(og); });
  named(f, "opt_D", [&] { s.opt_D->check_state_dict(od); });

  s.G->load_state_dict(g);
  s.D->load_state_dict(d);
  if (s.G_ema) s.G_ema->load_state_dict(ge);
  s.opt_G->load_state_dict(og);
  s.opt_D->load_state_dict(od);
  s.opt_G->set_steps(steps_G);
  s.opt_D->set_steps(steps_D);
  if (s.rng) s.rng->set_state(seed, offset);
  s.step = step;
  auto it = f.metadata.find("config");
  s.config = it == f.metadata.end() ? std::string() : it->second;
}

}  // namespace ember::models
