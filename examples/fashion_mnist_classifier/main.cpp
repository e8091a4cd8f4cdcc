// fashion_mnist_classifier: a small CNN trained with ember on Fashion-MNIST (Debian's
// dataset-fashion-mnist package), evaluated on the test set after every epoch. The framework's
// end-to-end proof on real data.
//
//   x [B,1,28,28] -> Conv 3x3 p1 1->32 -> BN -> ReLU -> MaxPool   [B,32,14,14]
//                 -> Conv 3x3 p1 32->64 -> BN -> ReLU -> MaxPool  [B,64,7,7]
//                 -> flatten -> Linear 3136->128 -> ReLU -> Linear 128->10 (logits)
// Adam (lr 1e-3, betas 0.9/0.999), batch 64, cross-entropy. `--min-accuracy A` makes the program
// exit with status 1 when the final test accuracy is below A (used as a check). `--save FILE`
// writes the trained weights (sagan_celeba's Frechet distance uses the committed ones);
// `--weights FILE` skips training and evaluates those weights on the 10,000 test images.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>

#include "core/autograd.h"
#include "core/context.h"
#include "core/ops.h"
#include "examples/common/fashion_classifier.h"
#include "examples/common/idx.h"
#include "examples/common/loader.h"
#include "layers/optim.h"
#include "models/checkpoint.h"

using namespace ember;
using ember::data::FashionClassifier;

namespace {

// Accuracy of `model` on a split, in eval mode, batches of 500.
double evaluate(FashionClassifier& model, const data::MnistSplit& split, const data::MnistFormat& fmt, Device device) {
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
  std::string save_path, weights_path;
  app.add_option("--data", data_dir, "Folder with the IDX .gz files")->capture_default_str();
  app.add_option("--epochs", epochs, "Passes over the training set")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "Batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "Adam learning rate")->capture_default_str();
  app.add_option("--train-limit", train_limit, "Use only the first N training images (0 = all 60000)");
  app.add_option("--device", device_arg, "cpu, cuda or auto")->capture_default_str();
  app.add_option("--seed", seed, "Seed of initialisation and shuffling")->capture_default_str();
  app.add_option("--threads", threads, "Data loading threads")->capture_default_str();
  app.add_option("--min-accuracy", min_accuracy, "Exit with status 1 if the final test accuracy is lower");
  app.add_option("--save", save_path, "Write the trained weights (safetensors) to this file");
  app.add_option("--weights", weights_path, "Evaluate these weights on the test set instead of training");
  CLI11_PARSE(app, argc, argv);

  try {
    Device device = parse_device(device_arg);
    if (!weights_path.empty()) {
      data::MnistSplit test = data::load_fashion_mnist(data_dir, false);
      data::MnistFormat fmt;
      fmt.scale = data::PixelScale::Standardized;
      auto model = data::load_fashion_classifier(weights_path, device);
      const double acc = evaluate(*model, test, fmt, device);
      std::printf("%s: test accuracy %.2f%% (%lld images)\n", weights_path.c_str(), 100 * acc,
                  static_cast<long long>(test.size()));
      if (acc < min_accuracy) {
        std::fprintf(stderr, "test accuracy %.2f%% is below the required %.2f%%\n", 100 * acc, 100 * min_accuracy);
        return 1;
      }
      return 0;
    }
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
    FashionClassifier model(gen);
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
    if (!save_path.empty()) {
      model.eval();  // the running statistics are part of the file; eval mode changes no value
      models::save_module(save_path, model, {{"test_accuracy", std::to_string(acc)}, {"epochs", std::to_string(epochs)},
                                             {"seed", std::to_string(seed)}});
      std::printf("wrote %s\n", save_path.c_str());
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
