// The training-step benchmark: how fast ember trains SAGAN, one full step exactly as
// examples/sagan_celeba/trainer.cpp runs it (n_dis = 1):
//   D step: fake = G(z) under NoGradGuard; models::discriminate (real and fake as ONE batch);
//           hinge loss; opt_D.zero_grad, backward, Adam step (lr 4e-4)
//   G step: logits = D(G(z')); -mean(logits); opt_G.zero_grad, backward, Adam step (lr 1e-4)
// Adam(beta1 0, beta2 0.9) with TTUR, as the example's defaults. The real batch is uniform noise in
// [-1, 1] made once on the device: data loading is not timed (the loader runs in its own threads in
// the example). Fresh z is drawn on the device each step, as the trainer does.
// Timing: `--warmup` steps (cuDNN heuristic plans cached per shape, allocator cache filled),
// then `--steps` steps (fewer: see --max-seconds), each timed with std::chrono between device
// synchronisations; median and min ms/step, images/s = B real images / median step time. On CUDA
// also: the allocator's peak bytes in use during the timed steps and its cudaMalloc calls during
// them (a warm step must make none).
// TF32: ember's default (context().allow_tf32: convolutions and GEMMs); PyTorch's default is TF32
// for convolutions only (benchmarks/torch_train_step.py prints the same table).
// Without a GPU it says the CUDA part is skipped and times a small CPU configuration.
// On the CPU it also prints the BLAS library's kernels, the vector path of ember's own kernels,
// the machine's sgemm rate (1024^3, best of 5) and, per configuration, the GEMM work of one step
// (GFLOP, counted by cpu::detail::gemm) and the rate it achieved over the whole step.
//   usage: bench_train_step [--res 128,64] [--models sagan,sagan_resnet] [--batch 64] [--width 1]
//                           [--channels 3] [--steps 10] [--warmup 3] [--max-seconds 4] [--cpu]
// --max-seconds: the timed steps of one configuration are cut (to no fewer than 3) when the last
// warm-up step says they would take longer.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "core/autograd.h"
#include "core/context.h"
#include "core/error.h"
#include "core/profile.h"
#include "core/rng.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_fallback.h"
#include "layers/optim.h"
#include "models/losses.h"
#include "models/sagan.h"
#include "models/sagan_resnet.h"
#ifdef EMBER_WITH_CUDA
#include "core/device_memory.h"
#endif

using namespace ember;

namespace {

struct Options {
  std::vector<int> resolutions;
  std::vector<std::string> models;
  int batch = 64;
  float width = 1.0f;
  int channels = 3;  // image channels (Fashion-MNIST: 1)
  int steps = 10;
  int warmup = 3;
  double max_seconds = 4;  // for the timed steps of one configuration
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<int> parse_resolutions(const std::string& s) {
  std::vector<int> out;
  for (const std::string& r : split_list(s)) out.push_back(std::atoi(r.c_str()));
  return out;
}

const char* arg_str(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == name) return argv[i + 1];
  return fallback;
}

bool has_flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == name) return true;
  return false;
}

void sync(Device d) {
#ifdef EMBER_WITH_CUDA
  if (d == Device::CUDA) cuda_rt::synchronize();
#else
  (void)d;
#endif
}

struct Models {
  std::shared_ptr<Module> G, D;
  int64_t z_dim = 128;
};

// The same construction as examples/sagan_celeba/gan.cpp (resnet base = 64 * width, multiple of 8).
Models build(const std::string& name, int res, float width, int channels, Device device) {
  Generator gen(1);
  Models m;
  if (name == "sagan") {
    models::SaganConfig c;
    c.resolution = res, c.width = width;
    c.image_channels = channels;
    m.G = std::make_shared<models::SaganGenerator>(c, gen);
    m.D = std::make_shared<models::SaganDiscriminator>(c, gen);
    m.z_dim = c.z_dim;
  } else {
    EMBER_CHECK(name == "sagan_resnet", "bench_train_step: unknown model '" << name << "' (sagan or sagan_resnet)");
    models::SaganResNetConfig c;
    c.resolution = res;
    c.base = std::max<int64_t>(8, static_cast<int64_t>(64 * width + 0.5f) / 8 * 8);
    c.image_channels = channels;
    m.G = std::make_shared<models::SaganResNetGenerator>(c, gen);
    m.D = std::make_shared<models::SaganResNetDiscriminator>(c, gen);
    m.z_dim = c.z_dim;
  }
  m.G->to(device);
  m.D->to(device);
  return m;
}

// Builds the models, trains warmup + steps steps and prints one table row.
void run_config(const std::string& name, int res, const Options& o, Device device) {
  Models m = build(name, res, o.width, o.channels, device);
  AdamOptions og, od;
  og.lr = 1e-4f, od.lr = 4e-4f;  // TTUR; beta1 0, beta2 0.9 are AdamOptions' defaults
  Adam opt_G(m.G->named_parameters(), og), opt_D(m.D->named_parameters(), od);
  Generator rng(2);
  const int64_t B = o.batch;
  const Tensor real = rand_uniform(Shape{B, o.channels, res, res}, rng, device, -1.f, 1.f);

  Tensor loss_d, loss_g;
  auto step = [&] {
    Tensor fake;
    {
      NoGradGuard no_grad;
      fake = (*m.G)(randn(Shape{B, m.z_dim}, rng, device));
    }
    models::DLogits d = models::discriminate(*m.D, real, fake);
    loss_d = models::d_loss_hinge(d.real, d.fake);
    opt_D.zero_grad();
    loss_d.backward();
    opt_D.step();

    Tensor logits = (*m.D)((*m.G)(randn(Shape{B, m.z_dim}, rng, device)));
    loss_g = models::g_loss_hinge(logits);
    opt_G.zero_grad();
    loss_g.backward();
    opt_G.step();
  };

  // One step's wall time, the device's queue drained at both ends.
  auto timed_step = [&] {
    const auto a = std::chrono::steady_clock::now();
    step();
    sync(device);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
  };
  double last_ms = 0;
  for (int i = 0; i < o.warmup; ++i) last_ms = timed_step();
  profile::reset();  // EMBER_PROFILE=1: the table covers the timed steps only
  // Fewer timed steps (at least 3) when the last warm-up step says they would not fit in
  // --max-seconds, so that a slow machine still finishes within the GPU check's share.
  int steps = o.steps;
  if (last_ms > 0) {
    const int fit = static_cast<int>(1e3 * o.max_seconds / last_ms);
    steps = std::max(std::min(steps, 3), std::min(steps, fit));
  }
#ifdef EMBER_WITH_CUDA
  cuda_rt::AllocatorStats before{};
  if (device == Device::CUDA) {
    cuda_rt::reset_peak();
    before = cuda_rt::allocator_stats();
  }
#endif
  std::vector<double> ms;
  const uint64_t flops_before = cpu::detail::gemm_flops();
  for (int i = 0; i < steps; ++i) ms.push_back(timed_step());
  const double gemm_gflop_per_step = (cpu::detail::gemm_flops() - flops_before) * 1e-9 / steps;
  char peak[32] = "-", allocs[32] = "-";
#ifdef EMBER_WITH_CUDA
  if (device == Device::CUDA) {
    const cuda_rt::AllocatorStats after = cuda_rt::allocator_stats();
    std::snprintf(peak, sizeof peak, "%.0f", after.peak_in_use / 1048576.0);
    std::snprintf(allocs, sizeof allocs, "%lld", static_cast<long long>(after.device_allocs - before.device_allocs));
  }
#endif
  const double med = bench::median(ms), mn = *std::min_element(ms.begin(), ms.end());
  // The losses are read after timing: a finite value shows the step really computed something.
  std::printf("%-13s %5d %6.3g %6d %-5s %6d %11.2f %9.2f %10.1f %9s %7s   D %.3f G %.3f\n", name.c_str(), res,
              o.width, o.batch, device_name(device), steps, med, mn, 1e3 * B / med, peak, allocs, loss_d.item(),
              loss_g.item());
  if (device == Device::CPU)
    std::printf("  gemm: %.2f GFLOP per step, %.1f GFLOP/s over the median step\n", gemm_gflop_per_step,
                gemm_gflop_per_step * 1e3 / med);
  std::fflush(stdout);
}

// The machine's sgemm rate through the same GEMM entry: 1024^3, best of 5 (after one warm-up).
double sgemm_rate_gflops() {
  const int64_t n = 1024;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  double best = 1e30;
  for (int i = 0; i < 6; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    cpu::detail::gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) best = std::min(best, s);
  }
  return 2.0 * n * n * n / best * 1e-9;
}

void print_header(const char* title) {
  std::printf("\n## %s\n", title);
  std::printf("%-13s %5s %6s %6s %-5s %6s %11s %9s %10s %9s %7s   %s\n", "model", "res", "width", "batch", "dev",
              "steps", "median_ms", "min_ms", "images/s", "peak_MB", "mallocs", "last losses");
}

int run(int argc, char** argv) {
  Options o;
  o.resolutions = parse_resolutions(arg_str(argc, argv, "--res", "128,64"));
  o.models = split_list(arg_str(argc, argv, "--models", "sagan,sagan_resnet"));
  o.batch = bench::arg_int(argc, argv, "--batch", 64);
  o.width = static_cast<float>(std::atof(arg_str(argc, argv, "--width", "1")));
  o.channels = bench::arg_int(argc, argv, "--channels", 3);
  o.steps = bench::arg_int(argc, argv, "--steps", 10);
  o.warmup = bench::arg_int(argc, argv, "--warmup", 3);
  o.max_seconds = std::atof(arg_str(argc, argv, "--max-seconds", "4"));
  const bool force_cpu = has_flag(argc, argv, "--cpu");
  EMBER_CHECK(o.batch > 0 && o.steps > 0 && o.warmup >= 0 && o.width > 0,
              "bench_train_step: --batch, --steps and --width must be positive, --warmup >= 0; got batch "
                  << o.batch << ", steps " << o.steps << ", width " << o.width << ", warmup " << o.warmup);
  EMBER_CHECK(o.channels == 1 || o.channels == 3, "bench_train_step: --channels must be 1 or 3, got " << o.channels);

  std::printf("bench_train_step: one SAGAN training step (D step on a joint real+fake batch, then G step), "
              "hinge loss, Adam(0, 0.9) TTUR 1e-4/4e-4, n_dis 1; images/s = batch / median step; "
              "TF32 %s\n",
              context().allow_tf32 ? "on (convs and GEMMs)" : "off");
  if (cuda_available() && !force_cpu) {
#ifdef EMBER_WITH_CUDA
    bench::print_device();
#endif
    print_header("CUDA");
    for (const std::string& m : o.models)
      for (int r : o.resolutions) run_config(m, r, o, Device::CUDA);
#ifdef EMBER_WITH_CUDA
    std::printf("allocator: %s\n", cuda_rt::allocator_summary().c_str());
#endif
    return 0;
  }
  std::printf("CUDA part skipped (%s)\n", force_cpu ? "--cpu" : cuda_unavailable_reason().c_str());
  // A small configuration so that the program is exercised in CPU builds; argv still overrides it.
  Options c = o;
  c.resolutions = parse_resolutions(arg_str(argc, argv, "--res", "32"));
  c.batch = bench::arg_int(argc, argv, "--batch", 16);
  c.width = static_cast<float>(std::atof(arg_str(argc, argv, "--width", "0.25")));
  c.steps = bench::arg_int(argc, argv, "--steps", 3);
  c.warmup = bench::arg_int(argc, argv, "--warmup", 1);
  c.models = split_list(arg_str(argc, argv, "--models", "sagan,sagan_resnet"));
  std::printf("CPU: %s; ember's kernels: %s\n", cpu::blas::info().line.c_str(), cpu::kernel_vector_path());
  std::printf("machine: sgemm 1024^3 through that GEMM: %.1f GFLOP/s (best of 5)\n", sgemm_rate_gflops());
  print_header("CPU");
  for (const std::string& m : c.models)
    for (int r : c.resolutions) run_config(m, r, c, Device::CPU);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_step: %s\n", e.what());
    return 1;
  }
}
