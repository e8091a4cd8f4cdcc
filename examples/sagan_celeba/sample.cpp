// The sample and export commands: load a training checkpoint, draw images from G.
#include <cstdio>
#include <filesystem>

#include "core/autograd.h"
#include "core/context.h"
#include "core/safetensors.h"
#include "examples/common/image_io.h"
#include "examples/sagan_celeba/attention_picture.h"
#include "examples/sagan_celeba/quality.h"
#include "examples/sagan_celeba/run.h"
#include "examples/sagan_celeba/trainer.h"

namespace fs = std::filesystem;
using namespace ember;

namespace sagan_example {

std::unique_ptr<Run> load_run(const std::string& checkpoint, const std::string& device_name) {
  EMBER_INPUT_CHECK(fs::is_regular_file(checkpoint), "--checkpoint " << checkpoint << ": no such file");
  EMBER_INPUT_CHECK(device_name == "auto" || device_name == "cpu" || device_name == "cuda",
                    "--device must be cuda, cpu or auto, got '" << device_name << "'");
  Device device = parse_device(device_name);
  try {
    CheckpointConfig cc = parse_checkpoint_config(checkpoint);
    cc.cfg.finalize();
    auto run = std::make_unique<Run>(cc.cfg, device);
    models::TrainingState s = run->state("");
    models::load_checkpoint(checkpoint, s);
    run->step = s.step;
    run->sampler().eval();
    return run;
  } catch (const OutOfMemory&) {
    throw;
  } catch (const Error& e) {
    EMBER_INPUT_CHECK(false, "--checkpoint " << checkpoint << ": " << without_location(e.what()));
  }
  return nullptr;
}

int run_sample(const SampleOptions& opt) {
  EMBER_INPUT_CHECK(opt.n >= 1, "--n must be >= 1, got " << opt.n);
  const BnMode mode = parse_bn_mode(opt.bn, "--bn");
  auto run = load_run(opt.checkpoint, opt.device);
  const bool ema = opt.ema && run->G_ema;
  Module& G = ema ? *run->G_ema : *run->gan.G;
  set_sampling_mode(G, resolve_bn_mode(mode, ema), run->gan.z_dim, run->device, run->cfg.batch, opt.seed + 1);
  Tensor z;
  if (!opt.z_file.empty()) {
    SafetensorsFile f = load_safetensors(opt.z_file);
    EMBER_INPUT_CHECK(f.contains("z"), "--z " << opt.z_file << ": no tensor named 'z'");
    z = f.get("z", run->device);
    EMBER_INPUT_CHECK(z.dim() == 2 && z.size(1) == run->gan.z_dim,
                "--z " << opt.z_file << ": tensor 'z' has shape " << z.shape() << ", expected [n, " << run->gan.z_dim << "]");
  } else {
    Generator gen(opt.seed);
    z = randn(Shape{opt.n, run->gan.z_dim}, gen, run->device);
  }
  NoGradGuard no_grad;
  SelfAttention* attn = opt.attention.empty() ? nullptr : first_attention(G);
  EMBER_INPUT_CHECK(opt.attention.empty() || attn, "--attention: this checkpoint's G has no attention layer");
  if (attn) attn->keep_input = true;
  Tensor images = G(z).to(Device::CPU);
  if (attn) {
    write_attention_picture(*attn, images, opt.attention);
    std::printf("wrote %s (G's attention for four query pixels of the first image)\n", opt.attention.c_str());
  }
  data::write_png_grid(opt.out, images, 8);
  std::printf("wrote %s (%lld images from step %lld)\n", opt.out.c_str(), static_cast<long long>(images.size(0)),
              static_cast<long long>(run->step));
  if (!opt.save_tensor.empty()) {
    save_safetensors(opt.save_tensor, {{"images", images}, {"z", z.to(Device::CPU)}});
    std::printf("wrote %s (tensors 'images' %s and 'z')\n", opt.save_tensor.c_str(), images.shape().str().c_str());
  }
  return 0;
}

int run_export(const ExportOptions& opt) {
  EMBER_INPUT_CHECK(opt.n >= 1 && opt.batch >= 1, "--n and --batch must be >= 1, got " << opt.n << " and " << opt.batch);
  EMBER_INPUT_CHECK(!opt.out.empty(), "export: --out DIR is required");
  const BnMode mode = parse_bn_mode(opt.bn, "--bn");
  auto run = load_run(opt.checkpoint, opt.device);
  const bool ema = opt.ema && run->G_ema;
  Module& G = ema ? *run->G_ema : *run->gan.G;
  set_sampling_mode(G, resolve_bn_mode(mode, ema), run->gan.z_dim, run->device, run->cfg.batch, opt.seed + 1);
  fs::create_directories(opt.out);
  Generator gen(opt.seed);
  NoGradGuard no_grad;
  for (int64_t start = 0; start < opt.n; start += opt.batch) {
    int64_t b = std::min<int64_t>(opt.batch, opt.n - start);
    Tensor images = G(randn(Shape{b, run->gan.z_dim}, gen, run->device)).to(Device::CPU);
    for (int64_t i = 0; i < b; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(start + i));
      const int64_t per = images.numel() / b;  // C*H*W
      data::write_png_grid((fs::path(opt.out) / name).string(), images.data() + i * per, 1,
                           static_cast<int>(images.size(1)), static_cast<int>(images.size(2)),
                           static_cast<int>(images.size(3)), 1, 0);
    }
  }
  std::printf("wrote %lld PNGs to %s\n", static_cast<long long>(opt.n), opt.out.c_str());
  return 0;
}

}  // namespace sagan_example
