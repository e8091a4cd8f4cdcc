// The Fashion-MNIST classifier as a feature extractor (see fashion_classifier.h).
#include "examples/common/fashion_classifier.h"

#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "examples/common/idx.h"
#include "models/checkpoint.h"

namespace ember::data {

std::string default_fashion_classifier_path() {
  // Set by examples/CMakeLists.txt: the weights live in the source tree, next to the program
  // that made them, so a fresh clone needs no download.
  return std::string(EMBER_SOURCE_DIR) + "/examples/fashion_mnist_classifier/fashion_classifier.safetensors";
}

FashionClassifier::FashionClassifier(Generator& gen) {
  conv1 = register_module("conv1", std::make_shared<Conv2d>(1, 32, 3, 1, 1, gen));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(32));
  conv2 = register_module("conv2", std::make_shared<Conv2d>(32, 64, 3, 1, 1, gen));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(64));
  fc1 = register_module("fc1", std::make_shared<Linear>(64 * 7 * 7, kFeatures, gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(kFeatures, 10, gen));
}

Tensor FashionClassifier::features(const Tensor& x) {
  Tensor h = ops::max_pool2x2(ops::relu((*bn1)((*conv1)(x))));  // [B,32,14,14]
  h = ops::max_pool2x2(ops::relu((*bn2)((*conv2)(h))));          // [B,64,7,7]
  return ops::relu((*fc1)(h.flatten(1)));                          // [B,128]
}

Tensor FashionClassifier::forward(const Tensor& x) { return (*fc2)(features(x)); }

std::unique_ptr<FashionClassifier> load_fashion_classifier(const std::string& path, Device device) {
  Generator gen(0);  // the initial values are all overwritten
  auto model = std::make_unique<FashionClassifier>(gen);
  try {
    models::load_module(path, *model, true);
  } catch (const Error& e) {
    EMBER_INPUT_CHECK(false, "the Fashion-MNIST classifier weights " << path << ": " << without_location(e.what()));
  }
  model->to(device);
  model->eval();
  return model;
}

std::vector<float> gan_to_classifier_input(const float* images, int64_t n) {
  constexpr int kIn = 32, kOut = 28, kPad = (kIn - kOut) / 2;
  std::vector<float> out(static_cast<size_t>(n) * kOut * kOut);
  for (int64_t i = 0; i < n; ++i)
    for (int y = 0; y < kOut; ++y)
      for (int x = 0; x < kOut; ++x) {
        const float v = images[(i * kIn + y + kPad) * kIn + x + kPad];  // in [-1, 1]
        EMBER_CHECK(std::isfinite(v), "image " << i << " holds a non-finite pixel (" << v << ")");
        const float unit = (v + 1.0f) * 0.5f;                           // in [0, 1], as v / 255
        out[static_cast<size_t>((i * kOut + y) * kOut + x)] = (unit - kFashionMnistMean) / kFashionMnistStd;
      }
  return out;
}

std::vector<double> classifier_features(FashionClassifier& model, const std::vector<float>& images, int64_t n,
                                        Device device, int64_t batch) {
  EMBER_CHECK(static_cast<int64_t>(images.size()) == n * 32 * 32,
              "classifier_features: expected " << n << " images of 1x32x32, got " << images.size() << " floats");
  NoGradGuard no_grad;
  model.eval();
  const int64_t d = FashionClassifier::kFeatures;
  std::vector<double> feats(static_cast<size_t>(n * d));
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t b = std::min(batch, n - start);
    std::vector<float> x = gan_to_classifier_input(images.data() + start * 32 * 32, b);
    std::vector<float> f = model.features(Tensor::from_vector(x, Shape{b, 1, 28, 28}, device)).to_vector();
    for (size_t k = 0; k < f.size(); ++k) feats[static_cast<size_t>(start * d) + k] = f[k];
  }
  return feats;
}

}  // namespace ember::data
