// Tests of the PNG output of the example data code (examples/common/image_io.h): the sample grid
// and the attention figure, read back with stb_image.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "examples/common/image_io.h"
#include "stb_image.h"
#include "tests/data_files.h"

namespace fs = std::filesystem;
using namespace ember;
using namespace ember::data;
using namespace ember::data_test;
using Catch::Matchers::Contains;

TEST_CASE("data: PNG grid reads back with the right size and pixels", "[data][png]") {
  TempDir dir("png");
  for (int c : {1, 3}) {
    INFO("channels " << c);
    const int n = 5, h = 4, w = 3, nrow = 2, pad = 2;
    std::vector<float> imgs(size_t(n * c * h * w));
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> U(-1.2f, 1.2f);  // includes values to clamp
    for (float& v : imgs) v = U(rng);
    const std::string path = dir / ("grid" + std::to_string(c) + ".png");
    write_png_grid(path, imgs.data(), n, c, h, w, nrow, pad);
    REQUIRE_FALSE(fs::exists(path + ".tmp"));
    int W = 0, H = 0, comp = 0;
    uint8_t* px = stbi_load(path.c_str(), &W, &H, &comp, 0);
    REQUIRE(px != nullptr);
    REQUIRE(W == nrow * (w + pad) + pad);
    REQUIRE(H == 3 * (h + pad) + pad);
    REQUIRE(comp == c);
    std::vector<int> covered(size_t(W * H), 0);
    for (int i = 0; i < n; ++i)
      for (int ch = 0; ch < c; ++ch)
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x) {
            const int gy = pad + (i / nrow) * (h + pad) + y, gx = pad + (i % nrow) * (w + pad) + x;
            const double v = std::clamp(double(imgs[size_t(((i * c + ch) * h + y) * w + x)]), -1.0, 1.0);
            const double want = std::round((v + 1) * 127.5);
            REQUIRE(std::abs(px[(gy * W + gx) * c + ch] - want) <= 0.5);
            covered[size_t(gy * W + gx)] = 1;
          }
    for (int k = 0; k < W * H; ++k)
      if (!covered[size_t(k)])
        for (int ch = 0; ch < c; ++ch) REQUIRE(px[k * c + ch] == 0);  // padding and the empty 6th cell
    stbi_image_free(px);
  }
  REQUIRE_THROWS_WITH(write_png_grid(dir / "no/such/dir/g.png", std::vector<float>(12, 0.f).data(), 1, 1, 3, 4),
                      Contains("no/such/dir/g.png"));
}

TEST_CASE("data: attention figure layout, heat colours and markers", "[data][png]") {
  TempDir dir("attn");
  // The ramp gets brighter monotonically and spans dark to light.
  double prev = -1;
  for (int k = 0; k <= 100; ++k) {
    Rgb c = heat_color(k / 100.0f);
    double lum = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
    REQUIRE(lum > prev);
    prev = lum;
  }
  REQUIRE(heat_color(0).r == 0);
  REQUIRE(prev > 230);

  const int c = 3, h = 16, w = 16, g = 8, zoom = 2;
  std::vector<float> img(size_t(c * h * w));
  for (size_t i = 0; i < img.size(); ++i) img[i] = float(i % 7) / 3.5f - 1.0f;
  std::vector<AttentionMap> maps(2);
  for (int m = 0; m < 2; ++m) {
    maps[size_t(m)].grid_h = maps[size_t(m)].grid_w = g;
    maps[size_t(m)].weights.resize(g * g);
    for (int k = 0; k < g * g; ++k) maps[size_t(m)].weights[size_t(k)] = float((k * (m + 3)) % 17) / 100.0f;
  }
  maps[0].query_y = 3, maps[0].query_x = 4;
  maps[1].query_y = 12, maps[1].query_x = 9;
  const std::string path = dir / "attn.png";
  write_attention_png(path, img.data(), c, h, w, maps, zoom);
  int W = 0, H = 0, comp = 0;
  uint8_t* px = stbi_load(path.c_str(), &W, &H, &comp, 3);
  REQUIRE(px != nullptr);
  const int pw = w * zoom + 4;
  REQUIRE(W == 3 * pw);
  REQUIRE(H == h * zoom + 4);
  // A map pixel far from the marker: the map cell's weight / the map's max through the ramp.
  const int m = 1, y = 2, x = 3;  // image pixel (2, 3) -> grid cell (1, 1)
  const float mx = *std::max_element(maps[1].weights.begin(), maps[1].weights.end());
  Rgb want = heat_color(maps[1].weights[size_t(1 * g + 1)] / mx);
  const uint8_t* p = px + ((2 + y * zoom) * W + (m + 1) * pw + 2 + x * zoom) * 3;
  REQUIRE(int(p[0]) == want.r);
  REQUIRE(int(p[1]) == want.g);
  REQUIRE(int(p[2]) == want.b);
  // The image panel keeps the image's pixels away from markers.
  const uint8_t* q = px + ((2 + 14 * zoom) * W + 2 + 1 * zoom) * 3;
  REQUIRE(int(q[0]) == to_byte(img[size_t(14 * w + 1)]));
  // Query 0's marker on the image: its centre has the marker colour, not the image's.
  const uint8_t* mk = px + ((2 + 3 * zoom + 1) * W + 2 + 4 * zoom + 1) * 3;
  REQUIRE((int(mk[0]) == 0 && int(mk[1]) == 220 && int(mk[2]) == 255));
  stbi_image_free(px);

  std::vector<AttentionMap> wrong = maps;
  wrong[0].weights.pop_back();
  REQUIRE_THROWS_WITH(write_attention_png(path, img.data(), c, h, w, wrong), Contains("63 weights"));
}
