// DCGAN generator and discriminator (see dcgan.h).
#include "models/dcgan.h"
#include "models/config_json.h"

#include <nlohmann/json.hpp>

#include "core/ops.h"

namespace ember::models {

namespace {
void check_config(const DcganConfig& c) {
  stages_for(c.resolution, "DCGAN");
  EMBER_CHECK(c.image_channels == 1 || c.image_channels == 3,
              "DCGAN: image_channels must be 1 or 3, got " << c.image_channels);
  EMBER_CHECK(c.base > 0 && c.z_dim > 0, "DCGAN: base and z_dim must be positive, got " << c.base << ", " << c.z_dim);
}
}  // namespace

std::string DcganConfig::to_json() const {
  nlohmann::json j = {{"model", "dcgan"}, {"resolution", resolution}, {"base", base}, {"z_dim", z_dim},
                      {"image_channels", image_channels}, {"d_slope", d_slope}};
  return j.dump();
}

DcganConfig DcganConfig::from_json(const std::string& s) {
  DcganConfig c;
  try {
    nlohmann::json j = nlohmann::json::parse(s);
    c.resolution = json_int(j, "resolution", c.resolution, "DcganConfig::from_json");
    c.base = json_int(j, "base", c.base, "DcganConfig::from_json");
    c.z_dim = json_int(j, "z_dim", c.z_dim, "DcganConfig::from_json");
    c.image_channels = json_int(j, "image_channels", c.image_channels, "DcganConfig::from_json");
    c.d_slope = json_float(j, "d_slope", c.d_slope, "DcganConfig::from_json");
  } catch (const nlohmann::json::exception& e) {
    EMBER_FAIL("DcganConfig::from_json: " << e.what() << " in " << s);
  }
  check_config(c);
  return c;
}

DcganGenerator::DcganGenerator(const DcganConfig& c, Generator& gen) : cfg(c) {
  check_config(c);
  const int n = stages_for(c.resolution, "DCGAN");
  ups = register_module("ups", std::make_shared<ModuleList>());
  int64_t ch = c.base << (n - 1);
  ups->push_back(std::make_shared<UpStage>(std::make_shared<ConvTranspose2d>(c.z_dim, ch, 4, 1, 0, gen, false), ch));
  for (int i = 1; i < n; ++i, ch /= 2)
    ups->push_back(
        std::make_shared<UpStage>(std::make_shared<ConvTranspose2d>(ch, ch / 2, 4, 2, 1, gen, false), ch / 2));
  out = register_module("out", std::make_shared<ConvTranspose2d>(ch, c.image_channels, 4, 2, 1, gen, false));
  init_dcgan(*this, gen);
}

Tensor DcganGenerator::forward(const Tensor& z) {
  EMBER_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg.z_dim,
              "DcganGenerator: z must be [B, " << cfg.z_dim << "], got " << (z.defined() ? z.shape().str() : "undefined"));
  Tensor x = z.reshape({z.size(0), cfg.z_dim, 1, 1});
  for (size_t i = 0; i < ups->size(); ++i) x = (*(*ups)[i])(x);
  return ops::tanh((*out)(x));
}

DcganDiscriminator::DcganDiscriminator(const DcganConfig& c, Generator& gen) : cfg(c) {
  check_config(c);
  const int n = stages_for(c.resolution, "DCGAN");
  downs = register_module("downs", std::make_shared<ModuleList>());
  int64_t ch = c.base;
  downs->push_back(std::make_shared<DownStage>(std::make_shared<Conv2d>(c.image_channels, ch, 4, 2, 1, gen, false),
                                               false, c.d_slope));
  for (int i = 1; i < n; ++i, ch *= 2)
    downs->push_back(
        std::make_shared<DownStage>(std::make_shared<Conv2d>(ch, ch * 2, 4, 2, 1, gen, false), true, c.d_slope));
  out = register_module("out", std::make_shared<Conv2d>(ch, 1, 4, 1, 0, gen, false));
  init_dcgan(*this, gen);
}

Tensor DcganDiscriminator::forward(const Tensor& x) {
  EMBER_CHECK(x.defined() && x.dim() == 4 && x.size(1) == cfg.image_channels && x.size(2) == cfg.resolution &&
                  x.size(3) == cfg.resolution,
              "DcganDiscriminator: input must be [B, " << cfg.image_channels << ", " << cfg.resolution << ", "
                                                      << cfg.resolution << "], got "
                                                      << (x.defined() ? x.shape().str() : "undefined"));
  Tensor h = x;
  for (size_t i = 0; i < downs->size(); ++i) h = (*(*downs)[i])(h);
  return (*out)(h).reshape({x.size(0), 1});
}

}  // namespace ember::models
