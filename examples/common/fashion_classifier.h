// The small Fashion-MNIST CNN of examples/fashion_mnist_classifier, shared with sagan_celeba's
// Frechet distance: its 128 penultimate features are the feature space in which generated and
// real images are compared (as Inception's pool3 features are for FID on natural images).
//
//   x [B,1,28,28] (standardised) -> Conv 3x3 p1 1->32 -> BN -> ReLU -> MaxPool   [B,32,14,14]
//                                -> Conv 3x3 p1 32->64 -> BN -> ReLU -> MaxPool  [B,64,7,7]
//                                -> flatten -> Linear 3136->128 -> ReLU          [B,128] features
//                                -> Linear 128->10                               [B,10] logits
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "layers/batch_norm2d.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/module.h"

namespace ember::data {

// The committed weights (examples/fashion_mnist_classifier/README.md says how they were made).
std::string default_fashion_classifier_path();

class FashionClassifier : public Module {
 public:
  static constexpr int kFeatures = 128;
  explicit FashionClassifier(Generator& gen);
  // The 128 features before the last layer; x [B,1,28,28] standardised as the training data.
  Tensor features(const Tensor& x);
  Tensor forward(const Tensor& x) override;

  std::shared_ptr<Conv2d> conv1, conv2;
  std::shared_ptr<BatchNorm2d> bn1, bn2;
  std::shared_ptr<Linear> fc1, fc2;
};

// Loads weights written by `fashion_mnist_classifier --save` (strict: every tensor, no other),
// in eval mode, on `device`. Errors name the file.
std::unique_ptr<FashionClassifier> load_fashion_classifier(const std::string& path, Device device);

// GAN-format images [n, 1, 32, 32] in [-1, 1] (Fashion-MNIST padded 28 -> 32, MinusOneOne) ->
// classifier input [n, 1, 28, 28]: the central 28x28, standardised. Applied to generated and real
// images alike, so that both reach the classifier through the same arithmetic.
std::vector<float> gan_to_classifier_input(const float* images, int64_t n);

// Features [n, 128] (double, row-major) of GAN-format images in eval mode and without
// gradients, in batches of `batch`. Require: images [n, 1, 32, 32]. Rejects NaN/Inf in the images.
std::vector<double> classifier_features(FashionClassifier& model, const std::vector<float>& images, int64_t n,
                                        Device device, int64_t batch = 500);

}  // namespace ember::data
