// Fashion-MNIST IDX reading and float conversion (see idx.h).
#include "examples/common/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace ember::data {

std::vector<uint8_t> read_gz_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  EMBER_CHECK(f != nullptr, "read_gz_file: cannot open '" << path << "': " << std::strerror(errno));
  std::vector<uint8_t> out;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    size_t old = out.size();
    out.resize(old + kChunk);
    int got = gzread(f, out.data() + old, kChunk);
    if (got < 0) {
      int code = 0;
      std::string msg = gzerror(f, &code);
      gzclose(f);
      EMBER_FAIL("read_gz_file: '" << path << "' is corrupt or truncated (zlib: " << msg << ")");
    }
    out.resize(old + static_cast<size_t>(got));
    if (got == 0) break;
  }
  // A stream cut short can end without a read error; zlib then reports it here.
  int code = Z_OK;
  std::string msg = gzerror(f, &code);
  int close_rc = gzclose(f);
  EMBER_CHECK(code == Z_OK || code == Z_STREAM_END,
              "read_gz_file: '" << path << "' is corrupt or truncated (zlib: " << msg << ")");
  EMBER_CHECK(close_rc == Z_OK, "read_gz_file: '" << path << "' failed its gzip check (code " << close_rc << ")");
  return out;
}

namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// "a x b x c" from the header's sizes, for messages.
std::string dims_text(const std::vector<uint8_t>& bytes, int ndims) {
  std::string t;
  for (int d = 0; d < ndims; ++d) t += (d ? " x " : "") + std::to_string(be32(bytes.data() + 4 + 4 * d));
  return t;
}

// Validates the header of an unsigned-byte IDX file with `ndims` dimensions and the total size;
// returns the dimensions.
std::vector<int64_t> check_idx(const std::vector<uint8_t>& bytes, int ndims, const std::string& path) {
  EMBER_CHECK(bytes.size() >= 4, "IDX '" << path << "': truncated header (" << bytes.size() << " bytes)");
  uint32_t magic = be32(bytes.data());
  uint32_t want = 0x00000800u | uint32_t(ndims);
  EMBER_CHECK(magic == want, "IDX '" << path << "': magic 0x" << std::hex << magic << ", expected 0x" << want
                                     << " (unsigned bytes, " << std::dec << ndims << " dims)");
  EMBER_CHECK(bytes.size() >= 4 + 4 * size_t(ndims),
              "IDX '" << path << "': truncated header (" << bytes.size() << " bytes)");
  std::vector<int64_t> dims(ndims);
  // Every product is checked: four 32-bit sizes can wrap 64 bits and pass the size check below.
  uint64_t expected = 4 + 4 * uint64_t(ndims);
  uint64_t payload = 1;
  for (int d = 0; d < ndims; ++d) {
    dims[d] = be32(bytes.data() + 4 + 4 * d);
    EMBER_CHECK(!__builtin_mul_overflow(payload, uint64_t(dims[d]), &payload) &&
                    !__builtin_add_overflow(payload, 4 + 4 * uint64_t(ndims), &expected),
                "IDX '" << path << "': header sizes " << dims_text(bytes, ndims) << " describe more than 2^64 bytes");
  }
  EMBER_CHECK(bytes.size() >= expected, "IDX '" << path << "': truncated, header promises " << expected
                                                << " bytes, file has " << bytes.size());
  EMBER_CHECK(bytes.size() == expected, "IDX '" << path << "': " << bytes.size() - expected
                                                << " trailing bytes after the " << expected << " the header describes");
  return dims;
}

}  // namespace

IdxImages read_idx_images(const std::string& path) { return parse_idx_images(read_gz_file(path), path); }

std::vector<int32_t> read_idx_labels(const std::string& path) { return parse_idx_labels(read_gz_file(path), path); }

IdxImages parse_idx_images(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::vector<int64_t> dims = check_idx(bytes, 3, path);
  IdxImages im;
  im.n = dims[0];
  im.rows = static_cast<int>(dims[1]);
  im.cols = static_cast<int>(dims[2]);
  EMBER_CHECK(im.rows > 0 && im.cols > 0, "IDX '" << path << "': empty images " << im.rows << "x" << im.cols);
  im.pixels.assign(bytes.begin() + 16, bytes.end());
  return im;
}

std::vector<int32_t> parse_idx_labels(const std::vector<uint8_t>& bytes, const std::string& path) {
  check_idx(bytes, 1, path);
  return std::vector<int32_t>(bytes.begin() + 8, bytes.end());
}

MnistSplit load_fashion_mnist(const std::string& dir, bool train) {
  std::string prefix = dir + "/" + (train ? "train" : "t10k");
  std::string images_path = prefix + "-images-idx3-ubyte.gz", labels_path = prefix + "-labels-idx1-ubyte.gz";
  MnistSplit s;
  s.images = read_idx_images(images_path);
  s.labels = read_idx_labels(labels_path);
  EMBER_CHECK(s.images.rows == 28 && s.images.cols == 28,
              "load_fashion_mnist: '" << images_path << "' holds " << s.images.rows << "x" << s.images.cols
                                      << " images, expected 28x28");
  EMBER_CHECK(int64_t(s.labels.size()) == s.images.n, "load_fashion_mnist: " << s.images.n << " images in '"
                                                          << images_path << "' but " << s.labels.size()
                                                          << " labels in '" << labels_path << "'");
  for (size_t i = 0; i < s.labels.size(); ++i)
    EMBER_CHECK(s.labels[i] >= 0 && s.labels[i] <= 9,
                "load_fashion_mnist: label " << s.labels[i] << " at index " << i << " of '" << labels_path
                                             << "', expected 0..9");
  return s;
}

float scale_pixel(uint8_t v, PixelScale scale) {
  switch (scale) {
    case PixelScale::MinusOneOne: return float(v) / 127.5f - 1.0f;
    case PixelScale::ZeroOne: return float(v) / 255.0f;
    case PixelScale::Standardized: return (float(v) / 255.0f - kFashionMnistMean) / kFashionMnistStd;
  }
  return 0.0f;
}

void mnist_to_float(const uint8_t* image, int rows, int cols, const MnistFormat& fmt, float* out) {
  const int s = fmt.size;
  EMBER_CHECK(s >= rows && s >= cols && (s - rows) % 2 == 0 && (s - cols) % 2 == 0,
              "mnist_to_float: cannot centre " << rows << "x" << cols << " in " << s << "x" << s);
  // Lookup table: 256 entries instead of a division per pixel.
  float lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = scale_pixel(uint8_t(v), fmt.scale);
  const int py = (s - rows) / 2, px = (s - cols) / 2;
  for (int i = 0; i < s * s; ++i) out[i] = lut[0];
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x) out[(y + py) * s + x + px] = lut[image[y * cols + x]];
}

std::vector<float> mnist_float_batch(const MnistSplit& split, const std::vector<int64_t>& indices,
                                     const MnistFormat& fmt, std::vector<int32_t>* labels) {
  const int64_t per = int64_t(fmt.size) * fmt.size, im = int64_t(split.images.rows) * split.images.cols;
  std::vector<float> out(indices.size() * per);
  if (labels) labels->resize(indices.size());
  for (size_t b = 0; b < indices.size(); ++b) {
    int64_t i = indices[b];
    EMBER_CHECK(i >= 0 && i < split.size(), "mnist_float_batch: index " << i << " outside [0, " << split.size() << ")");
    mnist_to_float(split.images.pixels.data() + i * im, split.images.rows, split.images.cols, fmt,
                   out.data() + b * per);
    if (labels) (*labels)[b] = split.labels[i];
  }
  return out;
}

MnistDataset::MnistDataset(std::shared_ptr<const MnistSplit> split, MnistFormat fmt)
    : split_(std::move(split)), fmt_(fmt) {
  EMBER_CHECK(split_ && split_->size() > 0, "MnistDataset: empty split");
  EMBER_CHECK(fmt_.size >= split_->images.rows && (fmt_.size - split_->images.rows) % 2 == 0,
              "MnistDataset: size " << fmt_.size << " cannot centre " << split_->images.rows << "x"
                                    << split_->images.cols << " images (use 28 or 32)");
}

int32_t MnistDataset::label(int64_t i) const { return split_->labels[i]; }

void MnistDataset::load(int64_t i, uint64_t, float* out) const {
  EMBER_CHECK(i >= 0 && i < size(), "MnistDataset::load: index " << i << " outside [0, " << size() << ")");
  const IdxImages& im = split_->images;
  mnist_to_float(im.pixels.data() + i * int64_t(im.rows) * im.cols, im.rows, im.cols, fmt_, out);
}

}  // namespace ember::data
