#include "examples/sagan_celeba/gan.h"

#include "models/dcgan.h"
#include "models/sagan.h"
#include "models/sagan_resnet.h"

namespace sagan_example {

using namespace ember;

namespace {
void find_layers(const std::string& prefix, Module& m, Gan& gan) {
  if (auto* a = dynamic_cast<SelfAttention*>(&m)) gan.attention.emplace_back(prefix, a);
  if (auto* w = dynamic_cast<WeightLayer*>(&m); w && w->has_spectral_norm()) gan.spectral.emplace_back(prefix, w);
  for (auto& [name, child] : m.named_children()) find_layers(prefix + "." + name, *child, gan);
}
}  // namespace

Gan build_gan(const TrainConfig& cfg, Generator& gen, Device device) {
  Gan gan;
  const AttentionVariant variant = parse_attention_variant(cfg.attention);
  if (cfg.arch == "sagan") {
    models::SaganConfig mc;
    mc.resolution = cfg.size;
    mc.width = cfg.width;
    mc.image_channels = cfg.channels;
    mc.attention = variant;
    gan.z_dim = mc.z_dim;
    gan.G = std::make_shared<models::SaganGenerator>(mc, gen);
    gan.D = std::make_shared<models::SaganDiscriminator>(mc, gen);
  } else if (cfg.arch == "sagan-resnet") {
    models::SaganResNetConfig mc;
    mc.resolution = cfg.size;
    mc.base = std::max<int64_t>(8, static_cast<int64_t>(64 * cfg.width + 0.5f) / 8 * 8);
    mc.image_channels = cfg.channels;
    mc.attention = variant;
    gan.z_dim = mc.z_dim;
    gan.G = std::make_shared<models::SaganResNetGenerator>(mc, gen);
    gan.D = std::make_shared<models::SaganResNetDiscriminator>(mc, gen);
  } else {
    models::DcganConfig mc;
    mc.resolution = cfg.size;
    mc.base = std::max<int64_t>(1, static_cast<int64_t>(64 * cfg.width + 0.5f));
    mc.image_channels = cfg.channels;
    gan.z_dim = mc.z_dim;
    gan.G = std::make_shared<models::DcganGenerator>(mc, gen);
    gan.D = std::make_shared<models::DcganDiscriminator>(mc, gen);
    gan.hinge = false;
  }
  gan.G->to(device);
  gan.D->to(device);
  find_layers("G", *gan.G, gan);
  find_layers("D", *gan.D, gan);
  return gan;
}

}  // namespace sagan_example
