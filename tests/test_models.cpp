// Models: shapes of every model / resolution / variant, state_dict names and sizes (against
// the PyTorch mirror's counts), strict loading, spectral norm on every layer, gradients reaching
// every parameter, a training step that lowers the losses, the joint real/fake D pass, and
// checkpoints (round trip and validation).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/profile.h"
#include "core/safetensors.h"
#include "layers/optim.h"
#include "models/checkpoint.h"
#include "models/dcgan.h"
#include "models/losses.h"
#include "models/sagan.h"
#include "models/sagan_resnet.h"
#include "tests/harness.h"
#include "tests/parity/naive.h"

using namespace ember;
namespace fs = std::filesystem;

namespace {

// Every module of the tree with its dotted name.
void walk(Module& m, const std::string& name, const std::function<void(const std::string&, Module&)>& f) {
  f(name, m);
  for (auto& c : m.named_children()) walk(*c.second, name.empty() ? c.first : name + "." + c.first, f);
}

void set_gammas(Module& m, float v) {
  walk(m, "", [&](const std::string&, Module& x) {
    if (auto* a = dynamic_cast<SelfAttention*>(&x)) a->gamma.fill_(v);
  });
}

bool has_name(const StateDict& sd, const std::string& n) {
  for (auto& kv : sd)
    if (kv.first == n) return true;
  return false;
}

models::SaganConfig small_sagan(int res = 32, AttentionVariant v = AttentionVariant::Article) {
  models::SaganConfig c;
  c.resolution = res, c.width = 1.0f / 16, c.z_dim = 8, c.attention = v;
  return c;
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("ember_test_models_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

std::vector<float> flat_state(const Module& m) {
  std::vector<float> out;
  for (auto& kv : m.state_dict()) {
    auto v = kv.second.to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace

TEST_CASE("models: output shapes for every model, resolution, attention variant and channel count", "[models]") {
  NoGradGuard ng;
  Generator gen(1);
  for (int res : {32, 64, 128})
    for (int64_t ch : {1, 3}) {
      const Tensor z = randn(Shape{2, 8}, gen);
      const Tensor x = rand_uniform(Shape{2, ch, res, res}, gen, Device::CPU, -1.f, 1.f);
      auto check = [&](Module& G, Module& D, const std::string& what) {
        INFO(what << " at " << res << "x" << res << " with " << ch << " channel(s)");
        Tensor img = G(z);
        CHECK(img.shape() == Shape{2, ch, res, res});
        float mx = 0;
        for (float v : img.to_vector()) mx = std::max(mx, std::abs(v));
        CHECK(mx <= 1.0f);
        CHECK(D(x).shape() == Shape{2, 1});
      };
      for (auto v : {AttentionVariant::Article, AttentionVariant::Official}) {
        models::SaganConfig c;
        c.resolution = res, c.width = 1.0f / 8, c.z_dim = 8, c.image_channels = ch, c.attention = v;
        models::SaganGenerator G(c, gen);
        models::SaganDiscriminator D(c, gen);
        CHECK(G.attn->channels == (res == 32 ? 16 : 8));
        check(G, D, std::string("SAGAN (article), attention ") + attention_variant_name(v));
      }
      models::SaganResNetConfig rc;
      rc.resolution = res, rc.base = 8, rc.z_dim = 8, rc.image_channels = ch;
      models::SaganResNetGenerator RG(rc, gen);
      models::SaganResNetDiscriminator RD(rc, gen);
      check(RG, RD, "SAGAN (official ResNet)");
      models::DcganConfig dc;
      dc.resolution = res, dc.base = 4, dc.z_dim = 8, dc.image_channels = ch;
      models::DcganGenerator DG(dc, gen);
      models::DcganDiscriminator DD(dc, gen);
      check(DG, DD, "DCGAN");
    }
}

TEST_CASE("models: default sizes and state_dict names match the PyTorch mirror", "[models]") {
  Generator gen(2);
  // Counts printed by tests/parity/ember_models.py for the default configurations.
  models::SaganConfig c;
  models::SaganGenerator G(c, gen);
  models::SaganDiscriminator D(c, gen);
  CHECK(G.num_parameters() == 3849692);
  CHECK(D.num_parameters() == 2801194);
  StateDict g = G.state_dict(), d = D.state_dict();
  for (const char* n : {"fc.weight_orig", "fc.weight_u", "fc.weight_v", "bn0.running_var", "bn0.num_batches_tracked",
                        "ups.0.conv.weight_orig", "ups.4.bn.weight", "attn.gamma", "attn.f.weight_u", "attn.h.bias",
                        "out.weight_orig", "out.bias"})
    CHECK(has_name(g, n));
  CHECK_FALSE(has_name(g, "fc.bias"));            // BatchNorm follows: no bias
  CHECK_FALSE(has_name(g, "ups.0.conv.bias"));
  CHECK(G.attn_after == 2);                        // after the stage that reaches 32x32
  for (const char* n : {"downs.0.weight_orig", "downs.4.weight_v", "attn.g.weight_orig", "fc.weight_orig", "fc.bias"})
    CHECK(has_name(d, n));
  CHECK(D.fc->weight.shape() == Shape{1, 8192});
  for (auto& kv : d) CHECK(kv.first.find("running") == std::string::npos);  // no BatchNorm in D

  models::DcganConfig dc;
  models::DcganGenerator DG(dc, gen);
  models::DcganDiscriminator DD(dc, gen);
  CHECK(DG.num_parameters() == 3806080);
  CHECK(DD.num_parameters() == 2765568);

  models::SaganResNetConfig rc;
  models::SaganResNetGenerator RG(rc, gen);
  models::SaganResNetDiscriminator RD(rc, gen);
  CHECK(RG.num_parameters() == 32232708);
  CHECK(RD.num_parameters() == 38439618);
  CHECK(has_name(RG.state_dict(), "blocks.2.shortcut.weight_u"));
  CHECK(has_name(RG.state_dict(), "attn.o.weight_orig"));
  CHECK_FALSE(has_name(RD.state_dict(), "blocks.5.shortcut.weight_orig"));  // identity shortcut
}

TEST_CASE("models: configurations round-trip through JSON, bad ones are rejected by name", "[models][errors]") {
  models::SaganConfig c = small_sagan(64, AttentionVariant::Official);
  c.image_channels = 1;
  models::SaganConfig r = models::SaganConfig::from_json(c.to_json());
  CHECK(r.to_json() == c.to_json());
  CHECK(r.attention == AttentionVariant::Official);
  CHECK(models::SaganResNetConfig::from_json(models::SaganResNetConfig().to_json()).base == 64);
  CHECK(models::DcganConfig::from_json(models::DcganConfig().to_json()).resolution == 64);
  Generator gen(3);
  c.resolution = 48;
  REQUIRE_THROWS_WITH(models::SaganGenerator(c, gen), Catch::Contains("resolution must be 32, 64 or 128, got 48"));
  c.resolution = 32, c.image_channels = 2;
  REQUIRE_THROWS_WITH(models::SaganDiscriminator(c, gen), Catch::Contains("image_channels must be 1 or 3, got 2"));
  c.image_channels = 3, c.width = 1.0f / 32;  // attention on 4 channels
  REQUIRE_THROWS_WITH(models::SaganGenerator(c, gen), Catch::Contains("multiple of 8"));
  REQUIRE_THROWS_WITH(models::SaganConfig::from_json("{\"resolution\": \"big\"}"), Catch::Contains("from_json"));
  // Numbers that do not fit the field are refused by name: 1e20 into an int was undefined
  // behaviour (tests/fuzz/corpus/model_config/crash-*), 2^32 + 32 was truncated to a valid 32.
  REQUIRE_THROWS_WITH(models::SaganConfig::from_json("{\"resolution\": 1e20}"),
                      Catch::Contains("'resolution' must be an integer"));
  REQUIRE_THROWS_WITH(models::DcganConfig::from_json("{\"resolution\": 4294967328}"),
                      Catch::Contains("'resolution' must be an integer"));
  REQUIRE_THROWS_WITH(models::SaganResNetConfig::from_json("{\"z_dim\": 1.5}"), Catch::Contains("'z_dim'"));
  REQUIRE_THROWS_WITH(models::SaganConfig::from_json("{\"width\": 1e39}"),
                      Catch::Contains("'width' must be a finite number"));
  REQUIRE_THROWS_WITH(models::DcganConfig::from_json("[64]"), Catch::Contains("must be a JSON object"));
}

TEST_CASE("models: strict loading names missing, unexpected and mis-shaped tensors", "[models][errors]") {
  Generator gen(4);
  models::SaganGenerator G(small_sagan(), gen);
  models::SaganDiscriminator D(small_sagan(), gen);
  REQUIRE_THROWS_WITH(G.load_state_dict(D.state_dict()),
                      Catch::Contains("fc.weight_orig (given [1, 512], module has [512, 8])") &&
                          Catch::Contains("missing keys: bn0.weight") && Catch::Contains("unexpected keys: downs.0.bias"));
  models::SaganConfig wide = small_sagan();
  wide.width = 1.0f / 8;
  models::SaganGenerator W(wide, gen);
  REQUIRE_THROWS_WITH(G.load_state_dict(W.state_dict()), Catch::Contains("fc.weight_orig (given [1024, 8], module has [512, 8])"));
}

TEST_CASE("models: every spectral-norm layer normalises its weight to spectral norm 1", "[models][spectral_norm]") {
  Generator gen(5);
  models::SaganDiscriminator D(small_sagan(32, AttentionVariant::Official), gen);
  models::SaganGenerator G(small_sagan(32, AttentionVariant::Official), gen);
  Tensor x = rand_uniform(Shape{2, 3, 32, 32}, gen, Device::CPU, -1.f, 1.f), z = randn(Shape{2, 8}, gen);
  {
    NoGradGuard ng;
    for (int i = 0; i < 200; ++i) D(x), G(z);
  }
  int count = 0;
  for (Module* m : {static_cast<Module*>(&D), static_cast<Module*>(&G)})
    walk(*m, "", [&](const std::string& name, Module& mod) {
      auto* w = dynamic_cast<WeightLayer*>(&mod);
      if (!w) return;
      INFO(name);
      REQUIRE(w->has_spectral_norm());
      naive::Mat mat = naive::matrix_view(w->weight, w->spectral_norm_state().dim);
      for (double& a : mat.a) a /= w->spectral_norm_state().last_sigma();
      CHECK(naive::top_singular_value(mat) == Approx(1.0).epsilon(1e-3));
      ++count;
    });
  CHECK(count == 8 + 9);  // D: 3 convs, f, g, h, o, fc;  G: fc, 3 transposed convs, f, g, h, o, out
}

TEST_CASE("models: gradients reach every parameter of G and D", "[models][autograd]") {
  Generator gen(6);
  auto check = [&](Module& G, Module& D, int64_t z_dim, const std::string& what, bool bn_biases_in_G) {
    set_gammas(G, 0.5f), set_gammas(D, 0.5f);
    Tensor z = randn(Shape{3, z_dim}, gen);
    Tensor img = G(z);
    Tensor logits = D(img);
    ops::sum(ops::mul(logits, rand_uniform(logits.shape(), gen, Device::CPU, 0.5f, 1.5f))).backward();
    for (Module* m : {&G, &D})
      for (auto& p : m->named_parameters()) {
        INFO(what << " " << (m == &G ? "G." : "D.") << p.first);
        REQUIRE(p.second.grad().defined());
        REQUIRE(test::all_finite(p.second.grad()));
        double n = 0;
        for (float v : p.second.grad().to_vector()) n += std::abs(v);
        // ResNet G: biases feeding only a BatchNorm have an exact gradient of 0 (rounding noise here).
        const bool cancelled = bn_biases_in_G && m == &G && p.first.size() > 5 &&
                               p.first.compare(p.first.size() - 5, 5, ".bias") == 0;
        if (!cancelled) CHECK(n > 0);
      }
  };
  {
    models::SaganGenerator G(small_sagan(), gen);
    models::SaganDiscriminator D(small_sagan(), gen);
    check(G, D, 8, "SAGAN", false);
  }
  {
    models::SaganResNetConfig rc;
    rc.resolution = 32, rc.base = 8, rc.z_dim = 8;
    models::SaganResNetGenerator G(rc, gen);
    models::SaganResNetDiscriminator D(rc, gen);
    check(G, D, 8, "SAGAN-ResNet", true);
  }
  {
    models::DcganConfig dc;
    dc.resolution = 32, dc.base = 4, dc.z_dim = 8;
    models::DcganGenerator G(dc, gen);
    models::DcganDiscriminator D(dc, gen);
    check(G, D, 8, "DCGAN", false);
  }
  // gamma starts at 0 yet receives a gradient (so attention can switch on).
  models::SaganDiscriminator D(small_sagan(), gen);
  Tensor x = rand_uniform(Shape{2, 3, 32, 32}, gen, Device::CPU, -1.f, 1.f);
  ops::sum(D(x)).backward();
  CHECK(D.attn->gamma.item() == 0.0f);
  CHECK(D.attn->gamma.grad().item() != 0.0f);
}

TEST_CASE("models: D and G steps lower their losses on a fixed batch", "[models][optim]") {
  Generator gen(7);
  models::SaganGenerator G(small_sagan(), gen);
  models::SaganDiscriminator D(small_sagan(), gen);
  Tensor real = rand_uniform(Shape{4, 3, 32, 32}, gen, Device::CPU, -1.f, 1.f);
  Tensor z = randn(Shape{4, 8}, gen);
  Tensor fake = G(z).detach();
  AdamOptions o;
  o.lr = 1e-3f;
  Adam opt_D(D.named_parameters(), o), opt_G(G.named_parameters(), o);
  auto d_loss = [&] {
    D.eval();  // measure without advancing spectral norm
    NoGradGuard ng;
    float l = models::d_loss_hinge(D(real), D(fake)).item();
    D.train();
    return l;
  };
  const float before = d_loss();
  for (int s = 0; s < 3; ++s) {
    models::DLogits l = models::discriminate(D, real, fake);
    opt_D.zero_grad();
    models::d_loss_hinge(l.real, l.fake).backward();
    opt_D.step();
  }
  const float after = d_loss();
  INFO("D loss " << before << " -> " << after);
  CHECK(after < before);

  D.eval();  // D fixed while G trains
  auto g_loss = [&] { return models::g_loss_hinge(D(G(z))); };
  const float g_before = g_loss().item();
  for (int s = 0; s < 3; ++s) {
    Tensor l = g_loss();
    opt_G.zero_grad();
    l.backward();
    opt_G.step();
  }
  const float g_after = g_loss().item();
  INFO("G loss " << g_before << " -> " << g_after);
  CHECK(g_after < g_before);
}

TEST_CASE("models: the joint real/fake D pass equals two passes, with spectral norm advanced once", "[models][losses]") {
  Generator gen(8);
  models::SaganDiscriminator D(small_sagan(), gen);
  Tensor real = rand_uniform(Shape{3, 3, 32, 32}, gen, Device::CPU, -1.f, 1.f);
  Tensor fake = rand_uniform(Shape{2, 3, 32, 32}, gen, Device::CPU, -1.f, 1.f);
  set_gammas(D, 0.5f);
  D.eval();
  models::DLogits joint = models::discriminate(D, real, fake);
  REQUIRE(joint.real.shape() == Shape{3, 1});
  REQUIRE(joint.fake.shape() == Shape{2, 1});
  CHECK(test::rel_err(joint.real, D(real)) < 1e-6);
  CHECK(test::rel_err(joint.fake, D(fake)) < 1e-6);
  // Training mode: one joint pass = one power iteration (u after it equals u after any one pass).
  D.train();
  StateDict before = D.state_dict();  // handles sharing D's data (as PyTorch's): snapshot them
  for (auto& kv : before) kv.second = kv.second.clone();
  models::discriminate(D, real, fake);
  SpectralNorm& sn = static_cast<WeightLayer&>(*(*D.downs)[1]).spectral_norm_state();
  std::vector<float> u_joint = sn.u.to_vector();
  D.load_state_dict(before);
  CHECK(sn.u.to_vector() != u_joint);
  D(real);
  CHECK(sn.u.to_vector() == u_joint);
  D(fake);
  CHECK(sn.u.to_vector() != u_joint);
  // joint = false: two passes (for DCGAN, whose D has BatchNorm: each batch its own statistics).
  models::DcganConfig dc;
  dc.resolution = 32, dc.base = 4;
  models::DcganDiscriminator DD(dc, gen);
  models::DLogits sep = models::discriminate(DD, real, fake, false);
  CHECK(test::rel_err(sep.real, DD(real)) < 1e-6);
  CHECK(test::rel_err(sep.fake, DD(fake)) < 1e-6);
  REQUIRE_THROWS_WITH(models::discriminate(D, real, rand_uniform(Shape{1, 3, 16, 16}, gen)),
                      Catch::Contains("discriminate: real and fake must be image batches of one size"));
}

// ---- checkpoints ----------------------------------------------------------------------------------

namespace {
struct Pair {
  explicit Pair(uint64_t seed, float width = 1.0f / 16) : gen(seed) {
    models::SaganConfig c = small_sagan();
    c.width = width;
    G = std::make_unique<models::SaganGenerator>(c, gen);
    D = std::make_unique<models::SaganDiscriminator>(c, gen);
    G_ema = std::make_unique<models::SaganGenerator>(c, gen);
    opt_G = std::make_unique<Adam>(G->named_parameters());
    opt_D = std::make_unique<Adam>(D->named_parameters());
    config = c.to_json();
  }
  void train_steps(int n) {
    EMA ema(*G, *G_ema, 0.9f);
    for (int s = 0; s < n; ++s) {
      Tensor real = rand_uniform(Shape{2, 3, 32, 32}, rng, Device::CPU, -1.f, 1.f);
      models::DLogits l = models::discriminate(*D, real, (*G)(randn(Shape{2, 8}, rng)).detach());
      opt_D->zero_grad();
      models::d_loss_hinge(l.real, l.fake).backward();
      opt_D->step();
      Tensor lg = models::g_loss_hinge((*D)((*G)(randn(Shape{2, 8}, rng))));
      opt_G->zero_grad();
      lg.backward();
      opt_G->step();
      ema.update();
      ++step;
    }
  }
  models::TrainingState state() {
    models::TrainingState s;
    s.G = G.get(), s.D = D.get(), s.opt_G = opt_G.get(), s.opt_D = opt_D.get(), s.G_ema = G_ema.get();
    s.rng = &rng, s.step = step, s.config = config;
    return s;
  }
  Generator gen, rng{77};
  std::unique_ptr<models::SaganGenerator> G, G_ema;
  std::unique_ptr<models::SaganDiscriminator> D;
  std::unique_ptr<Adam> opt_G, opt_D;
  int64_t step = 0;
  std::string config;
};
}  // namespace

TEST_CASE("models: a training checkpoint restores G, D, EMA, optimizers, step, RNG and config exactly", "[models][checkpoint]") {
  fs::path dir = temp_dir("roundtrip");
  Pair a(9);
  a.train_steps(2);
  const std::string path = (dir / "ckpt.safetensors").string();
  models::save_checkpoint(path, a.state());
  CHECK(models::read_checkpoint_config(path) == a.config);

  Pair b(10);  // different weights
  models::TrainingState s = b.state();
  s.config.clear();
  models::load_checkpoint(path, s);
  CHECK(s.step == 2);
  CHECK(s.config == a.config);
  CHECK(flat_state(*b.G) == flat_state(*a.G));
  CHECK(flat_state(*b.D) == flat_state(*a.D));
  CHECK(flat_state(*b.G_ema) == flat_state(*a.G_ema));
  CHECK(b.opt_G->steps() == 2);
  CHECK(b.rng.seed() == a.rng.seed());
  CHECK(b.rng.offset() == a.rng.offset());
  // Continuing from the restored state is bit-identical to continuing the original.
  b.step = s.step;
  a.train_steps(1);
  b.train_steps(1);
  CHECK(flat_state(*b.G) == flat_state(*a.G));
  CHECK(flat_state(*b.D) == flat_state(*a.D));
  fs::remove_all(dir);
}

TEST_CASE("models: checkpoint loading validates and names the problem, changing nothing", "[models][checkpoint][errors]") {
  fs::path dir = temp_dir("errors");
  Pair a(11);
  const std::string path = (dir / "ckpt.safetensors").string();
  models::save_checkpoint(path, a.state());

  Pair wide(12, 1.0f / 8);
  std::vector<float> before = flat_state(*wide.G);
  models::TrainingState s = wide.state();
  REQUIRE_THROWS_WITH(models::load_checkpoint(path, s),
                      Catch::Contains(path) && Catch::Contains("(G)") && Catch::Contains("fc.weight_orig"));
  CHECK(flat_state(*wide.G) == before);

  Pair no_ema(13);
  models::TrainingState s2 = no_ema.state();
  s2.G_ema = nullptr;
  REQUIRE_THROWS_WITH(models::load_checkpoint(path, s2), Catch::Contains("G_ema"));

  // A plain module file is not a training checkpoint.
  const std::string gpath = (dir / "G.safetensors").string();
  models::save_module(gpath, *a.G, {{"config", a.config}});
  REQUIRE_THROWS_WITH(models::load_checkpoint(gpath, s2), Catch::Contains("not an ember training checkpoint"));
  // A truncated file is rejected by the reader with the file named.
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out((dir / "cut.safetensors").string(), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  Pair c(14);
  models::TrainingState s3 = c.state();
  REQUIRE_THROWS_WITH(models::load_checkpoint((dir / "cut.safetensors").string(), s3), Catch::Contains("cut.safetensors"));
  fs::remove_all(dir);
}

TEST_CASE("models: a plain module file holds exactly the PyTorch state_dict", "[models][checkpoint]") {
  fs::path dir = temp_dir("module");
  Generator gen(15);
  models::SaganGenerator G(small_sagan(), gen), H(small_sagan(), gen);
  models::SaganDiscriminator D(small_sagan(), gen);
  const std::string path = (dir / "G.safetensors").string();
  models::save_module(path, G, {{"config", G.cfg.to_json()}});
  SafetensorsFile f = load_safetensors(path);
  std::vector<std::string> names;
  for (auto& kv : G.state_dict()) names.push_back(kv.first);
  CHECK(f.names == names);  // no prefix, PyTorch's names, in state_dict order
  auto meta = models::load_module(path, H);
  CHECK(meta.at("config") == G.cfg.to_json());
  CHECK(flat_state(H) == flat_state(G));
  REQUIRE_THROWS_WITH(models::load_module(path, D), Catch::Contains("missing keys") && Catch::Contains(path));
  fs::remove_all(dir);
}

// Writes checkpoints for tests/parity/load_in_torch.py (hidden: run explicitly with
//   EMBER_EXPORT_DIR=/tmp/ember_export ./ember_tests "[.torch_export]").
// For each model: a training checkpoint, plain G and D files, and the outputs ember computes
// after loading (eval and training mode) for fixed inputs.
TEST_CASE("models: export checkpoints for PyTorch", "[.torch_export]") {
  const char* env = std::getenv("EMBER_EXPORT_DIR");
  fs::path dir = env ? env : (fs::temp_directory_path() / "ember_export").string();
  fs::create_directories(dir);
  Generator gen(16);
  auto export_pair = [&](const std::string& name, Module& G, Module& D, int64_t z_dim, int res,
                         const std::string& config) {
    set_gammas(G, 0.4f), set_gammas(D, 0.4f);
    AdamOptions o;
    Adam opt_G(G.named_parameters(), o), opt_D(D.named_parameters(), o);
    for (int s = 0; s < 2; ++s) {  // move weights, u/v and running statistics off their initial values
      Tensor real = rand_uniform(Shape{2, 3, res, res}, gen, Device::CPU, -1.f, 1.f);
      models::DLogits l = models::discriminate(D, real, G(randn(Shape{2, z_dim}, gen)).detach());
      opt_D.zero_grad();
      models::d_loss_hinge(l.real, l.fake).backward();
      opt_D.step();
      Tensor lg = models::g_loss_hinge(D(G(randn(Shape{2, z_dim}, gen))));
      opt_G.zero_grad();
      lg.backward();
      opt_G.step();
    }
    models::TrainingState s;
    s.G = &G, s.D = &D, s.opt_G = &opt_G, s.opt_D = &opt_D, s.step = 2, s.config = config;
    models::save_checkpoint((dir / (name + "_checkpoint.safetensors")).string(), s);
    models::save_module((dir / (name + "_G.safetensors")).string(), G, {{"config", config}});
    models::save_module((dir / (name + "_D.safetensors")).string(), D, {{"config", config}});
    NoGradGuard ng;
    Tensor z = randn(Shape{3, z_dim}, gen), x = rand_uniform(Shape{3, 3, res, res}, gen, Device::CPU, -1.f, 1.f);
    G.eval(), D.eval();
    Tensor g_eval = G(z), d_eval = D(x);
    G.train(), D.train();
    Tensor g_train = G(z), d_train = D(x);  // one more power iteration, batch statistics
    save_safetensors((dir / (name + "_io.safetensors")).string(),
                     {{"z", z}, {"x", x}, {"G_eval", g_eval}, {"D_eval", d_eval}, {"G_train", g_train}, {"D_train", d_train}},
                     {{"config", config}});
  };
  {
    models::SaganConfig c = small_sagan();
    c.attention = AttentionVariant::Official;
    models::SaganGenerator G(c, gen);
    models::SaganDiscriminator D(c, gen);
    export_pair("sagan", G, D, c.z_dim, c.resolution, c.to_json());
  }
  {
    models::SaganResNetConfig c;
    c.resolution = 32, c.base = 8, c.z_dim = 8;
    models::SaganResNetGenerator G(c, gen);
    models::SaganResNetDiscriminator D(c, gen);
    export_pair("sagan_resnet", G, D, c.z_dim, c.resolution, c.to_json());
  }
  {
    models::DcganConfig c;
    c.resolution = 32, c.base = 4, c.z_dim = 8;
    models::DcganGenerator G(c, gen);
    models::DcganDiscriminator D(c, gen);
    export_pair("dcgan", G, D, c.z_dim, c.resolution, c.to_json());
  }
  std::printf("wrote checkpoints to %s\n", dir.string().c_str());
}

TEST_CASE("models: one grouped spectral-norm step per forward equals the per-layer steps bitwise", "[models][spectral_norm]") {
  Generator gen(11);
  models::SaganResNetConfig rc;
  rc.resolution = 32, rc.base = 8, rc.z_dim = 8;
  models::SaganGenerator G(small_sagan(32, AttentionVariant::Official), gen);
  models::SaganDiscriminator D(small_sagan(32), gen);
  models::SaganResNetGenerator RG(rc, gen);
  models::SaganResNetDiscriminator RD(rc, gen);
  Tensor z = randn(Shape{2, 8}, gen), x = rand_uniform(Shape{2, 3, 32, 32}, gen, Device::CPU, -1.f, 1.f);
  struct Net {
    Module* m;
    Tensor in;
  };
  for (const Net& net : {Net{&G, z}, Net{&D, x}, Net{&RG, z}, Net{&RD, x}}) {
    for (bool training : {true, false}) {
      CAPTURE(training);
      training ? net.m->train() : net.m->eval();
      // Each layer's step taken alone, from the buffers before the forward.
      std::vector<std::pair<std::string, SnStepItem>> expected;
      walk(*net.m, "", [&](const std::string& name, Module& mod) {
        auto* w = dynamic_cast<WeightLayer*>(&mod);
        if (!w || !w->has_spectral_norm()) return;
        const SpectralNorm& sn = w->spectral_norm_state();
        SnStepItem it{w->weight, sn.dim, sn.eps, sn.u.clone(), sn.v.clone(), Tensor::zeros(Shape{1})};
        ops::spectral_norm_step(it.w, it.dim, it.u, it.v, it.sigma, training, it.eps);
        expected.emplace_back(name, it);
      });
      REQUIRE(expected.size() >= 5);
      const bool was_on = profile::enabled();
      profile::enable();
      profile::reset();
      {
        NoGradGuard ng;
        (*net.m)(net.in);
      }
      const std::string table = profile::report();
      profile::reset();
      if (!was_on) profile::disable();
      INFO(table);
      // One grouped step for the whole model, no per-layer step.
      CHECK(table.find("spectral_norm_step_group") != std::string::npos);
      CHECK(table.find("spectral_norm_power_iteration") == std::string::npos);
      CHECK(table.find("spectral_norm_sigma") == std::string::npos);
      size_t i = 0;
      walk(*net.m, "", [&](const std::string& name, Module& mod) {
        auto* w = dynamic_cast<WeightLayer*>(&mod);
        if (!w || !w->has_spectral_norm()) return;
        INFO(name);
        REQUIRE(i < expected.size());
        const SnStepItem& e = expected[i++].second;
        const SpectralNorm& sn = w->spectral_norm_state();
        CHECK(sn.u.to_vector() == e.u.to_vector());
        CHECK(sn.v.to_vector() == e.v.to_vector());
        CHECK(sn.sigma.item() == e.sigma.item());
      });
      CHECK(i == expected.size());
    }
  }
}
