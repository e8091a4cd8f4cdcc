// The article's SAGAN generator and discriminator (see sagan.h).
#include "models/sagan.h"
#include "models/config_json.h"

#include <nlohmann/json.hpp>

#include "core/ops.h"

namespace ember::models {

namespace {
void check_config(const SaganConfig& c) {
  stages_for(c.resolution, "SAGAN");
  EMBER_CHECK(c.image_channels == 1 || c.image_channels == 3,
              "SAGAN: image_channels must be 1 or 3, got " << c.image_channels);
  EMBER_CHECK(c.z_dim > 0, "SAGAN: z_dim must be positive, got " << c.z_dim);
}
// Channels at resolution r (both networks): 512 at 4x4, halving per doubling (16 at 128x128).
int64_t channels_at(const SaganConfig& c, int r) { return scaled(2048 / r, c.width); }
}  // namespace

std::string SaganConfig::to_json() const {
  nlohmann::json j = {{"model", "sagan"},         {"resolution", resolution},
                      {"width", width},           {"z_dim", z_dim},
                      {"image_channels", image_channels}, {"attention", attention_variant_name(attention)},
                      {"d_slope", d_slope}};
  return j.dump();
}

SaganConfig SaganConfig::from_json(const std::string& s) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(s);
  } catch (const std::exception& e) {
    EMBER_FAIL("SaganConfig::from_json: not JSON (" << e.what() << "): " << s);
  }
  SaganConfig c;
  try {
    c.resolution = json_int(j, "resolution", c.resolution, "SaganConfig::from_json");
    c.width = json_float(j, "width", c.width, "SaganConfig::from_json");
    c.z_dim = json_int(j, "z_dim", c.z_dim, "SaganConfig::from_json");
    c.image_channels = json_int(j, "image_channels", c.image_channels, "SaganConfig::from_json");
    c.attention = parse_attention_variant(j.value("attention", std::string("article")));
    c.d_slope = json_float(j, "d_slope", c.d_slope, "SaganConfig::from_json");
  } catch (const nlohmann::json::exception& e) {
    EMBER_FAIL("SaganConfig::from_json: bad field (" << e.what() << "): " << s);
  }
  check_config(c);
  return c;
}

SaganGenerator::SaganGenerator(const SaganConfig& c, Generator& gen) : cfg(c) {
  check_config(c);
  const int n_up = stages_for(c.resolution, "SAGAN");
  c0 = channels_at(c, 4);
  fc = register_module("fc", spectral_norm(std::make_shared<Linear>(c.z_dim, 16 * c0, gen, false), gen));
  bn0 = register_module("bn0", std::make_shared<BatchNorm2d>(c0));
  ups = register_module("ups", std::make_shared<ModuleList>());
  int64_t ch = c0;
  attn_after = -1;
  for (int i = 0, r = 8; i < n_up; ++i, r *= 2) {
    const int64_t next = channels_at(c, r);
    ups->push_back(std::make_shared<UpStage>(
        spectral_norm(std::make_shared<ConvTranspose2d>(ch, next, 4, 2, 1, gen, false), gen), next));
    ch = next;
    if (r == c.attention_resolution()) {
      attn_after = i;
      attn = register_module("attn", std::make_shared<SelfAttention>(ch, c.attention, gen));
    }
  }
  out = register_module("out", spectral_norm(std::make_shared<Conv2d>(ch, c.image_channels, 3, 1, 1, gen), gen));
}

Tensor SaganGenerator::forward(const Tensor& z) {
  EMBER_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg.z_dim,
              "SaganGenerator: z must be [B, " << cfg.z_dim << "], got " << (z.defined() ? z.shape().str() : "undefined"));
  spectral_norm_step_all(*this);  // every layer's power iteration in one go
  Tensor x = (*fc)(z).reshape({z.size(0), c0, 4, 4});
  x = ops::relu((*bn0)(x));
  for (size_t i = 0; i < ups->size(); ++i) {
    x = (*(*ups)[i])(x);
    if (static_cast<int>(i) == attn_after) x = (*attn)(x);
  }
  return ops::tanh((*out)(x));
}

SaganDiscriminator::SaganDiscriminator(const SaganConfig& c, Generator& gen) : cfg(c) {
  check_config(c);
  const int n_down = stages_for(c.resolution, "SAGAN");
  downs = register_module("downs", std::make_shared<ModuleList>());
  int64_t ch = c.image_channels;
  attn_after = -1;
  for (int i = 0, r = c.resolution / 2; i < n_down; ++i, r /= 2) {
    const int64_t next = channels_at(c, r);
    downs->push_back(spectral_norm(std::make_shared<Conv2d>(ch, next, 4, 2, 1, gen), gen));
    ch = next;
    if (r == c.attention_resolution()) {
      attn_after = i;
      attn = register_module("attn", std::make_shared<SelfAttention>(ch, c.attention, gen));
    }
  }
  fc = register_module("fc", spectral_norm(std::make_shared<Linear>(ch * 16, 1, gen), gen));
}

Tensor SaganDiscriminator::forward(const Tensor& x) {
  EMBER_CHECK(x.defined() && x.dim() == 4 && x.size(1) == cfg.image_channels && x.size(2) == cfg.resolution &&
                  x.size(3) == cfg.resolution,
              "SaganDiscriminator: input must be [B, " << cfg.image_channels << ", " << cfg.resolution << ", "
                                                      << cfg.resolution << "], got "
                                                      << (x.defined() ? x.shape().str() : "undefined"));
  spectral_norm_step_all(*this);  // every layer's power iteration in one go
  Tensor h = x;
  for (size_t i = 0; i < downs->size(); ++i) {
    h = ops::leaky_relu((*(*downs)[i])(h), cfg.d_slope);
    if (static_cast<int>(i) == attn_after) h = (*attn)(h);
  }
  return (*fc)(h.flatten(1));
}

}  // namespace ember::models
