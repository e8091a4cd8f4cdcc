// sagan_celeba evaluate: the Frechet distance of a Fashion-MNIST checkpoint's generator to the
// real test images (quality.h), printed beside the floor (real training images vs test images).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sagan_example {

// Several checkpoints, generators and BatchNorm modes can be scored in one call (the classifier
// and the test statistics are computed once): one line per (checkpoint, G, mode), in that order.
struct EvaluateOptions {
  std::vector<std::string> checkpoints;
  int64_t n = 10000;        // generated images (and training images for the floor)
  bool ema = false;         // require and use the EMA generator
  bool no_ema = false;      // use the trained generator even when the checkpoint has an EMA copy
  bool both = false;        // score the trained and the EMA generator (requires an EMA copy)
  std::vector<std::string> bn = {"auto"};  // G's BatchNorm when sampling: auto | eval | batch | standing
  std::string csv;          // append "step,generator,bn,n,frechet,checkpoint" rows here
  std::string classifier;   // empty: the committed weights
  uint64_t seed = 0;        // noise seed
  bool floor = true;        // also print the real-train vs real-test floor
  std::string device = "auto";
};

// Errors (non-zero status, nothing written): a missing or unreadable checkpoint, a checkpoint of
// a model that does not make 1x32x32 Fashion-MNIST images (RGB folders: use `export` and an
// external FID tool), --ema without an EMA copy, a bad --bn or --n.
int run_evaluate(const EvaluateOptions& opt);

}  // namespace sagan_example
