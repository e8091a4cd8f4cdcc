// fashion_mnist_classifier: a small CNN trained with ember on Fashion-MNIST (Debian's
// dataset-fashion-mnist package), evaluated on the test set after every epoch. The framework's
// end-to-end proof on real data.
//
//   x [B,1,28,28] -> Conv 3x3 p1 1->32 -> BN -> ReLU -> MaxPool   [B,32,14,14]
//                 -> Conv 3x3 p1 32->64 -> BN -> ReLU -> MaxPool  [B,64,7,7]
//                 -> flatten -> Linear 3136->128 -> ReLU -> Linear 128->10 (logits)
// Adam (lr 1e-3, betas 0.9/0.999), batch 64, cross-entropy. `--min-accuracy A` makes the program
// exit with status 1 when the final test accuracy is below A (used as a check).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>

#include "core/autograd.h"
#include "core/context.h"
#include "core/ops.h"
#include "examples/common/idx.h"
#include "examples/common/loader.h"
#include "layers/batch_norm2d.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/optim.h"

using namespace ember;

namespace {

class SmallCnn : public Module {
 public:
  explicit SmallCnn(Generator& gen) {
    conv1 = register_module("conv1", std::make_shared<Conv2d>(1, 32, 3, 1, 1, gen));
    bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(32));
    conv2 = register_module("conv2", std::make_shared<Conv2d>(32, 64, 3, 1, 1, gen));
    bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(64));
    fc1 = register_module("fc1", std::make_shared<Linear>(64 * 7 * 7, 128, gen));
    fc2 = register_module("fc2", std::make_shared<Linear>(128, 10, gen));
  }
  // The 128 features before the last layer (for a Frechet distance on this classifier's features).
  Tensor features(const Tensor& x) {
    Tensor h = ops::max_pool2x2(ops::relu((*bn1)((*conv1)(x))));
    h = ops::max_pool2x2(ops::relu((*bn2)((*conv2)(h))));
    return ops::relu((*fc1)(h.flatten(1)));
  }
  Tensor forward(const Tensor& x) override { return (*fc2)(features(x)); }

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Linear> fc1, fc2;
};

// Accuracy of `model` on a split, in eval mode, batches of 500.
double evaluate(SmallCnn& model, const data::MnistSplit& split, const data::MnistFormat& fmt, Device device) {
  NoGradGuard no_grad;
  model.eval();
  int64_t correct = 0;
  const int64_t n = split.size(), bs = 500;
  for (int64_t start = 0; start < n; start += bs) {
    std::vector<int64_t> idx;
    for (int64_t i = start; i < std::min(n, start + bs); ++i) idx.push_back(i);
    std::vector<float> x = data::mnist_float_batch(split, idx, fmt);
    Tensor input = Tensor::from_vector(x, Shape{int64_t(idx.size()), 1, fmt.size, fmt.size}, device);
    std::vector<float> logits = model(input).to_vector();
    for (size_t b = 0; b < idx.size(); ++b) {
      int best = 0;
      for (int k = 1; k < 10; ++k)
        if (logits[b * 10 + k] > logits[b * 10 + best]) best = k;
      correct += best == split.labels[static_cast<size_t>(idx[b])];
    }
  }
  model.train();
  return static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a small CNN on Fashion-MNIST with ember and report test accuracy per epoch"};
  std::string data_dir = data::kFashionMnistDir, device_arg = "auto";
  int epochs = 3, batch = 64, threads = 2;
  int64_t train_limit = 0;
  float lr = 1e-3f;
  uint64_t seed = 1;
  double min_accuracy = 0;
  app.add_option("--data", data_dir, "Folder with the IDX .gz files")->capture_default_str();
  app.add_option("--epochs", epochs, "Passes over the training set")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "Batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "Adam learning rate")->capture_default_str();
  app.add_option("--train-limit", train_limit, "Use only the first N training images (0 = all 60000)");
  app.add_option("--device", device_arg, "cpu, cuda or auto")->capture_default_str();
  app.add_option("--seed", seed, "Seed of initialisation and shuffling")->capture_default_str();
  app.add_option("--threads", threads, "Data loading threads")->capture_default_str();
  app.add_option("--min-accuracy", min_accuracy, "Exit with status 1 if the final test accuracy is lower");
  CLI11_PARSE(app, argc, argv);

  try {
    Device device = parse_device(device_arg);
    auto train = std::make_shared<data::MnistSplit>(data::load_fashion_mnist(data_dir, true));
    data::MnistSplit test = data::load_fashion_mnist(data_dir, false);
    if (train_limit > 0 && train_limit < train->size()) {
      train->images.n = train_limit;
      train->images.pixels.resize(static_cast<size_t>(train_limit) * 28 * 28);
      train->labels.resize(static_cast<size_t>(train_limit));
    }
    data::MnistFormat fmt;
    fmt.size = 28;
    fmt.scale = data::PixelScale::Standardized;
    auto dataset = std::make_shared<data::MnistDataset>(train, fmt);
    data::LoaderOptions lo;
    lo.batch_size = batch;
    lo.seed = seed;
    lo.threads = threads;
    data::BatchLoader loader(dataset, lo);

    Generator gen(seed);
    SmallCnn model(gen);
    model.to(device);
    AdamOptions ao;
    ao.lr = lr;
    ao.beta1 = 0.9f;
    ao.beta2 = 0.999f;
    Adam opt(model.named_parameters(), ao);
    std::printf("fashion_mnist_classifier: %lld train images, %lld test, device %s, %lld parameters\n",
                static_cast<long long>(train->size()), static_cast<long long>(test.size()), device_name(device),
                static_cast<long long>(model.num_parameters()));

    double acc = 0;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      auto t0 = std::chrono::steady_clock::now();
      double loss_sum = 0;
      const int64_t steps = loader.batches_per_epoch();
      for (int64_t s = 0; s < steps; ++s) {
        data::Batch b = loader.next();
        Tensor loss = ops::cross_entropy(model(b.images(device)), b.label_tensor(device));
        opt.zero_grad();
        loss.backward();
        opt.step();
        loss_sum += loss.item();
      }
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      acc = evaluate(model, test, fmt, device);
      std::printf("epoch %d: train loss %.4f | test accuracy %.2f%% | %.1f s (%.0f img/s)\n", epoch,
                  loss_sum / static_cast<double>(steps), 100 * acc, secs,
                  static_cast<double>(steps * batch) / secs);
      std::fflush(stdout);
    }
    if (acc < min_accuracy) {
      std::fprintf(stderr, "test accuracy %.2f%% is below the required %.2f%%\n", 100 * acc, 100 * min_accuracy);
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
