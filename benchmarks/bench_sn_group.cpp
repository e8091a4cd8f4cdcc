// Benchmark of one training step's spectral-norm power iterations for a whole model: the grouped
// step (ember::spectral_norm_step_all -> ops::spectral_norm_step_group: on CUDA two launches for
// every weight of the model) against the per-layer path (ops::spectral_norm_step once per weight:
// two launches each, as the layers did before the group existed). PyTorch's per-layer sequence is
// timed by benchmarks/torch_sn_group.py on the same models.
//
// The models are SAGAN's G and D (models/sagan.h) at the sizes users train; their weights are those
// of a fresh model (the step's cost does not depend on the values). Before timing, both paths run
// from the same u, v and must give the same sigma for every weight (bitwise on the CPU, where both
// call the same per-weight code; the program fails otherwise). Timing: median of --runs after one
// warm-up; CPU wall time; CUDA events when a GPU is present ("to be measured by the GPU check"
// otherwise).
//   usage: bench_sn_group [--runs N]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "benchmarks/bench_util.h"
#include "core/context.h"
#include "core/ops.h"
#include "core/rng.h"
#include "layers/spectral_norm.h"
#include "layers/weight_layer.h"
#include "models/sagan.h"

using namespace ember;

namespace {

void per_layer_step(const std::vector<WeightLayer*>& layers) {
  for (WeightLayer* l : layers) {
    SpectralNorm& sn = l->spectral_norm_state();
    ops::spectral_norm_step(l->weight, sn.dim, sn.u, sn.v, sn.sigma, true, sn.eps);
  }
}

std::vector<float> sigmas(const std::vector<WeightLayer*>& layers) {
  std::vector<float> s;
  for (WeightLayer* l : layers) s.push_back(l->spectral_norm_state().sigma.to(Device::CPU).item());
  return s;
}

struct Snapshot {
  std::vector<Tensor> u, v;
};
Snapshot save(const std::vector<WeightLayer*>& layers) {
  Snapshot s;
  for (WeightLayer* l : layers) {
    s.u.push_back(l->spectral_norm_state().u.clone());
    s.v.push_back(l->spectral_norm_state().v.clone());
  }
  return s;
}
void restore(const std::vector<WeightLayer*>& layers, const Snapshot& s) {
  for (size_t i = 0; i < layers.size(); ++i) {
    layers[i]->spectral_norm_state().u = s.u[i].clone();
    layers[i]->spectral_norm_state().v = s.v[i].clone();
  }
}

void bench_model(const char* name, Module& model, Device dev, int runs) {
  model.to(dev);
  const std::vector<WeightLayer*> layers = spectral_norm_layers(model);
  int64_t floats = 0;
  for (WeightLayer* l : layers) floats += l->weight.numel();
  // Same start, both paths, same sigmas.
  const Snapshot start = save(layers);
  spectral_norm_step_all(model);
  const std::vector<float> grouped = sigmas(layers);
  restore(layers, start);
  per_layer_step(layers);
  const std::vector<float> single = sigmas(layers);
  double worst = 0;
  for (size_t i = 0; i < layers.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(grouped[i]) - single[i]) / std::fabs(single[i]));
  const bool ok = dev == Device::CUDA ? worst <= 1e-6 : worst == 0;
  if (!ok) {
    std::printf("FAIL %s on %s: sigma of the grouped and per-layer steps differ (relative %.3g)\n", name,
                device_name(dev), worst);
    std::exit(1);
  }
  double t_group = 0, t_layer = 0;
  if (dev == Device::CPU) {
    t_group = bench::cpu_median_us([&] { spectral_norm_step_all(model); }, runs);
    t_layer = bench::cpu_median_us([&] { per_layer_step(layers); }, runs);
  }
#ifdef EMBER_WITH_CUDA
  else {
    t_group = bench::gpu_median_us([&](int) { spectral_norm_step_all(model); }, runs);
    t_layer = bench::gpu_median_us([&](int) { per_layer_step(layers); }, runs);
  }
#endif
  const std::string what = std::string(name) + " (" + std::to_string(layers.size()) + " weights, " +
                           std::to_string(floats * 4 / 1024) + " KB)";
  std::printf("%-4s %-40s %12.1f %12.1f %7.2fx %8zu %8d\n", device_name(dev), what.c_str(), t_group, t_layer,
              t_layer / t_group, 2 * layers.size(), 2);
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = bench::arg_int(argc, argv, "--runs", 20);
  std::printf("## spectral-norm step of every weight of a model: grouped vs per layer (median us)\n");
  // launches: CUDA launches of the per-layer path and of the grouped one (2 per weight, 2).
  std::printf("%-4s %-40s %12s %12s %8s %8s %8s\n", "dev", "model", "grouped_us", "per_layer_us", "ratio",
              "launches", "grouped");
  std::vector<Device> devs{Device::CPU};
  if (cuda_available()) devs.push_back(Device::CUDA);
  for (Device dev : devs) {
    for (int res : {32, 128}) {
      models::SaganConfig cfg;
      cfg.resolution = res;
      Generator gen(1);
      models::SaganGenerator g(cfg, gen);
      models::SaganDiscriminator d(cfg, gen);
      const std::string tag = "SAGAN-" + std::to_string(res);
      bench_model((tag + " G").c_str(), g, dev, runs);
      bench_model((tag + " D").c_str(), d, dev, runs);
    }
  }
  if (!cuda_available()) std::printf("cuda rows: to be measured by the GPU check (no GPU here)\n");
  return 0;
}
