// PNG output for the examples: a grid of samples, and the SAGAN-style attention figure (an image
// with its query points marked beside each query's attention map as a heat map).
// Every file is written to "<path>.tmp" and renamed, so a reader never sees half a PNG.
// Failures throw ember::Error naming the path.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ember::data {

// [-1, 1] -> 0..255 (rounded, clamped).
uint8_t to_byte(float v);

// Writes h x w pixels of `channels` (1, 3 or 4) interleaved bytes as a PNG.
void write_png(const std::string& path, int w, int h, int channels, const uint8_t* pixels);

// A grid of n images [n, c, h, w] (c = 1 or 3, values in [-1, 1]): `nrow` images per row
// (torchvision's make_grid convention), `padding` black pixels around and between images.
// The PNG is (ceil(n / nrow) * (h + padding) + padding) high, (min(n, nrow) * (w + padding) + padding) wide.
void write_png_grid(const std::string& path, const float* images, int n, int c, int h, int w, int nrow = 8,
                    int padding = 2);
void write_png_grid(const std::string& path, const Tensor& images, int nrow = 8, int padding = 2);

struct Rgb {
  uint8_t r, g, b;
};
// The heat-map ramp: t in [0, 1] (clamped) from black through purple, red and orange to pale
// yellow; luminance increases monotonically, so brighter always means more attention.
Rgb heat_color(float t);

// One attention map: weights over a grid_h x grid_w attention grid (row-major), for the query
// at image pixel (query_y, query_x).
struct AttentionMap {
  std::vector<float> weights;  // [grid_h * grid_w]
  int grid_h = 0, grid_w = 0;
  int query_y = 0, query_x = 0;
};

// Writes [image | map 1 | map 2 | ...] side by side: the image (CHW, c = 1 or 3, in [-1, 1]) with
// every query point marked in its own colour, then each map normalised to its own maximum,
// upsampled (nearest) to h x w and coloured with heat_color, its query marked and its panel
// framed in the query's colour. `zoom` enlarges the whole figure by an integer factor (small
// images such as 32x32).
void write_attention_png(const std::string& path, const float* image, int c, int h, int w,
                         const std::vector<AttentionMap>& maps, int zoom = 1);

}  // namespace ember::data
