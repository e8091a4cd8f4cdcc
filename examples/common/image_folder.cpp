// ImageFolder: scanning, decoding and the crop/resize/flip pipeline (see image_folder.h).
#include "examples/common/image_folder.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <memory>

#include "core/error.h"
#include "stb_image.h"
#include "stb_image_resize.h"

namespace fs = std::filesystem;

namespace ember::data {

namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

void check_options(const ImageFolderOptions& opt) {
  EMBER_CHECK(opt.channels == 1 || opt.channels == 3,
              "ImageFolder: channels " << opt.channels << ", expected 1 or 3");
  EMBER_CHECK(opt.size >= 1, "ImageFolder: size " << opt.size << ", expected >= 1");
  EMBER_CHECK(opt.crop >= 0, "ImageFolder: crop " << opt.crop << ", expected >= 0 (0 = largest square)");
}

}  // namespace

std::vector<std::string> scan_image_files(const std::string& root) {
  std::error_code ec;
  EMBER_CHECK(fs::exists(root, ec), "ImageFolder: the folder '" << root << "' does not exist");
  EMBER_CHECK(fs::is_directory(root, ec), "ImageFolder: '" << root << "' is not a folder");
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  EMBER_CHECK(!ec, "ImageFolder: cannot list '" << root << "': " << ec.message());
  for (; it != end; it.increment(ec)) {
    EMBER_CHECK(!ec, "ImageFolder: error while listing '" << root << "': " << ec.message());
    if (is_image_name(it->path()) && it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void crop_resize_to_chw(const uint8_t* pixels, int w, int h, const ImageFolderOptions& opt, bool flip, float* out) {
  const int ch = opt.channels, s = opt.size;
  int side = std::min(w, h);
  if (opt.crop > 0) side = std::min(side, opt.crop);
  const int x0 = (w - side) / 2, y0 = (h - side) / 2;
  const uint8_t* src = pixels + (int64_t(y0) * w + x0) * ch;
  std::vector<uint8_t> res(size_t(s) * s * ch);
  if (side == s) {
    for (int y = 0; y < s; ++y) std::copy_n(src + int64_t(y) * w * ch, size_t(s) * ch, res.data() + size_t(y) * s * ch);
  } else {
    // Box filter: averages the covered source area when shrinking (exact for integer ratios).
    int ok = stbir_resize_uint8_generic(src, side, side, w * ch, res.data(), s, s, 0, ch, STBIR_ALPHA_CHANNEL_NONE, 0,
                                        STBIR_EDGE_CLAMP, STBIR_FILTER_BOX, STBIR_COLORSPACE_LINEAR, nullptr);
    EMBER_CHECK(ok, "crop_resize_to_chw: stb_image_resize failed on " << side << "x" << side << " -> " << s << "x" << s);
  }
  for (int c = 0; c < ch; ++c)
    for (int y = 0; y < s; ++y)
      for (int x = 0; x < s; ++x) {
        int sx = flip ? s - 1 - x : x;
        out[(int64_t(c) * s + y) * s + x] = float(res[(size_t(y) * s + sx) * ch + c]) / 127.5f - 1.0f;
      }
}

namespace {

// stb_image 2.27 (Debian 12) writes past a 257-byte table when a JPEG huffman table (DHT) declares
// more than 256 codes (found by tests/fuzz/image.cpp; stbi__build_huffman): memory corruption
// from a hostile file, in stbi_info as well as in decoding. This refuses such files first. It
// reads each DHT as stb does, at every position where stb may: the markers of the headers
// (followed by their lengths, as stb skips them) and, from the first scan on, every FF C4 byte
// pair (stb resynchronises on markers inside entropy-coded data).
bool jpeg_huffman_tables_ok(const uint8_t* data, size_t size) {
  auto at = [&](size_t i) -> unsigned { return i < size ? data[i] : 0u; };  // stb reads 0 past the end
  // One DHT segment at p (its length field), table by table as stb_image reads it.
  auto dht_ok = [&](size_t p) {
    long left = long(at(p) << 8 | at(p + 1)) - 2;
    p += 2;
    while (left > 0 && p < size) {
      const unsigned q = at(p++);
      if ((q >> 4) > 1 || (q & 15) > 3) return true;  // stb stops here with an error: harmless
      long codes = 0;
      for (int i = 0; i < 16; ++i) codes += at(p++);
      if (codes > 256) return false;
      p += size_t(codes);
      left -= 17 + codes;
    }
    return true;
  };
  size_t i = 2;  // after SOI
  while (i < size) {
    if (data[i] != 0xFF) {  // stb skips stray bytes between segments one at a time
      ++i;
      continue;
    }
    while (i < size && data[i] == 0xFF) ++i;  // fill bytes
    if (i >= size) break;
    const unsigned m = data[i++];
    if (m == 0xD8 || m == 0xD9 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;  // no length
    if (m == 0xC4 && !dht_ok(i)) return false;
    if (m == 0xDA) break;  // first scan: from here on, check every FF C4
    i += size_t(at(i) << 8 | at(i + 1));
  }
  for (; i + 1 < size; ++i)
    if (data[i] == 0xFF && data[i + 1] == 0xC4 && !dht_ok(i + 2)) return false;
  return true;
}

// stb_image 2.27 passes a null pointer to memcpy (undefined behaviour) when a PNG's first IDAT
// chunk is empty (found by tests/fuzz/image.cpp). Encoders never write one; such files are refused.
bool png_first_idat_ok(const uint8_t* data, size_t size) {
  auto be32 = [&](size_t i) { return uint32_t(data[i]) << 24 | uint32_t(data[i + 1]) << 16 | uint32_t(data[i + 2]) << 8 | data[i + 3]; };
  for (size_t i = 8; i + 8 <= size;) {  // chunks: length, type, data, CRC
    const uint32_t len = be32(i);
    if (std::memcmp(data + i + 4, "IDAT", 4) == 0) return len != 0;
    if (uint64_t(len) + 12 > size - i) return true;  // truncated: stb refuses it itself
    i += size_t(len) + 12;
  }
  return true;
}

}  // namespace

bool decode_image(const uint8_t* data, size_t size, int channels, DecodedImage* out, std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  if (size > size_t(std::numeric_limits<int>::max())) return fail("file larger than 2 GB");
  const int len = int(size);
  // stb_image keeps its reason per thread (STBI_THREAD_LOCAL), so this is safe in workers. Some
  // failures leave it null or empty (found by tests/fuzz/image.cpp): a warning must still say why.
  auto stb_reason = [] {
    const char* r = stbi_failure_reason();
    return std::string(r && *r ? r : "stb_image cannot decode it (no reason given)");
  };
  if (size >= 2 && data[0] == 0xFF && data[1] == 0xD8 && !jpeg_huffman_tables_ok(data, size))
    return fail("corrupt JPEG: a huffman table declares more than 256 codes");
  if (size >= 8 && std::memcmp(data, "\x89PNG", 4) == 0 && !png_first_idat_ok(data, size))
    return fail("corrupt PNG: empty first IDAT chunk");
  int w = 0, h = 0, n = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &n)) return fail(stb_reason());
  if (w <= 0 || h <= 0 || int64_t(w) * h > kMaxImagePixels)
    return fail("header claims " + std::to_string(w) + " x " + std::to_string(h) + " pixels, more than the limit of " +
                std::to_string(kMaxImagePixels));
  DecodedImage im;
  im.pixels = {stbi_load_from_memory(data, len, &im.w, &im.h, &n, channels), stbi_image_free};
  if (!im.pixels) return fail(stb_reason());
  // The header was read twice: the decode must describe the image that was checked.
  if (im.w != w || im.h != h) return fail("decoded size differs from the header's");
  im.channels = channels;
  *out = std::move(im);
  return true;
}

bool load_image_file(const std::string& path, const ImageFolderOptions& opt, bool flip, float* out,
                     std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return fail("cannot read: " + ec.message());
  // Read whole into memory (to check the header before decoding): bound what that may take.
  if (size > kMaxImageFileBytes)
    return fail("file of " + std::to_string(size) + " bytes, more than the limit of " +
                std::to_string(kMaxImageFileBytes));
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail(std::string("cannot open: ") + std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return fail("read error");
  DecodedImage im;
  if (!decode_image(bytes.data(), bytes.size(), opt.channels, &im, why)) return false;
  crop_resize_to_chw(im.pixels.get(), im.w, im.h, opt, flip, out);
  return true;
}

ImageFolder::ImageFolder(const std::string& root, ImageFolderOptions opt) : root_(root), opt_(opt) {
  check_options(opt_);
  files_ = scan_image_files(root);
  EMBER_CHECK(!files_.empty(), "ImageFolder: no .jpg/.jpeg/.png files under '" << root << "'");
  bad_.assign(files_.size(), 0);
  // Decode until one file works: proves the folder is usable before any training starts.
  std::vector<float> probe(static_cast<size_t>(sample_numel()));
  std::string why;
  for (size_t i = 0; i < files_.size(); ++i) {
    if (load_image_file(files_[i], opt_, false, probe.data(), &why)) return;
    mark_bad(int64_t(i), why);
  }
  EMBER_FAIL("ImageFolder: none of the " << files_.size() << " image files under '" << root
                                         << "' could be decoded (last error: " << why << ")");
}

int64_t ImageFolder::skipped() const {
  std::lock_guard<std::mutex> lk(mu_);
  return skipped_;
}

bool ImageFolder::known_bad(int64_t i) const {
  std::lock_guard<std::mutex> lk(mu_);
  return bad_[size_t(i)] != 0;
}

void ImageFolder::mark_bad(int64_t i, const std::string& why) const {
  std::lock_guard<std::mutex> lk(mu_);
  if (bad_[size_t(i)]) return;  // another thread already reported it
  bad_[size_t(i)] = 1;
  ++skipped_;
  std::cerr << "ember: warning: skipping unreadable image '" << files_[size_t(i)] << "' (" << why << ")\n";
}

void ImageFolder::load(int64_t i, uint64_t rng_word, float* out) const {
  EMBER_CHECK(i >= 0 && i < size(), "ImageFolder::load: index " << i << " outside [0, " << size() << ")");
  const bool flip = opt_.random_flip && (rng_word & 1u);
  std::string why;
  // Try i, then the following files in sorted order; at least one decoded in the constructor.
  for (int64_t k = 0; k < size(); ++k) {
    int64_t j = (i + k) % size();
    if (known_bad(j)) continue;
    if (load_image_file(files_[size_t(j)], opt_, flip, out, &why)) return;
    mark_bad(j, why);
  }
  EMBER_FAIL("ImageFolder::load: no file under '" << root_ << "' decodes any more (last error: " << why << ")");
}

}  // namespace ember::data
