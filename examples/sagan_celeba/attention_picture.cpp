// The attention picture (see attention_picture.h).
#include "examples/sagan_celeba/attention_picture.h"

#include <utility>
#include <vector>

#include "core/ops.h"
#include "examples/common/image_io.h"

using namespace ember;

namespace sagan_example {

void write_attention_picture(SelfAttention& attn, const Tensor& images, const std::string& path) {
  Tensor feat = attn.last_input;  // [B, C, h, w]
  attn.keep_input = false;
  attn.last_input = Tensor();
  const int h = static_cast<int>(feat.size(2)), w = static_cast<int>(feat.size(3));
  // Four query pixels spread over the picture (as in the SAGAN paper's figure).
  std::vector<std::pair<int, int>> q = {{h / 4, w / 4}, {h / 4, 3 * w / 4}, {3 * h / 4, w / 4}, {3 * h / 4, 3 * w / 4}};
  std::vector<int64_t> pos;
  for (auto [y, x] : q) pos.push_back(int64_t(y) * w + x);
  Tensor one = ops::narrow(feat, 0, 1);
  std::vector<float> probs = attn.attention_map(one, pos).to_vector();  // [1, 4, M]
  const int64_t M = static_cast<int64_t>(probs.size()) / 4;
  const int gh = M == int64_t(h) * w ? h : h / 2, gw = M == int64_t(h) * w ? w : w / 2;  // official: pooled keys
  std::vector<data::AttentionMap> maps;
  for (size_t k = 0; k < q.size(); ++k) {
    data::AttentionMap m;
    m.weights.assign(probs.begin() + k * M, probs.begin() + (k + 1) * M);
    m.grid_h = gh, m.grid_w = gw;
    // Query coordinates in image pixels.
    m.query_y = static_cast<int>((q[k].first + 0.5) * images.size(2) / h);
    m.query_x = static_cast<int>((q[k].second + 0.5) * images.size(3) / w);
    maps.push_back(std::move(m));
  }
  std::vector<float> img = ops::narrow(images, 0, 1).to_vector();
  const int zoom = images.size(2) <= 32 ? 4 : images.size(2) <= 64 ? 2 : 1;
  data::write_attention_png(path, img.data(), static_cast<int>(images.size(1)),
                            static_cast<int>(images.size(2)), static_cast<int>(images.size(3)), maps, zoom);
}

}  // namespace sagan_example
