// The training configuration of sagan_celeba: every flag of `train`, saved as JSON inside each
// checkpoint so that `--resume` and `sample` rebuild exactly the same models.
#pragma once
#include <cstdint>
#include <set>
#include <string>

namespace sagan_example {

struct TrainConfig {
  std::string data;            // folder of JPEG/PNG images; empty = Fashion-MNIST (Debian package)
  std::string out = "runs/sagan";
  int size = 128;              // 128, 64 or 32 (Fashion-MNIST: 32)
  std::string arch = "sagan";  // sagan | sagan-resnet | dcgan
  std::string attention = "article";  // article | official (the SAGAN block variant)
  float width = 0;             // channel multiplier; 0 = default (1, or 0.25 on Fashion-MNIST on CPU)
  int batch = 64;
  int64_t steps = 2000;
  float lr_g = 1e-4f, lr_d = 4e-4f;  // TTUR, as in the SAGAN paper and its released code
  float beta1 = 0.0f, beta2 = 0.9f;
  int n_dis = 1;               // D steps per G step
  std::string device = "auto";
  int64_t seed = 1;            // >= 0 (signed so that a negative value is caught, not wrapped)
  int64_t sample_every = 100;
  int64_t checkpoint_every = 500;
  int64_t log_every = 10;
  // The Frechet distance during training (Fashion-MNIST only; quality.h): every K steps (0 =
  // off; -1 = with the sample grid) on N images.
  int64_t frechet_every = -1;
  int64_t frechet_n = 2000;
  int crop = 0;                // center crop side before resizing; 0 = default for the size
  bool flip = true;            // random horizontal flips
  int workers = 2;             // decoding threads
  bool deterministic = false;  // fixed reduction orders, TF32 off: resumed runs match exactly
  float ema = 0.0f;            // decay of an EMA copy of G (0 = off)
  int64_t ema_start = 0;       // BigGAN: the EMA copy equals G up to this step, then averages
  bool resume = false;
  int channels = 3;            // set from the data
  bool sync_bn = false;        // data-parallel: BatchNorm statistics over the global batch (--sync-bn)
  int world_size = 1;          // processes of the run (mpirun -np): set at start, saved for resume
  // data-parallel gradient averaging: buckets started during backward (--no-overlap: after it),
  // of at most bucket_mb MB (--bucket-mb). Not saved: they change timing, never results.
  bool grad_overlap = true;
  double bucket_mb = 25;

  std::string to_json() const;
  static TrainConfig from_json(const std::string& json);
  // Range checks of every flag on its own, before anything is read or written; errors name
  // the flag. `given` holds the flags on the command line ("--size"): a --size or --crop
  // given with the default data (Fashion-MNIST, 32x32 only) is an error, not silently replaced.
  void check_flags(const std::set<std::string>& given) const;
  // Fills defaults that depend on other fields (crop for the size, channels) and checks ranges.
  void finalize();
};

// --resume: the configuration to continue with. Flags that define the models or the
// optimisation (arch, size, width, attention, batch, learning rates, betas, n_dis, seed, ema, ema_start,
// crop, flip) take the checkpoint's value when omitted and must equal it when given: each
// difference is an error naming the flag and both values. The others (data, workers,
// intervals, steps, device, deterministic, sync_bn) take the command line's value when given, else the
// checkpoint's. The run folder is always the command line's --out.
TrainConfig merge_for_resume(const TrainConfig& checkpoint, const TrainConfig& command_line,
                             const std::set<std::string>& given);

}  // namespace sagan_example
