// How good a Fashion-MNIST generator is, as one number: the Frechet distance between its images
// and the 10,000 real test images on the committed classifier's 128 penultimate features
// (examples/common/fashion_classifier.h, frechet.h). Lower is better; the distance of real
// training images to the test images (the floor) is what a perfect generator would get with
// the same number of images (the estimate is biased upwards for small n). Not comparable with
// published FIDs, which use Inception features of RGB images.
//
// Also the three ways G's BatchNorm can run when sampling:
//   eval:     running statistics from training (PyTorch's eval(); the pictures during training);
//   batch:    each batch's own statistics, batches of the training batch size (how the popular
//             PyTorch SAGAN code samples: G stays in train mode; spectral norm here stays in eval
//             mode, so no power iteration runs);
//   standing: running statistics re-estimated as the exact average over many batches of fresh
//             noise after training (BigGAN's "standing statistics"), then eval.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "examples/common/fashion_classifier.h"
#include "examples/common/frechet.h"
#include "examples/sagan_celeba/config.h"
#include "layers/module.h"
#include "layers/self_attention.h"

namespace sagan_example {

enum class BnMode { Auto, Eval, Batch, Standing };
// "auto" | "eval" | "batch" | "standing"; an error naming `flag` otherwise.
BnMode parse_bn_mode(const std::string& s, const std::string& flag);
const char* bn_mode_name(BnMode m);
// Auto, chosen by measurement (README, "GAN quality"): eval for the trained G, whose running
// statistics belong to its weights; standing for the EMA copy, whose averaged weights would
// otherwise run with the trained G's statistics (copied by EMA::update). Other modes unchanged.
BnMode resolve_bn_mode(BnMode m, bool ema_generator);

// Puts G into the sampling mode (not Auto: resolve it first). Standing re-estimates G's BatchNorm running statistics (it
// changes G's buffers) from `batches` batches of `batch` noise vectors drawn with `seed`.
void set_sampling_mode(ember::Module& G, BnMode mode, int64_t z_dim, ember::Device device, int64_t batch,
                       uint64_t seed, int batches = 100);

class FrechetScorer {
 public:
  // Loads the classifier (errors name the file) and the statistics of the 10,000 test images.
  FrechetScorer(const std::string& classifier_path, ember::Device device);
  // The distance of n images drawn from G (in the mode G is in) to the test images; noise from
  // `seed`, `batch` images per forward pass. Require: G makes [b, 1, 32, 32] images.
  double distance_of_generator(ember::Module& G, int64_t z_dim, int64_t n, uint64_t seed, int64_t batch);
  // The floor: the first n training images against the test images.
  double floor(int64_t n);

 private:
  double distance_of_images(const std::vector<float>& images, int64_t n);
  std::unique_ptr<ember::data::FashionClassifier> classifier_;
  ember::Device device_;
  ember::data::GaussianStats test_;
};

// G's first attention layer (depth first), or nullptr: the attention picture's source.
ember::SelfAttention* first_attention(ember::Module& G);

struct Run;

// The distance during training (metrics.csv's "frechet" column and the progress line): every
// cfg.frechet_every steps, frechet_n images of the sampler (the EMA G when there is one) in eval
// mode from a fixed noise seed, so that the curve is not noisy from the noise. Nothing of the
// run's state changes (eval mode: no running-statistics or power-iteration update; own noise
// generator), so a resumed run logs what an uninterrupted one does.
class TrainingFrechet {
 public:
  // Off unless the run is on Fashion-MNIST with frechet_every > 0 and frechet_n > 1; a missing
  // classifier file turns it off with a warning, not an error. The classifier and the test
  // images' statistics are loaded at the first measurement (short runs never pay for them).
  TrainingFrechet(const TrainConfig& cfg, ember::Device device);
  bool due(int64_t step) const { return every_ > 0 && step % every_ == 0; }
  double measure(Run& run);  // also kept as latest()
  double latest() const { return latest_; }

 private:
  std::unique_ptr<FrechetScorer> scorer_;
  std::string path_;
  ember::Device device_;
  int64_t every_ = 0, n_ = 0;
  double latest_;
};

}  // namespace sagan_example
