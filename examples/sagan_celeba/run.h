// What train, sample and export share: a run's models and optimisers, checkpoint naming and
// the configuration stored in each checkpoint.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "examples/sagan_celeba/config.h"
#include "examples/sagan_celeba/gan.h"
#include "layers/optim.h"
#include "models/checkpoint.h"

namespace sagan_example {

// "step_00000120"
std::string step_name(int64_t step);

// The checkpoint's "config" metadata: the training configuration and the loader position.
std::string checkpoint_config(const TrainConfig& cfg, int64_t epoch, int64_t batch);

struct CheckpointConfig {
  TrainConfig cfg;
  int64_t loader_epoch = 0, loader_batch = 0;
};
CheckpointConfig parse_checkpoint_config(const std::string& path);

// RUN_DIR/checkpoints/step_<N>.safetensors, largest N first (*.tmp files are never listed).
std::vector<std::string> checkpoints_newest_first(const std::string& run_dir);

// Where --resume continues: the newest checkpoint that reads and validates whole. Unreadable
// (truncated, corrupt) ones are skipped with a warning naming them, as are *.tmp leftovers of
// an interrupted write; an error when no checkpoint is usable.
struct ResumePoint {
  std::string path;
  CheckpointConfig config;
};
ResumePoint find_resume_point(const std::string& run_dir);

// Everything one run holds: models, optimisers, the noise generator.
struct Run {
  TrainConfig cfg;
  ember::Device device = ember::Device::CPU;
  ember::Generator init_gen, rng;
  Gan gan;
  std::unique_ptr<ember::Adam> opt_G, opt_D;
  std::shared_ptr<ember::Module> G_ema;  // optional
  std::unique_ptr<ember::EMA> ema;
  int64_t step = 0;

  explicit Run(const TrainConfig& c, ember::Device d) : cfg(c), device(d), init_gen(static_cast<uint64_t>(c.seed)),
        rng(static_cast<uint64_t>(c.seed) + 1) {
    gan = build_gan(cfg, init_gen, device);
    ember::AdamOptions og, od;
    og.lr = cfg.lr_g, od.lr = cfg.lr_d;
    og.beta1 = od.beta1 = cfg.beta1;
    og.beta2 = od.beta2 = cfg.beta2;
    opt_G = std::make_unique<ember::Adam>(gan.G->named_parameters(), og);
    opt_D = std::make_unique<ember::Adam>(gan.D->named_parameters(), od);
    if (cfg.ema > 0) {
      ember::Generator throwaway(static_cast<uint64_t>(cfg.seed));
      G_ema = build_gan(cfg, throwaway, device).G;
      ema = std::make_unique<ember::EMA>(*gan.G, *G_ema, cfg.ema);
    }
  }
  ember::models::TrainingState state(const std::string& config) {
    ember::models::TrainingState s;
    s.G = gan.G.get(), s.D = gan.D.get(), s.opt_G = opt_G.get(), s.opt_D = opt_D.get();
    s.G_ema = G_ema.get(), s.rng = &rng, s.step = step, s.config = config;
    return s;
  }
  // The generator used for pictures: the ember::EMA copy when there is one.
  ember::Module& sampler() { return G_ema ? *G_ema : *gan.G; }
};

// Rebuilds the run a checkpoint came from and loads it (G, D, optimisers: validated whole), the
// sampler in eval mode. A checkpoint that cannot be read is the user's file: reported against
// --checkpoint. device_name: cuda | cpu | auto. (Defined in sample.cpp.)
std::unique_ptr<Run> load_run(const std::string& checkpoint, const std::string& device_name);

}  // namespace sagan_example
