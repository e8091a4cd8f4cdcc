// The Frechet distance of a generator on the Fashion-MNIST classifier, and G's BatchNorm
// sampling modes (see quality.h).
#include "examples/sagan_celeba/quality.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "examples/common/idx.h"
#include "examples/sagan_celeba/run.h"
#include "layers/batch_norm2d.h"

using namespace ember;

namespace sagan_example {

namespace {

void for_each_batch_norm(Module& m, const std::function<void(BatchNorm2d&)>& f) {
  if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) f(*bn);
  for (auto& child : m.named_children()) for_each_batch_norm(*child.second, f);
}

// A whole Fashion-MNIST split in the GAN's format: [n, 1, 32, 32], padded, in [-1, 1].
std::vector<float> gan_format_split(const data::MnistSplit& split, int64_t n) {
  data::MnistFormat fmt;
  fmt.size = 32;
  fmt.scale = data::PixelScale::MinusOneOne;
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  return data::mnist_float_batch(split, idx, fmt);
}

}  // namespace

BnMode parse_bn_mode(const std::string& s, const std::string& flag) {
  if (s == "auto") return BnMode::Auto;
  if (s == "eval") return BnMode::Eval;
  if (s == "batch") return BnMode::Batch;
  if (s == "standing") return BnMode::Standing;
  EMBER_INPUT_CHECK(false, flag << " must be auto, eval, batch or standing, got '" << s << "'");
  return BnMode::Eval;
}

const char* bn_mode_name(BnMode m) {
  return m == BnMode::Auto ? "auto" : m == BnMode::Eval ? "eval" : m == BnMode::Batch ? "batch" : "standing";
}

BnMode resolve_bn_mode(BnMode m, bool ema_generator) {
  if (m != BnMode::Auto) return m;
  return ema_generator ? BnMode::Standing : BnMode::Eval;
}

void set_sampling_mode(Module& G, BnMode mode, int64_t z_dim, Device device, int64_t batch, uint64_t seed,
                       int batches) {
  EMBER_CHECK(mode != BnMode::Auto, "set_sampling_mode: resolve BnMode::Auto first");
  G.eval();  // spectral norm: no power iteration; attention etc. unaffected
  if (mode == BnMode::Eval) return;
  for_each_batch_norm(G, [](BatchNorm2d& bn) { bn.train(true); });
  if (mode == BnMode::Batch) return;
  // Standing: running = average of the batch statistics over `batches` batches, exactly: with
  // momentum 1/k at the k-th batch the update running <- (1 - 1/k) running + (1/k) stat is the
  // cumulative mean (PyTorch's momentum=None); the first batch (momentum 1) erases the old values.
  std::vector<float> saved;
  for_each_batch_norm(G, [&](BatchNorm2d& bn) { saved.push_back(bn.momentum); });
  NoGradGuard no_grad;
  Generator gen(seed);
  for (int k = 1; k <= batches; ++k) {
    for_each_batch_norm(G, [&](BatchNorm2d& bn) { bn.momentum = 1.0f / static_cast<float>(k); });
    G(randn(Shape{batch, z_dim}, gen, device));
  }
  size_t i = 0;
  for_each_batch_norm(G, [&](BatchNorm2d& bn) {
    bn.momentum = saved[i++];
    bn.train(false);
  });
}

FrechetScorer::FrechetScorer(const std::string& classifier_path, Device device)
    : classifier_(data::load_fashion_classifier(classifier_path, device)), device_(device) {
  const data::MnistSplit test = data::load_fashion_mnist(data::kFashionMnistDir, false);
  const std::vector<float> images = gan_format_split(test, test.size());
  test_ = data::gaussian_stats(data::classifier_features(*classifier_, images, test.size(), device_), test.size(),
                               data::FashionClassifier::kFeatures);
}

double FrechetScorer::distance_of_images(const std::vector<float>& images, int64_t n) {
  const std::vector<double> f = data::classifier_features(*classifier_, images, n, device_);
  return data::frechet_distance(data::gaussian_stats(f, n, data::FashionClassifier::kFeatures), test_);
}

double FrechetScorer::distance_of_generator(Module& G, int64_t z_dim, int64_t n, uint64_t seed, int64_t batch) {
  NoGradGuard no_grad;
  Generator gen(seed);
  std::vector<float> images;
  images.reserve(static_cast<size_t>(n) * 32 * 32);
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t b = std::min(batch, n - start);
    Tensor x = G(randn(Shape{b, z_dim}, gen, device_));
    EMBER_CHECK(x.dim() == 4 && x.size(1) == 1 && x.size(2) == 32 && x.size(3) == 32,
                "the Frechet distance needs 1x32x32 images, G makes " << x.shape());
    std::vector<float> v = x.to_vector();
    images.insert(images.end(), v.begin(), v.end());
  }
  return distance_of_images(images, n);
}

double FrechetScorer::floor(int64_t n) {
  const data::MnistSplit train = data::load_fashion_mnist(data::kFashionMnistDir, true);
  EMBER_INPUT_CHECK(n <= train.size(), "--n " << n << " is more than the " << train.size() << " training images of the floor");
  return distance_of_images(gan_format_split(train, n), n);
}

SelfAttention* first_attention(Module& G) {
  if (auto* a = dynamic_cast<SelfAttention*>(&G)) return a;
  for (auto& child : G.named_children())
    if (SelfAttention* a = first_attention(*child.second)) return a;
  return nullptr;
}

TrainingFrechet::TrainingFrechet(const TrainConfig& cfg, Device device)
    : path_(data::default_fashion_classifier_path()), device_(device), latest_(std::numeric_limits<double>::quiet_NaN()) {
  if (!cfg.data.empty() || cfg.frechet_every <= 0 || cfg.frechet_n < 2) return;
  if (!std::filesystem::is_regular_file(path_)) {
    std::fprintf(stderr, "warning: no Frechet distance during training: the classifier weights %s are missing\n",
                 path_.c_str());
    return;
  }
  every_ = cfg.frechet_every, n_ = cfg.frechet_n;
}

double TrainingFrechet::measure(Run& run) {
  if (!scorer_) scorer_ = std::make_unique<FrechetScorer>(path_, device_);
  Module& G = run.sampler();
  G.eval();
  latest_ = scorer_->distance_of_generator(G, run.gan.z_dim, n_, /*seed=*/12345, run.cfg.batch);
  G.train();
  return latest_;
}

}  // namespace sagan_example
