// The training loop of sagan_celeba (hinge loss, TTUR, n_dis D steps per G step, real and fake
// through D as one batch), with samples, attention maps, metrics, checkpoints, resume and a
// clean stop on SIGINT/SIGTERM.
#include "examples/sagan_celeba/trainer.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/context.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "examples/common/idx.h"
#include "examples/common/image_folder.h"
#include "examples/common/image_io.h"
#include "examples/common/loader.h"
#include "examples/sagan_celeba/run.h"
#include "examples/sagan_celeba/metrics.h"
#include "layers/optim.h"
#include "models/checkpoint.h"
#include "models/losses.h"
#ifdef EMBER_WITH_CUDA
#include "core/device_memory.h"
#endif

namespace fs = std::filesystem;
using namespace ember;

namespace sagan_example {

namespace {

std::atomic<int> g_stop_signal{0};  // set by the signal handler only
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

// Opens the training data, validating it before anything is written.
std::shared_ptr<data::Dataset> open_dataset(TrainConfig& cfg) {
  if (cfg.data.empty()) {
    auto split = std::make_shared<data::MnistSplit>(data::load_fashion_mnist(data::kFashionMnistDir, true));
    data::MnistFormat fmt;
    fmt.size = 32;  // padded 28 -> 32
    fmt.scale = data::PixelScale::MinusOneOne;
    cfg.size = 32;
    cfg.channels = 1;
    return std::make_shared<data::MnistDataset>(split, fmt);
  }
  data::ImageFolderOptions opt;
  opt.size = cfg.size;
  opt.crop = cfg.crop;
  opt.channels = 3;
  opt.random_flip = cfg.flip;
  cfg.channels = 3;
  auto folder = std::make_shared<data::ImageFolder>(cfg.data, opt);
  std::printf("data: %lld images under %s\n", static_cast<long long>(folder->size()), cfg.data.c_str());
  return folder;
}

double mean_of(const Tensor& t) { return ops::mean(t).item(); }

// Writes the sample grid and the attention picture for the fixed noise.
void write_samples(Run& run, const Tensor& z_fixed, const std::string& dir) {
  NoGradGuard no_grad;
  Module& G = run.sampler();
  G.eval();
  // Ask G's first attention layer to keep its input so its weights can be drawn.
  SelfAttention* attn = nullptr;
  if (!run.gan.attention.empty() && run.gan.attention.front().first.rfind("G", 0) == 0 && !run.G_ema)
    attn = run.gan.attention.front().second;
  if (attn) attn->keep_input = true;
  Tensor images = G(z_fixed);
  const std::string name = step_name(run.step);
  data::write_png_grid(dir + "/" + name + ".png", images.to(Device::CPU), 8);
  if (attn) {
    Tensor feat = attn->last_input;  // [B, C, h, w]
    attn->keep_input = false;
    attn->last_input = Tensor();
    const int h = static_cast<int>(feat.size(2)), w = static_cast<int>(feat.size(3));
    // Four query pixels spread over the picture (as in the SAGAN paper's figure).
    std::vector<std::pair<int, int>> q = {{h / 4, w / 4}, {h / 4, 3 * w / 4}, {3 * h / 4, w / 4}, {3 * h / 4, 3 * w / 4}};
    std::vector<int64_t> pos;
    for (auto [y, x] : q) pos.push_back(int64_t(y) * w + x);
    Tensor one = ops::narrow(feat, 0, 1);
    std::vector<float> probs = attn->attention_map(one, pos).to_vector();  // [1, 4, M]
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
    data::write_attention_png(dir + "/attention_" + name + ".png", img.data(), static_cast<int>(images.size(1)),
                              static_cast<int>(images.size(2)), static_cast<int>(images.size(3)), maps, zoom);
  }
  G.train();
}

void save(Run& run, const data::BatchLoader& loader, const std::string& ckpt_dir) {
  std::string path = ckpt_dir + "/" + step_name(run.step) + ".safetensors";
  models::save_checkpoint(path, run.state(checkpoint_config(run.cfg, loader.epoch(), loader.batch_in_epoch())));
  std::printf("checkpoint: %s\n", path.c_str());
}

}  // namespace

int run_train(TrainConfig cfg, bool steps_given) {
  // 1. Everything that can fail on bad input happens before the run folder is touched.
  Device device = parse_device(cfg.device);
  int64_t start_epoch = 0, start_batch = 0;
  std::string resume_from;
  if (cfg.resume) {
    resume_from = newest_checkpoint(cfg.out);
    EMBER_CHECK(!resume_from.empty(), "--resume: no checkpoint under " << cfg.out << "/checkpoints");
    CheckpointConfig cc = parse_checkpoint_config(resume_from);
    int64_t steps = cfg.steps;
    std::string dev = cfg.device;
    cfg = cc.cfg;  // the run continues exactly as configured
    if (steps_given) cfg.steps = steps;
    cfg.device = dev;
    cfg.resume = true;
    start_epoch = cc.loader_epoch, start_batch = cc.loader_batch;
  }
  std::shared_ptr<data::Dataset> dataset = open_dataset(cfg);
  if (cfg.width == 0) cfg.width = (cfg.data.empty() && device == Device::CPU) ? 0.25f : 1.0f;
  cfg.finalize();
  if (cfg.deterministic) context().allow_tf32 = false;

  Run run(cfg, device);
  if (!resume_from.empty()) {
    models::TrainingState s = run.state("");
    models::load_checkpoint(resume_from, s);
    run.step = s.step;
    std::printf("resumed from %s at step %lld\n", resume_from.c_str(), static_cast<long long>(run.step));
  }
  if (run.step >= cfg.steps) {
    std::printf("nothing to do: the run is at step %lld of %lld\n", static_cast<long long>(run.step),
                static_cast<long long>(cfg.steps));
    return 0;
  }

  const std::string sample_dir = cfg.out + "/samples", ckpt_dir = cfg.out + "/checkpoints";
  fs::create_directories(sample_dir);
  fs::create_directories(ckpt_dir);

  data::LoaderOptions lo;
  lo.batch_size = cfg.batch;
  lo.seed = cfg.seed;
  lo.threads = cfg.workers;
  lo.start_epoch = start_epoch;
  lo.start_batch = start_batch;
  data::BatchLoader loader(dataset, lo);

  std::vector<std::string> gamma_names, sigma_names;
  for (auto& a : run.gan.attention) gamma_names.push_back(a.first);
  for (auto& s : run.gan.spectral) sigma_names.push_back(s.first);
  MetricsLog metrics(cfg.out + "/metrics.csv", gamma_names, sigma_names, cfg.resume);

  Generator fixed(cfg.seed + 2);  // the sample grid's noise: the same picture positions all run long
  Tensor z_fixed = randn(Shape{64, run.gan.z_dim}, fixed, device);

  std::printf("sagan_celeba: %s %dx%d, %d channel(s), width %.3g, batch %d, steps %lld, device %s, G %lld / D %lld parameters\n",
              cfg.arch.c_str(), cfg.size, cfg.size, cfg.channels, cfg.width, cfg.batch,
              static_cast<long long>(cfg.steps), device_name(device),
              static_cast<long long>(run.gan.G->num_parameters()), static_cast<long long>(run.gan.D->num_parameters()));
  std::fflush(stdout);

  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  auto t_start = std::chrono::steady_clock::now();
  auto t_log = t_start;
  int64_t images_since_log = 0, first_step = run.step;
  const int64_t B = cfg.batch;

  while (run.step < cfg.steps) {
    Tensor last_loss_d, last_real, last_fake;  // of the last D step, read when logging
    // D: n_dis steps, each on a fresh real batch and fresh noise; G's output is a constant here.
    for (int k = 0; k < cfg.n_dis; ++k) {
      Tensor real = loader.next().images(device);
      Tensor fake;
      {
        NoGradGuard no_grad;
        fake = (*run.gan.G)(randn(Shape{B, run.gan.z_dim}, run.rng, device));
      }
      models::DLogits d = models::discriminate(*run.gan.D, real, fake, run.gan.hinge);
      Tensor loss_d = run.gan.hinge ? models::d_loss_hinge(d.real, d.fake) : models::d_loss_bce(d.real, d.fake);
      run.opt_D->zero_grad();
      loss_d.backward();
      run.opt_D->step();
      last_loss_d = loss_d.detach(), last_real = d.real.detach(), last_fake = d.fake.detach();
    }
    // G: one step through D (D's weights are not updated here). D stays in training mode, as in
    // the official SAGAN code, so this forward advances D's spectral-norm power iterations a
    // second time per step (u and v are buffers, not trained: this only refines the estimate).
    Tensor fake = (*run.gan.G)(randn(Shape{B, run.gan.z_dim}, run.rng, device));
    Tensor logits = (*run.gan.D)(fake);
    Tensor loss_g = run.gan.hinge ? models::g_loss_hinge(logits) : models::g_loss_bce(logits);
    run.opt_G->zero_grad();
    loss_g.backward();
    run.opt_G->step();
    if (run.ema) run.ema->update();
    ++run.step;
    images_since_log += B * cfg.n_dis;

    if (run.step % cfg.log_every == 0 || run.step == cfg.steps) {
      auto now = std::chrono::steady_clock::now();
      double dt = std::chrono::duration<double>(now - t_log).count();
      double elapsed = std::chrono::duration<double>(now - t_start).count();
      StepMetrics m;
      m.step = run.step;
      m.loss_d = last_loss_d.item();
      m.d_real = mean_of(last_real);
      m.d_fake = mean_of(last_fake);
      m.loss_g = loss_g.item();
      m.images_per_s = images_since_log / std::max(dt, 1e-9);
      for (auto& a : run.gan.attention) m.gammas.push_back(a.second->gamma.item());
      for (auto& s : run.gan.spectral) m.sigmas.push_back(s.second->spectral_norm_state().last_sigma());
#ifdef EMBER_WITH_CUDA
      if (device == Device::CUDA) {
        cuda_rt::AllocatorStats st = cuda_rt::allocator_stats();
        m.mem_in_use_mb = st.in_use / 1048576.0, m.mem_peak_mb = st.peak_in_use / 1048576.0;
      }
#endif
      metrics.write(m);
      double per_step = elapsed / static_cast<double>(run.step - first_step);
      std::printf("%s\n", progress_line(m, cfg.steps, per_step * static_cast<double>(cfg.steps - run.step)).c_str());
      std::fflush(stdout);
      t_log = now;
      images_since_log = 0;
    }
    if (run.step % cfg.sample_every == 0 || run.step == cfg.steps) write_samples(run, z_fixed, sample_dir);
    if (run.step % cfg.checkpoint_every == 0 || run.step == cfg.steps) save(run, loader, ckpt_dir);
    if (g_stop_signal) {
      if (run.step % cfg.checkpoint_every != 0 && run.step != cfg.steps) save(run, loader, ckpt_dir);
      std::printf("stopped by signal %d at step %lld; continue with: sagan_celeba train --out %s --resume\n",
                  g_stop_signal.load(), static_cast<long long>(run.step), cfg.out.c_str());
      return 0;
    }
  }
  std::printf("done: %lld steps; samples in %s, checkpoints in %s, metrics in %s/metrics.csv\n",
              static_cast<long long>(run.step), sample_dir.c_str(), ckpt_dir.c_str(), cfg.out.c_str());
  return 0;
}

}  // namespace sagan_example
