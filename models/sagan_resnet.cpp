// The official (ResNet) SAGAN generator and discriminator (see sagan_resnet.h).
#include "models/sagan_resnet.h"
#include "models/config_json.h"

#include <nlohmann/json.hpp>

#include "core/ops.h"

namespace ember::models {

namespace {
void check_config(const SaganResNetConfig& c) {
  stages_for(c.resolution, "SAGAN-ResNet");
  EMBER_CHECK(c.image_channels == 1 || c.image_channels == 3,
              "SAGAN-ResNet: image_channels must be 1 or 3, got " << c.image_channels);
  EMBER_CHECK(c.base > 0 && c.z_dim > 0, "SAGAN-ResNet: base and z_dim must be positive, got " << c.base << ", "
                                                                                               << c.z_dim);
}
std::shared_ptr<Conv2d> sn_conv(int64_t in, int64_t out, int k, Generator& gen) {
  return spectral_norm(std::make_shared<Conv2d>(in, out, k, 1, k / 2, gen), gen);
}
}  // namespace

std::string SaganResNetConfig::to_json() const {
  nlohmann::json j = {{"model", "sagan_resnet"}, {"resolution", resolution}, {"base", base}, {"z_dim", z_dim},
                      {"image_channels", image_channels}, {"attention", attention_variant_name(attention)}};
  return j.dump();
}

SaganResNetConfig SaganResNetConfig::from_json(const std::string& s) {
  SaganResNetConfig c;
  try {
    nlohmann::json j = nlohmann::json::parse(s);
    c.resolution = json_int(j, "resolution", c.resolution, "SaganResNetConfig::from_json");
    c.base = json_int(j, "base", c.base, "SaganResNetConfig::from_json");
    c.z_dim = json_int(j, "z_dim", c.z_dim, "SaganResNetConfig::from_json");
    c.image_channels = json_int(j, "image_channels", c.image_channels, "SaganResNetConfig::from_json");
    c.attention = parse_attention_variant(j.value("attention", std::string("official")));
  } catch (const nlohmann::json::exception& e) {
    EMBER_FAIL("SaganResNetConfig::from_json: " << e.what() << " in " << s);
  }
  check_config(c);
  return c;
}

// ---- blocks ---------------------------------------------------------------------------------

ResBlockUp::ResBlockUp(int64_t in, int64_t out, Generator& gen) {
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(in));
  conv1 = register_module("conv1", sn_conv(in, out, 3, gen));
  bn2 = register_module("bn2", std::make_shared<BatchNorm2d>(out));
  conv2 = register_module("conv2", sn_conv(out, out, 3, gen));
  shortcut = register_module("shortcut", sn_conv(in, out, 1, gen));
}

Tensor ResBlockUp::forward(const Tensor& x) {
  Tensor h = (*conv1)(ops::upsample2x(ops::relu((*bn1)(x))));
  h = (*conv2)(ops::relu((*bn2)(h)));
  return ops::add(h, (*shortcut)(ops::upsample2x(x)));
}

ResBlockDown::ResBlockDown(int64_t in, int64_t out, bool ds, bool fst, Generator& gen) : downsample(ds), first(fst) {
  EMBER_CHECK(!fst || ds, "ResBlockDown: the first block always downsamples");
  conv1 = register_module("conv1", sn_conv(in, out, 3, gen));
  conv2 = register_module("conv2", sn_conv(out, out, 3, gen));
  if (ds || in != out) shortcut = register_module("shortcut", sn_conv(in, out, 1, gen));
}

Tensor ResBlockDown::forward(const Tensor& x) {
  Tensor h = (*conv1)(first ? x : ops::relu(x));
  h = (*conv2)(ops::relu(h));
  if (downsample) h = ops::avg_pool2x2(h);
  Tensor s = x;
  if (first) {
    s = (*shortcut)(ops::avg_pool2x2(x));
  } else if (shortcut) {
    s = (*shortcut)(x);
    if (downsample) s = ops::avg_pool2x2(s);
  }
  return ops::add(h, s);
}

// ---- generator ------------------------------------------------------------------------------

namespace {
// Channel multipliers of the 128x128 model from 4x4 up: fc output, then each block's output.
const int64_t kGenMult[] = {16, 16, 8, 4, 2, 1};
const int64_t kDiscMult[] = {1, 2, 4, 8, 16};
}  // namespace

SaganResNetGenerator::SaganResNetGenerator(const SaganResNetConfig& c, Generator& gen) : cfg(c) {
  check_config(c);
  const int n_up = stages_for(c.resolution, "SAGAN-ResNet");
  const int skip = 5 - n_up;  // blocks dropped at the low-resolution end
  c0 = c.base * kGenMult[skip];
  fc = register_module("fc", spectral_norm(std::make_shared<Linear>(c.z_dim, 16 * c0, gen), gen));
  blocks = register_module("blocks", std::make_shared<ModuleList>());
  int64_t ch = c0;
  attn_after = -1;
  for (int i = 0, r = 8; i < n_up; ++i, r *= 2) {
    const int64_t next = c.base * kGenMult[skip + 1 + i];
    blocks->push_back(std::make_shared<ResBlockUp>(ch, next, gen));
    ch = next;
    if (r == c.attention_resolution()) {
      attn_after = i;
      attn = register_module("attn", std::make_shared<SelfAttention>(ch, c.attention, gen));
    }
  }
  bn = register_module("bn", std::make_shared<BatchNorm2d>(ch));
  out = register_module("out", sn_conv(ch, c.image_channels, 3, gen));
  init_xavier(*this, gen);
}

Tensor SaganResNetGenerator::forward(const Tensor& z) {
  EMBER_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg.z_dim,
              "SaganResNetGenerator: z must be [B, " << cfg.z_dim << "], got "
                                                     << (z.defined() ? z.shape().str() : "undefined"));
  spectral_norm_step_all(*this);  // every layer's power iteration in one go
  Tensor x = (*fc)(z).reshape({z.size(0), c0, 4, 4});
  for (size_t i = 0; i < blocks->size(); ++i) {
    x = (*(*blocks)[i])(x);
    if (static_cast<int>(i) == attn_after) x = (*attn)(x);
  }
  return ops::tanh((*out)(ops::relu((*bn)(x))));
}

// ---- discriminator --------------------------------------------------------------------------

SaganResNetDiscriminator::SaganResNetDiscriminator(const SaganResNetConfig& c, Generator& gen) : cfg(c) {
  check_config(c);
  const int n_down = stages_for(c.resolution, "SAGAN-ResNet");
  blocks = register_module("blocks", std::make_shared<ModuleList>());
  int64_t ch = c.image_channels;
  attn_after = -1;
  for (int i = 0, r = c.resolution / 2; i < n_down; ++i, r /= 2) {
    const int64_t next = c.base * kDiscMult[i];
    blocks->push_back(std::make_shared<ResBlockDown>(ch, next, true, i == 0, gen));
    ch = next;
    if (r == c.attention_resolution()) {
      attn_after = i;
      attn = register_module("attn", std::make_shared<SelfAttention>(ch, c.attention, gen));
    }
  }
  blocks->push_back(std::make_shared<ResBlockDown>(ch, ch, false, false, gen));
  fc = register_module("fc", spectral_norm(std::make_shared<Linear>(ch, 1, gen), gen));
  init_xavier(*this, gen);
}

Tensor SaganResNetDiscriminator::forward(const Tensor& x) {
  EMBER_CHECK(x.defined() && x.dim() == 4 && x.size(1) == cfg.image_channels && x.size(2) == cfg.resolution &&
                  x.size(3) == cfg.resolution,
              "SaganResNetDiscriminator: input must be [B, " << cfg.image_channels << ", " << cfg.resolution << ", "
                                                            << cfg.resolution << "], got "
                                                            << (x.defined() ? x.shape().str() : "undefined"));
  spectral_norm_step_all(*this);  // every layer's power iteration in one go
  Tensor h = x;
  for (size_t i = 0; i < blocks->size(); ++i) {
    h = (*(*blocks)[i])(h);
    if (static_cast<int>(i) == attn_after) h = (*attn)(h);
  }
  return (*fc)(ops::sum(ops::relu(h), {2, 3}));
}

}  // namespace ember::models
