// PNG grids and attention heat-map figures (see image_io.h).
#include "examples/common/image_io.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "stb_image_write.h"

namespace ember::data {

uint8_t to_byte(float v) {
  float b = std::round((v + 1.0f) * 127.5f);
  if (!(b >= 0.0f)) return 0;  // also NaN, whose cast would be undefined
  return static_cast<uint8_t>(std::min(b, 255.0f));
}

void write_png(const std::string& path, int w, int h, int channels, const uint8_t* pixels) {
  EMBER_CHECK(w > 0 && h > 0 && channels >= 1 && channels <= 4,
              "write_png: '" << path << "': bad image " << w << "x" << h << "x" << channels);
  const std::string tmp = path + ".tmp";
  errno = 0;
  if (!stbi_write_png(tmp.c_str(), w, h, channels, pixels, w * channels)) {
    int err = errno;
    std::remove(tmp.c_str());
    EMBER_FAIL("write_png: cannot write '" << path << "' (via '" << tmp << "'): "
                                           << (err ? std::strerror(err) : "stb_image_write failed"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    EMBER_FAIL("write_png: cannot rename '" << tmp << "' to '" << path << "': " << std::strerror(err));
  }
}

void write_png_grid(const std::string& path, const float* images, int n, int c, int h, int w, int nrow, int padding) {
  EMBER_CHECK(n >= 1 && (c == 1 || c == 3) && h >= 1 && w >= 1,
              "write_png_grid: '" << path << "': images [" << n << ", " << c << ", " << h << ", " << w
                                  << "], expected [n>=1, 1 or 3, h, w]");
  EMBER_CHECK(nrow >= 1 && padding >= 0, "write_png_grid: nrow " << nrow << " padding " << padding);
  const int cols = std::min(n, nrow), rows = (n + cols - 1) / cols;
  const int W = cols * (w + padding) + padding, H = rows * (h + padding) + padding;
  std::vector<uint8_t> canvas(size_t(W) * H * c, 0);
  for (int i = 0; i < n; ++i) {
    const int oy = padding + (i / cols) * (h + padding), ox = padding + (i % cols) * (w + padding);
    const float* img = images + int64_t(i) * c * h * w;
    for (int ch = 0; ch < c; ++ch)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          canvas[(size_t(oy + y) * W + ox + x) * c + ch] = to_byte(img[(int64_t(ch) * h + y) * w + x]);
  }
  write_png(path, W, H, c, canvas.data());
}

void write_png_grid(const std::string& path, const Tensor& images, int nrow, int padding) {
  EMBER_CHECK(images.dim() == 4, "write_png_grid: '" << path << "': expected [n, c, h, w], got " << images.shape());
  std::vector<float> v = images.to_vector();
  write_png_grid(path, v.data(), int(images.size(0)), int(images.size(1)), int(images.size(2)), int(images.size(3)),
                 nrow, padding);
}

Rgb heat_color(float t) {
  // Hand-picked stops; luminance (Rec. 709) 0, 33, 75, 148, 246.
  static const float stops[5][3] = {{0, 0, 0}, {60, 15, 120}, {180, 40, 110}, {245, 130, 40}, {255, 250, 190}};
  if (!(t > 0.0f)) t = 0.0f;  // also catches NaN
  t = std::min(t, 1.0f) * 4.0f;
  int k = std::min(int(t), 3);
  float f = t - float(k);
  auto mix = [&](int j) { return uint8_t(std::lround(stops[k][j] + f * (stops[k + 1][j] - stops[k][j]))); };
  return Rgb{mix(0), mix(1), mix(2)};
}

namespace {

// Query marker colours, chosen to stand out on photos and on the heat ramp.
const Rgb kQueryColors[] = {{0, 220, 255}, {60, 255, 60}, {40, 90, 255}, {255, 255, 255}, {255, 0, 200}, {0, 150, 150}};

struct Canvas {
  int W, H;
  std::vector<uint8_t> px;  // [H, W, 3]
  Canvas(int w, int h) : W(w), H(h), px(size_t(w) * h * 3, 0) {}
  void set(int x, int y, Rgb c) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    uint8_t* p = &px[(size_t(y) * W + x) * 3];
    p[0] = c.r, p[1] = c.g, p[2] = c.b;
  }
  void fill(int x0, int y0, int w, int h, Rgb c) {
    for (int y = y0; y < y0 + h; ++y)
      for (int x = x0; x < x0 + w; ++x) set(x, y, c);
  }
  // A filled square of side 5 with a black outline: visible at any zoom and on any background.
  void marker(int cx, int cy, Rgb c) {
    fill(cx - 3, cy - 3, 7, 7, Rgb{0, 0, 0});
    fill(cx - 2, cy - 2, 5, 5, c);
  }
};

}  // namespace

void write_attention_png(const std::string& path, const float* image, int c, int h, int w,
                         const std::vector<AttentionMap>& maps, int zoom) {
  EMBER_CHECK((c == 1 || c == 3) && h >= 1 && w >= 1 && zoom >= 1,
              "write_attention_png: '" << path << "': image [" << c << ", " << h << ", " << w << "] zoom " << zoom
                                       << ", expected 1 or 3 channels and zoom >= 1");
  for (size_t m = 0; m < maps.size(); ++m) {
    const AttentionMap& a = maps[m];
    EMBER_CHECK(a.grid_h >= 1 && a.grid_w >= 1 && a.weights.size() == size_t(a.grid_h) * a.grid_w,
                "write_attention_png: map " << m << " has " << a.weights.size() << " weights for a " << a.grid_h
                                            << "x" << a.grid_w << " grid");
    EMBER_CHECK(a.query_y >= 0 && a.query_y < h && a.query_x >= 0 && a.query_x < w,
                "write_attention_png: map " << m << " query (" << a.query_y << ", " << a.query_x
                                            << ") outside the " << h << "x" << w << " image");
  }
  const int Z = zoom, frame = 2, pw = w * Z + 2 * frame, ph = h * Z + 2 * frame;
  Canvas cv(pw * int(1 + maps.size()), ph);
  auto color_of = [&](size_t m) { return kQueryColors[m % (sizeof(kQueryColors) / sizeof(kQueryColors[0]))]; };
  // Panel 0: the image.
  for (int y = 0; y < h * Z; ++y)
    for (int x = 0; x < w * Z; ++x) {
      const int sy = y / Z, sx = x / Z;
      auto at = [&](int ch) { return to_byte(image[(int64_t(ch) * h + sy) * w + sx]); };
      cv.set(frame + x, frame + y, c == 3 ? Rgb{at(0), at(1), at(2)} : Rgb{at(0), at(0), at(0)});
    }
  // Panels 1..m: each map, normalised by its maximum.
  for (size_t m = 0; m < maps.size(); ++m) {
    const AttentionMap& a = maps[m];
    const int ox = pw * int(m + 1);
    float mx = *std::max_element(a.weights.begin(), a.weights.end());
    const float inv = mx > 0.0f ? 1.0f / mx : 0.0f;
    cv.fill(ox, 0, pw, ph, color_of(m));
    for (int y = 0; y < h * Z; ++y)
      for (int x = 0; x < w * Z; ++x) {
        const int gy = int(int64_t(y / Z) * a.grid_h / h), gx = int(int64_t(x / Z) * a.grid_w / w);
        cv.set(ox + frame + x, frame + y, heat_color(a.weights[size_t(gy) * a.grid_w + gx] * inv));
      }
  }
  for (size_t m = 0; m < maps.size(); ++m) {
    const int qx = frame + maps[m].query_x * Z + Z / 2, qy = frame + maps[m].query_y * Z + Z / 2;
    cv.marker(qx, qy, color_of(m));
    cv.marker(pw * int(m + 1) + qx, qy, color_of(m));
  }
  write_png(path, cv.W, cv.H, 3, cv.px.data());
}

}  // namespace ember::data
