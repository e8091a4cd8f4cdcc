// The training loop of sagan_celeba (hinge loss, TTUR, n_dis D steps per G step, real and fake
// through D as one batch), with samples, attention maps, metrics, checkpoints, resume and a
// clean stop on SIGINT/SIGTERM.
#include "examples/sagan_celeba/trainer.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <thread>
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
#include "examples/sagan_celeba/data_parallel.h"
#include "examples/sagan_celeba/run.h"
#include "examples/sagan_celeba/attention_picture.h"
#include "examples/sagan_celeba/metrics.h"
#include "examples/sagan_celeba/quality.h"
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

// First SIGINT/SIGTERM: finish the step, write a checkpoint, exit 0. Second: quit at once.
// Only async-signal-safe calls here (write, _exit). A checkpoint being written is then left as
// a *.tmp file (writes go to a temporary renamed into place), which --resume never reads.
extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal.exchange(sig) != 0) {
    static const char msg[] = "\nsagan_celeba: second signal, quitting now; the last complete checkpoint is kept\n";
    ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(128 + sig);
  }
  static const char msg[] =
      "\nsagan_celeba: stopping after the current step and writing a checkpoint "
      "(press Ctrl-C again to quit at once without one)\n";
  ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
}

// Opens the training data; validates it and the batch size against it.
std::shared_ptr<data::Dataset> open_dataset_unchecked(TrainConfig& cfg) {
  if (cfg.data.empty()) {
    auto split = std::make_shared<data::MnistSplit>(data::load_fashion_mnist(data::kFashionMnistDir, true));
    data::MnistFormat fmt;
    fmt.size = 32;  // padded 28 -> 32
    fmt.scale = data::PixelScale::MinusOneOne;
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
  std::printf("data: %lld image files under %s\n", static_cast<long long>(folder->size()), cfg.data.c_str());
  if (folder->size() < cfg.batch) {
    // Too few for one batch: decode them all (a few files) so that the count is of readable ones.
    std::vector<float> buf(static_cast<size_t>(folder->channels()) * folder->height() * folder->width());
    for (int64_t i = 0; i < folder->size(); ++i) folder->load(i, 0, buf.data());
    const int64_t readable = folder->size() - folder->skipped();
    EMBER_INPUT_CHECK(false, "--batch " << cfg.batch << " is larger than the data: " << readable
                                        << " readable image(s) under " << cfg.data << " (" << folder->skipped()
                                        << " unreadable skipped); use --batch " << readable << " or less");
  }
  return folder;
}

// Opens the training data (cfg is final: size, crop), validating it before anything is written.
// A failure is the user's data: reported against --data, without the loader's source location.
std::shared_ptr<data::Dataset> open_dataset(TrainConfig& cfg) {
  try {
    return open_dataset_unchecked(cfg);
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    EMBER_INPUT_CHECK(false, (cfg.data.empty() ? std::string("the default data (Fashion-MNIST)") : "--data " + cfg.data)
                                 << ": " << without_location(e.what()));
  }
  return nullptr;
}

// The model, its width checked: a --width whose channel counts a layer cannot take (e.g. the
// attention block needs a multiple of 8) is reported against the flag, not the layer.
std::unique_ptr<Run> build_run(const TrainConfig& cfg, Device device) {
  try {
    return std::make_unique<Run>(cfg, device);
  } catch (const OutOfMemory&) {
    throw;
  } catch (const Error& e) {
    const std::string why = without_location(e.what());
    EMBER_INPUT_CHECK(false, "--width " << cfg.width << " gives channel counts that --arch " << cfg.arch
                                        << " at --size " << cfg.size << " cannot use (" << why
                                        << "); try a larger --width");
  }
  return nullptr;
}

// "" when every parameter and buffer of G, D and G_ema is finite, else the first bad one's name.
// One reduction per tensor summed on the device, one read: sum(x * 0) is 0 unless x holds a NaN
// or an Inf (both give NaN).
std::string first_non_finite(Run& run) {
  NoGradGuard no_grad;
  StateDict all;
  for (auto& [prefix, m] : std::vector<std::pair<std::string, Module*>>{
           {"G.", run.gan.G.get()}, {"D.", run.gan.D.get()}, {"G_ema.", run.G_ema.get()}})
    if (m)
      for (auto& kv : m->state_dict()) all.emplace_back(prefix + kv.first, kv.second);
  Tensor acc;
  for (auto& kv : all) {
    Tensor z = ops::sum(ops::scale(kv.second, 0.0f));
    acc = acc.defined() ? ops::add(acc, z) : z;
  }
  if (!acc.defined() || std::isfinite(acc.item())) return "";
  for (auto& kv : all)
    if (!std::isfinite(ops::sum(ops::scale(kv.second, 0.0f)).item())) return kv.first;
  return "(a parameter)";
}

// Stops the run on a NaN/Inf: the broken state is never saved; the last checkpoint stays.
[[noreturn]] void fail_non_finite(int64_t step, const std::string& what, const std::string& last_checkpoint) {
  EMBER_INPUT_CHECK(false, "step " << step << ": " << what << " is not finite (NaN or Inf); training stopped "
                                   << "without writing a checkpoint of this state. "
                                   << (last_checkpoint.empty() ? std::string("No checkpoint was written yet.")
                                                               : "The last good checkpoint is " + last_checkpoint + ".")
                                   << " Lower learning rates (--lr-g, --lr-d) may help.");
  std::abort();  // not reached
}

float finite_loss(const Tensor& loss, int64_t step, const char* what, const std::string& last_checkpoint) {
  const float v = loss.item();
  if (!std::isfinite(v)) fail_non_finite(step, what, last_checkpoint);
  return v;
}

double mean_of(const Tensor& t) { return ops::mean(t).item(); }

// Writes the sample grid and the attention picture for the fixed noise.
void write_samples(Run& run, const Tensor& z_fixed, const std::string& dir) {
  NoGradGuard no_grad;
  Module& G = run.sampler();
  G.eval();
  // Ask G's first attention layer to keep its input so its weights can be drawn.
  SelfAttention* attn = first_attention(G);  // of the EMA copy when the pictures come from it
  if (attn) attn->keep_input = true;
  Tensor images = G(z_fixed);
  const std::string name = step_name(run.step);
  data::write_png_grid(dir + "/" + name + ".png", images.to(Device::CPU), 8);
  if (attn) write_attention_picture(*attn, images, dir + "/attention_" + name + ".png");
  G.train();
}

// Seconds to pause between writing a checkpoint and moving it into place, from
// SAGAN_CELEBA_DEBUG_SAVE_PAUSE (tests kill the run there); 0 when unset.
double debug_save_pause() {
  const char* v = std::getenv("SAGAN_CELEBA_DEBUG_SAVE_PAUSE");
  return v ? std::atof(v) : 0.0;
}

// Writes RUN/checkpoints/step_N.safetensors after checking that the state is finite. Returns its path.
std::string save(Run& run, const data::BatchLoader& loader, const std::string& ckpt_dir,
                 const std::string& last_checkpoint) {
  const std::string bad = first_non_finite(run);
  if (!bad.empty()) fail_non_finite(run.step, "tensor '" + bad + "'", last_checkpoint);
  const std::string path = ckpt_dir + "/" + step_name(run.step) + ".safetensors";
  const models::TrainingState state = run.state(checkpoint_config(run.cfg, loader.epoch(), loader.batch_in_epoch()));
  const double pause = debug_save_pause();
  try {
    if (pause <= 0) {
      models::save_checkpoint(path, state);  // itself atomic: a .tmp renamed into place
    } else {
      // Test hook: the finished file waits as path.tmp (what a crash before the rename leaves).
      models::save_checkpoint(path + ".tmp", state);
      std::fprintf(stderr, "debug: pausing %.1f s before renaming %s.tmp\n", pause, path.c_str());
      std::this_thread::sleep_for(std::chrono::duration<double>(pause));
      EMBER_CHECK(std::rename((path + ".tmp").c_str(), path.c_str()) == 0, "cannot rename " << path << ".tmp");
    }
  } catch (const Error& e) {
    EMBER_INPUT_CHECK(false, "cannot write the checkpoint " << path << ": " << without_location(e.what()) << "; "
                                                             << (last_checkpoint.empty() ? std::string("no earlier checkpoint")
                                                                                         : "the last good one, " + last_checkpoint + ", is intact"));
  }
  std::printf("checkpoint: %s\n", path.c_str());
  return path;
}

}  // namespace

int run_train(TrainConfig cfg, const std::set<std::string>& given) {
  // Under mpirun: join the job first (each rank picks its GPU before any CUDA work).
  DataParallel dp;
  // 1. Everything that can fail on bad input happens before the run folder is touched.
  int64_t start_epoch = 0, start_batch = 0, saved_global_batch = 0;
  std::string resume_from;
  if (cfg.resume) {
    ResumePoint rp = find_resume_point(cfg.out);
    cfg = merge_for_resume(rp.config.cfg, cfg, given);  // then checked as a whole, with the run's data
    resume_from = rp.path;
    start_epoch = rp.config.loader_epoch, start_batch = rp.config.loader_batch;
    const int saved_world = rp.config.cfg.world_size;
    EMBER_INPUT_CHECK(saved_world >= 1 && saved_world <= (1 << 20),
                      "--resume: checkpoint " << rp.path << " names a world size of " << saved_world);
    saved_global_batch = int64_t(rp.config.cfg.batch) * saved_world;
  }
  cfg.world_size = dp.world();
  cfg.check_flags(given);
  Device device = parse_device(cfg.device);
  const int checkpoint_channels = cfg.channels;
  if (cfg.data.empty()) cfg.size = 32;  // Fashion-MNIST; another explicit --size was refused above
  if (cfg.width == 0) cfg.width = (cfg.data.empty() && device == Device::CPU) ? 0.25f : 1.0f;
  cfg.finalize();
  std::shared_ptr<data::Dataset> dataset = open_dataset(cfg);
  EMBER_INPUT_CHECK(resume_from.empty() || cfg.channels == checkpoint_channels,
                    "--data: the checkpoint's run trained on " << checkpoint_channels << "-channel images, this data has "
                                                               << cfg.channels);
  if (cfg.deterministic) {
    context().allow_tf32 = false;
    // The per-shape timing of the CPU convolutions may choose differently in a resumed process.
    if (context().cpu_conv == CpuConv::Auto) context().cpu_conv = CpuConv::Im2col;
  }

  std::unique_ptr<Run> run_ptr = build_run(cfg, device);
  Run& run = *run_ptr;
  if (!resume_from.empty()) {
    models::TrainingState s = run.state("");
    try {
      models::load_checkpoint(resume_from, s);
    } catch (const Error& e) {
      EMBER_INPUT_CHECK(false, "--resume: checkpoint " << resume_from << ": " << without_location(e.what()));
    }
    run.step = s.step;
    if (dp.writer())
      std::printf("resumed from %s at step %lld\n", resume_from.c_str(), static_cast<long long>(run.step));
  }
  dp.set_gradient_options(cfg.grad_overlap, cfg.bucket_mb);
  dp.start(run, cfg.sync_bn);
  if (run.step >= cfg.steps) {
    std::printf("nothing to do: the run is at step %lld of %lld\n", static_cast<long long>(run.step),
                static_cast<long long>(cfg.steps));
    return 0;
  }

  data::LoaderOptions lo;
  lo.batch_size = cfg.batch;
  lo.seed = static_cast<uint64_t>(cfg.seed);
  lo.threads = cfg.workers;
  lo.start_epoch = start_epoch;
  lo.start_batch = start_batch;
  dp.shard(lo, saved_global_batch);
  data::BatchLoader loader(dataset, lo);

  // 2. Now the run folder (rank 0 alone writes).
  const std::string sample_dir = cfg.out + "/samples", ckpt_dir = cfg.out + "/checkpoints";
  if (dp.writer()) {
    fs::create_directories(sample_dir);
    fs::create_directories(ckpt_dir);
  }

  std::vector<std::string> gamma_names, sigma_names;
  for (auto& a : run.gan.attention) gamma_names.push_back(a.first);
  for (auto& s : run.gan.spectral) sigma_names.push_back(s.first);
  std::unique_ptr<MetricsLog> metrics;
  if (dp.writer())
    metrics = std::make_unique<MetricsLog>(cfg.out + "/metrics.csv", gamma_names, sigma_names,
                                           resume_from.empty() ? -1 : run.step);

  TrainingFrechet frechet(cfg, device);
  Generator fixed(static_cast<uint64_t>(cfg.seed) + 2);  // the sample grid's noise: the same picture all run long
  Tensor z_fixed = randn(Shape{64, run.gan.z_dim}, fixed, device);

  if (dp.writer()) {
    std::printf("sagan_celeba: %s %dx%d, %d channel(s), width %.3g, batch %d, steps %lld, device %s, G %lld / D %lld parameters\n",
                cfg.arch.c_str(), cfg.size, cfg.size, cfg.channels, cfg.width, cfg.batch,
                static_cast<long long>(cfg.steps), device_name(device),
                static_cast<long long>(run.gan.G->num_parameters()), static_cast<long long>(run.gan.D->num_parameters()));
    if (dp.world() > 1)
      std::printf("data parallel: %d processes (%s), batch %d per process, global batch %lld, BatchNorm %s\n", dp.world(),
                  dp.group().backend_name().c_str(), cfg.batch, static_cast<long long>(cfg.batch) * dp.world(),
                  cfg.sync_bn ? "synchronised (--sync-bn)" : "per process");
    std::fflush(stdout);
  }

  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGXFSZ, SIG_IGN);  // a file-size limit fails the write (EFBIG) instead of killing us
  auto t_start = std::chrono::steady_clock::now();
  auto t_log = t_start;
  int64_t images_since_log = 0;
  const int64_t first_step = run.step;
  const int64_t B = cfg.batch;
  std::string last_checkpoint = resume_from;
  bool saved_this_step = false;

  while (run.step < cfg.steps) {
    const int64_t step = run.step + 1;  // the step being computed, as the logs number it
    Tensor last_loss_d, last_real, last_fake;  // of the last D step, read when logging
    // D: n_dis steps, each on a fresh real batch and fresh noise; G's output is a constant here.
    for (int k = 0; k < cfg.n_dis; ++k) {
      Tensor real = loader.next().images(device);
      Tensor fake;
      {
        NoGradGuard no_grad;
        fake = (*run.gan.G)(dp.noise(run.rng, B, run.gan.z_dim, device));
      }
      models::DLogits d = models::discriminate(*run.gan.D, real, fake, run.gan.hinge);
      Tensor loss_d = run.gan.hinge ? models::d_loss_hinge(d.real, d.fake) : models::d_loss_bce(d.real, d.fake);
      finite_loss(loss_d, step, "the discriminator loss", last_checkpoint);
      run.opt_D->zero_grad();
      dp.backward_starts(*run.gan.D);
      loss_d.backward();
      dp.average_gradients(*run.gan.D);
      run.opt_D->step();
      last_loss_d = loss_d.detach(), last_real = d.real.detach(), last_fake = d.fake.detach();
    }
    // G: one step through D (D's weights are not updated here). D stays in training mode, as in
    // the official SAGAN code, so this forward advances D's spectral-norm power iterations a
    // second time per step (u and v are buffers, not trained: this only refines the estimate).
    Tensor fake = (*run.gan.G)(dp.noise(run.rng, B, run.gan.z_dim, device));
    Tensor logits = (*run.gan.D)(fake);
    Tensor loss_g = run.gan.hinge ? models::g_loss_hinge(logits) : models::g_loss_bce(logits);
    finite_loss(loss_g, step, "the generator loss", last_checkpoint);
    run.opt_G->zero_grad();
    dp.backward_starts(*run.gan.G);
    loss_g.backward();
    dp.average_gradients(*run.gan.G);
    run.opt_G->step();
    if (!cfg.sync_bn) dp.sync_buffers(run);
    if (run.ema) {
      run.ema->decay = step <= cfg.ema_start ? 0.0f : cfg.ema;  // BigGAN: a plain copy of G until the start
      run.ema->update();
    }
    ++run.step;
    images_since_log += B * cfg.n_dis * dp.world();
    debug_rank_fault(dp, run);

    const bool frechet_now = frechet.due(run.step);
    const bool log_row = run.step % cfg.log_every == 0 || run.step == cfg.steps || frechet_now;
    // The first step of this process gets a progress line too (on a CPU a step can take seconds).
    if (log_row || run.step == first_step + 1) {
      const std::string bad = first_non_finite(run);
      if (!bad.empty()) fail_non_finite(run.step, "tensor '" + bad + "'", last_checkpoint);
      auto now = std::chrono::steady_clock::now();
      double dt = std::chrono::duration<double>(now - t_log).count();
      double elapsed = std::chrono::duration<double>(now - t_start).count();
      StepMetrics m;
      m.step = run.step;
      // The global batch's values: the mean of the ranks' means (equal shards).
      double v[4] = {last_loss_d.item(), mean_of(last_real), mean_of(last_fake), loss_g.item()};
      dp.mean(v, 4);
      m.loss_d = v[0], m.d_real = v[1], m.d_fake = v[2], m.loss_g = v[3];
      m.images_per_s = images_since_log / std::max(dt, 1e-9);
      if (frechet_now) {
        m.frechet = frechet.measure(run);
        now = std::chrono::steady_clock::now();  // the next interval's images/s excludes the measurement
      }
      m.latest_frechet = frechet.latest();
      for (auto& a : run.gan.attention) m.gammas.push_back(a.second->gamma.item());
      for (auto& s : run.gan.spectral) m.sigmas.push_back(s.second->spectral_norm_state().last_sigma());
#ifdef EMBER_WITH_CUDA
      if (device == Device::CUDA) {
        cuda_rt::AllocatorStats st = cuda_rt::allocator_stats();
        m.mem_in_use_mb = st.in_use / 1048576.0, m.mem_peak_mb = st.peak_in_use / 1048576.0;
      }
#endif
      if (log_row && metrics) metrics->write(m);
      double per_step = elapsed / static_cast<double>(run.step - first_step);
      if (dp.writer()) {
        std::printf("%s\n", progress_line(m, cfg.steps, per_step * static_cast<double>(cfg.steps - run.step)).c_str());
        std::fflush(stdout);
      }
      if (log_row) {
        t_log = now;
        images_since_log = 0;
      }
    }
    if (dp.writer() && (run.step % cfg.sample_every == 0 || run.step == cfg.steps)) write_samples(run, z_fixed, sample_dir);
    saved_this_step = run.step % cfg.checkpoint_every == 0 || run.step == cfg.steps;
    // A signal may reach some ranks only: they stop together, after the same step.
    const bool stop = dp.world() > 1 ? dp.any(g_stop_signal != 0) : g_stop_signal != 0;
    if (dp.world() > 1 && (saved_this_step || stop)) {
      const uint64_t h = dp.check_in_sync(run);
      if (dp.writer())
        std::printf("ranks in sync at step %lld: state hash %016llx on all %d\n", static_cast<long long>(run.step),
                    static_cast<unsigned long long>(h), dp.world());
    }
    if (saved_this_step && dp.writer()) last_checkpoint = save(run, loader, ckpt_dir, last_checkpoint);
    if (stop) {
      if (!saved_this_step && dp.writer()) last_checkpoint = save(run, loader, ckpt_dir, last_checkpoint);
      if (dp.writer())
        std::printf("stopped by signal %d at step %lld; continue with: sagan_celeba train --out %s --resume\n",
                    g_stop_signal.load(), static_cast<long long>(run.step), cfg.out.c_str());
      dp.group().barrier();  // no rank finalises while rank 0 still writes
      return 0;
    }
  }
  if (dp.writer() && dp.world() > 1) {
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::printf("data parallel: gradient all-reduce %.2f s of %.2f s of training (%.1f%%), %s\n", dp.gradient_seconds(),
                total, 100.0 * dp.gradient_seconds() / std::max(total, 1e-9), dp.gradient_summary().c_str());
  }
  if (dp.writer())
    std::printf("done: %lld steps; samples in %s, checkpoints in %s, metrics in %s/metrics.csv\n",
                static_cast<long long>(run.step), sample_dir.c_str(), ckpt_dir.c_str(), cfg.out.c_str());
  dp.group().barrier();
  return 0;
}

}  // namespace sagan_example
