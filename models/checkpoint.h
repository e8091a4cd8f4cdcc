// Checkpoints in the safetensors format (core/safetensors.h).
//
// Two kinds of file:
//  * A plain module file (save_module / load_module): the module's state_dict under exactly the
//    names PyTorch uses for the equivalent module, no prefix, so that in Python
//        model.load_state_dict(safetensors.torch.load_file(path), strict=True)
//    works (see tests/parity/load_in_torch.py). Optional string metadata (e.g. the config).
//  * A training checkpoint (save_checkpoint / load_checkpoint): one file holding G, D, their
//    optimizers, an optional EMA copy of G, the step, the RNG state and the config:
//        tensors "G.<name>", "D.<name>", "G_ema.<name>", "opt_G.<state>", "opt_D.<state>"
//        __metadata__: format = "ember-checkpoint-1", config = <JSON>, step, opt_G.steps,
//        opt_D.steps, rng.seed, rng.offset (decimal strings: integers stay exact)
//    A PyTorch user loads G from it by selecting the "G." entries and stripping the prefix.
// Loading validates everything: the file (by the reader), then every expected tensor present
// with the model's shape and nothing unexpected; errors name the file and the tensor.
// Writes are atomic (a .tmp file renamed over the target).
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "core/rng.h"
#include "layers/module.h"
#include "layers/optim.h"

namespace ember::models {

void save_module(const std::string& path, const Module& m, const std::map<std::string, std::string>& metadata = {});
// Copies the file's tensors into m (strict: missing/unexpected/mis-shaped names are errors).
// Returns the file's metadata.
std::map<std::string, std::string> load_module(const std::string& path, Module& m, bool strict = true);

struct TrainingState {
  Module* G = nullptr;
  Module* D = nullptr;
  Optimizer* opt_G = nullptr;
  Optimizer* opt_D = nullptr;
  Module* G_ema = nullptr;   // optional
  Generator* rng = nullptr;  // optional: the training loop's generator (noise, shuffles)
  int64_t step = 0;
  std::string config;  // JSON describing the models and training options
};

void save_checkpoint(const std::string& path, const TrainingState& s);
// Restores into the objects s points to (built beforehand, e.g. from read_checkpoint_config);
// sets s.step and s.config. Every non-null member of s must be present in the file.
void load_checkpoint(const std::string& path, TrainingState& s);
// The config JSON of a training checkpoint (to build the models before load_checkpoint).
std::string read_checkpoint_config(const std::string& path);

}  // namespace ember::models
