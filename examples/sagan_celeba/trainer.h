// The three commands of sagan_celeba: train, sample and export. Each returns the process exit
// status; errors are reported as "error: ..." on stderr with a non-zero status.
#pragma once
#include <cstdint>
#include <set>
#include <string>

#include "examples/sagan_celeba/config.h"

namespace sagan_example {

// given: the flags on the command line ("--batch", ...), told apart from defaults; with
// --resume they are checked against the checkpoint (see merge_for_resume in config.h).
// Every check of the flags and the data runs before the run folder is touched. A loss or a
// weight that turns NaN/Inf stops the run with an error (no checkpoint of that state).
// SIGINT/SIGTERM: stop after the current step with a checkpoint; a second one quits at once
// (status 128 + signal), leaving at most a *.tmp file that --resume ignores.
int run_train(TrainConfig cfg, const std::set<std::string>& given);

struct SampleOptions {
  std::string checkpoint;   // a training checkpoint (RUN_DIR/checkpoints/step_*.safetensors)
  int n = 64;
  std::string out = "grid.png";
  uint64_t seed = 0;
  std::string z_file;       // safetensors with a tensor "z" [n, z_dim] instead of drawing noise
  std::string save_tensor;  // also write G's raw output as tensor "images" [n, C, H, W]
  std::string device = "auto";
  bool ema = true;          // use the EMA generator when the checkpoint has one
  std::string bn = "auto";  // G's BatchNorm: auto | eval | batch | standing (quality.h)
  std::string attention;    // also write the attention picture of the first image here
};
int run_sample(const SampleOptions& opt);

struct ExportOptions {
  std::string checkpoint;
  int64_t n = 50000;
  std::string out;  // folder for 000000.png, 000001.png, ...
  uint64_t seed = 0;
  int batch = 100;
  std::string device = "auto";
  bool ema = true;          // use the EMA generator when the checkpoint has one
  std::string bn = "auto";  // G's BatchNorm: auto | eval | batch | standing (quality.h)
};
int run_export(const ExportOptions& opt);

// The newest RUN_DIR/checkpoints/step_*.safetensors, or "" when there is none.
std::string newest_checkpoint(const std::string& run_dir);

}  // namespace sagan_example
