// ImageFolder: every .jpg/.jpeg/.png under a folder (recursive, case-insensitive extensions,
// sorted by path for determinism) as a Dataset of square CHW float images in [-1, 1]:
// decode (stb_image) -> centre square crop -> area resize (stb_image_resize, box filter) ->
// optional horizontal flip -> scale.
//
// Unreadable files (corrupt, truncated, unsupported): the constructor decodes files in sorted
// order until one decodes, so a folder with no readable image throws before training starts.
// The other files are only decoded when loaded: a file that fails then is reported with one
// warning line on stderr (once per file), counted in skipped(), and replaced by the next file in
// sorted order that decodes. Since which files decode is a property of the files, the
// replacement is the same whatever the thread timing.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "examples/common/loader.h"

namespace ember::data {

struct ImageFolderOptions {
  int size = 128;            // output height = width (e.g. 128, 64, 32)
  int crop = 178;            // side of the centre square cut before resizing (178: CelebA aligned
                             // 178x218 -> its central 178x178); clamped to the image's shorter side,
                             // 0 = the largest centred square
  int channels = 3;          // 3 (RGB) or 1 (grey); any file is converted
  bool random_flip = false;  // mirror horizontally when bit 0 of the sample's rng word is set
};

// The .jpg/.jpeg/.png files under `root`, recursively, sorted by path. Throws ember::Error if
// `root` is missing or not a folder.
std::vector<std::string> scan_image_files(const std::string& root);

// The pixel pipeline after decoding: `pixels` is h x w x opt.channels bytes (HWC); writes
// opt.channels x opt.size x opt.size floats (CHW) in [-1, 1] to `out`.
void crop_resize_to_chw(const uint8_t* pixels, int w, int h, const ImageFolderOptions& opt, bool flip, float* out);

// The largest image decoded, in pixels. A header claiming more is refused before decoding:
// a PNG of 69 bytes claiming 16000 x 16000 pixels would otherwise allocate 768 MB.
constexpr int64_t kMaxImagePixels = int64_t(1) << 25;  // 33.5 M, e.g. 5792 x 5792
// The largest image file read (the file is read whole before its header is checked).
constexpr uintmax_t kMaxImageFileBytes = uintmax_t(1) << 28;  // 256 MB

// A decoded image: h x w x channels bytes (HWC), freed by stb_image.
struct DecodedImage {
  int w = 0, h = 0, channels = 0;
  std::unique_ptr<uint8_t, void (*)(void*)> pixels{nullptr, nullptr};
};

// Decodes an in-memory JPEG or PNG (any channel count or bit depth) to `channels` (1 or 3)
// 8-bit channels. Returns false (and the reason in *why) if stb_image cannot decode it or its
// header claims more than kMaxImagePixels pixels.
bool decode_image(const uint8_t* data, size_t size, int channels, DecodedImage* out, std::string* why = nullptr);

// Reads and decodes `path` and runs crop_resize_to_chw. Returns false (and the reason in *why)
// if the file cannot be read or decoded.
bool load_image_file(const std::string& path, const ImageFolderOptions& opt, bool flip, float* out,
                     std::string* why = nullptr);

class ImageFolder : public Dataset {
 public:
  // Throws ember::Error if `root` is missing, holds no image file, or no file decodes.
  explicit ImageFolder(const std::string& root, ImageFolderOptions opt = {});

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int channels() const override { return opt_.channels; }
  int height() const override { return opt_.size; }
  int width() const override { return opt_.size; }
  void load(int64_t i, uint64_t rng_word, float* out) const override;

  const std::string& path(int64_t i) const { return files_.at(static_cast<size_t>(i)); }
  const std::string& root() const { return root_; }
  // Number of distinct files found unreadable so far (at construction or when loaded).
  int64_t skipped() const;

 private:
  void mark_bad(int64_t i, const std::string& why) const;
  bool known_bad(int64_t i) const;

  std::string root_;
  ImageFolderOptions opt_;
  std::vector<std::string> files_;
  mutable std::mutex mu_;
  mutable std::vector<uint8_t> bad_;  // [size()] 1 once a file failed to decode
  mutable int64_t skipped_ = 0;
};

}  // namespace ember::data
