// Fashion-MNIST from gzip'd IDX files: reading and validating the files, converting images
// to float (28x28 or padded to 32x32, scaled to [-1,1], [0,1] or standardised), and a Dataset
// over one split for the BatchLoader.
//
// IDX format (big-endian): magic = {0, 0, type, ndims} with type 0x08 = unsigned byte, then
// ndims uint32 sizes, then the data. Images are 0x00000803 [n, rows, cols], labels 0x00000801 [n].
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "examples/common/loader.h"

namespace ember::data {

// Where scripts/setup.sh (package dataset-fashion-mnist) installs the files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// The whole decompressed content of a gzip file (a plain, uncompressed file is read as is).
// Throws ember::Error naming the path if it cannot be opened or the gzip stream is corrupt
// or truncated.
std::vector<uint8_t> read_gz_file(const std::string& path);

struct IdxImages {
  int64_t n = 0;
  int rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // [n, rows, cols], row-major
};

// Require: `path` is an IDX3 unsigned-byte file whose size matches its header exactly.
// Throws ember::Error naming the file otherwise (bad magic, truncated, trailing bytes).
IdxImages read_idx_images(const std::string& path);
// Require: `path` is an IDX1 unsigned-byte file. Same errors as read_idx_images.
std::vector<int32_t> read_idx_labels(const std::string& path);
// The same checks on a file's bytes already decompressed (the fuzz target's entry); `path` only
// names the file in messages.
IdxImages parse_idx_images(const std::vector<uint8_t>& bytes, const std::string& path);
std::vector<int32_t> parse_idx_labels(const std::vector<uint8_t>& bytes, const std::string& path);

// One split: images [n, 28, 28] uint8 and labels in 0..9.
struct MnistSplit {
  IdxImages images;
  std::vector<int32_t> labels;  // [n]
  int64_t size() const { return images.n; }
};

// Reads <dir>/train-*-ubyte.gz (train = true, 60000 images) or <dir>/t10k-*-ubyte.gz (10000),
// and checks the image and label counts agree and every label is in 0..9.
MnistSplit load_fashion_mnist(const std::string& dir, bool train);

// How bytes 0..255 become floats:
//   MinusOneOne:  v / 127.5 - 1          in [-1, 1] (GAN inputs, matches a tanh generator)
//   ZeroOne:      v / 255                in [0, 1]
//   Standardized: (v / 255 - mean) / std with the training set's statistics below
enum class PixelScale { MinusOneOne, ZeroOne, Standardized };
// Mean and standard deviation of all training pixels / 255 (checked by tests/test_data_idx.cpp).
constexpr float kFashionMnistMean = 0.2860f;
constexpr float kFashionMnistStd = 0.3530f;

float scale_pixel(uint8_t v, PixelScale scale);

struct MnistFormat {
  int size = 28;  // 28 keeps the image; 32 pads 2 pixels of background on every side
  PixelScale scale = PixelScale::MinusOneOne;
};

// Writes one image (rows x cols bytes) as size x size floats into `out`, centred: padding
// pixels take the value of a background (0) pixel after scaling (e.g. -1 for MinusOneOne).
// Require: size >= rows, size >= cols, size - rows and size - cols even.
void mnist_to_float(const uint8_t* image, int rows, int cols, const MnistFormat& fmt, float* out);

// A float batch [indices.size(), 1, size, size] and its labels.
std::vector<float> mnist_float_batch(const MnistSplit& split, const std::vector<int64_t>& indices,
                                     const MnistFormat& fmt, std::vector<int32_t>* labels = nullptr);

// A Dataset over one split, for the BatchLoader (no augmentation: rng_word is ignored).
class MnistDataset : public Dataset {
 public:
  MnistDataset(std::shared_ptr<const MnistSplit> split, MnistFormat fmt);
  int64_t size() const override { return split_->size(); }
  int channels() const override { return 1; }
  int height() const override { return fmt_.size; }
  int width() const override { return fmt_.size; }
  bool has_labels() const override { return true; }
  int32_t label(int64_t i) const override;
  void load(int64_t i, uint64_t rng_word, float* out) const override;

 private:
  std::shared_ptr<const MnistSplit> split_;
  MnistFormat fmt_;
};

}  // namespace ember::data
