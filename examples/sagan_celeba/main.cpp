// sagan_celeba: train SAGAN (Zhang et al. 2018, as T. Silva's article describes it) on a folder of
// images such as CelebA, or by default on Fashion-MNIST; draw samples; export PNGs for FID; score
// a Fashion-MNIST generator with a Frechet distance on a classifier's features.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <set>
#include <string>

#include "core/error.h"
#include "core/profile.h"
#include "examples/sagan_celeba/evaluate.h"
#include "examples/sagan_celeba/trainer.h"

using namespace sagan_example;

int main(int argc, char** argv) {
  CLI::App app{"sagan_celeba: train and sample SAGAN with ember"};
  app.require_subcommand(1);

  TrainConfig cfg;
  CLI::App* train = app.add_subcommand("train", "Train G and D (default data: Fashion-MNIST at 32x32)");
  train->add_option("--data", cfg.data, "Folder of JPEG/PNG images, read recursively (e.g. img_align_celeba)");
  train->add_option("--out", cfg.out, "Run folder: samples/, checkpoints/, metrics.csv")->capture_default_str();
  train->add_option("--size", cfg.size, "Image size: 128, 64 or 32 (Fashion-MNIST: 32)")->capture_default_str();
  train->add_option("--arch", cfg.arch, "sagan | sagan-resnet | dcgan")->capture_default_str();
  train->add_option("--attention", cfg.attention, "Attention block: article | official")->capture_default_str();
  train->add_option("--width", cfg.width, "Channel multiplier (default 1; 0.25 for Fashion-MNIST on CPU)");
  train->add_option("--batch", cfg.batch, "Batch size")->capture_default_str();
  train->add_option("--steps", cfg.steps, "Generator steps in all")->capture_default_str();
  train->add_option("--lr-g", cfg.lr_g, "Generator learning rate (TTUR)")->capture_default_str();
  train->add_option("--lr-d", cfg.lr_d, "Discriminator learning rate (TTUR)")->capture_default_str();
  train->add_option("--beta1", cfg.beta1, "Adam beta1")->capture_default_str();
  train->add_option("--beta2", cfg.beta2, "Adam beta2")->capture_default_str();
  train->add_option("--n-dis", cfg.n_dis, "D steps per G step")->capture_default_str();
  train->add_option("--device", cfg.device, "cuda | cpu | auto")->capture_default_str();
  train->add_option("--seed", cfg.seed, "Seed of weights, noise and data order")->capture_default_str();
  train->add_option("--sample-every", cfg.sample_every, "Write a sample grid and attention map every K steps")
      ->capture_default_str();
  train->add_option("--checkpoint-every", cfg.checkpoint_every, "Write a checkpoint every K steps")->capture_default_str();
  train->add_option("--log-every", cfg.log_every, "Metrics line every K steps")->capture_default_str();
  train->add_option("--frechet-every", cfg.frechet_every,
                    "Frechet distance (Fashion-MNIST) every K steps; -1 = with the sample grid, 0 = off")
      ->capture_default_str();
  train->add_option("--frechet-n", cfg.frechet_n, "Generated images per Frechet distance during training")
      ->capture_default_str();
  train->add_option("--crop", cfg.crop, "Centre crop side before resizing (default 178 at 128, 160 at 64)");
  train->add_flag("!--no-flip", cfg.flip, "Disable random horizontal flips");
  train->add_option("--workers", cfg.workers, "Image decoding threads")->capture_default_str();
  train->add_option("--ema", cfg.ema, "Keep an EMA of G's weights with this decay (e.g. 0.999); 0 = off");
  train->add_option("--ema-start", cfg.ema_start, "The EMA copy equals G up to this step, then averages (BigGAN)")
      ->capture_default_str();
  train->add_flag("--deterministic", cfg.deterministic, "Full fp32 (no TF32), CPU convolutions on im2col + GEMM: a resumed run repeats exactly");
  train->add_flag("--resume", cfg.resume, "Continue from the newest checkpoint in --out");
  train->add_flag("--sync-bn", cfg.sync_bn,
                  "Under mpirun: BatchNorm statistics over the global batch (N x --batch), as one process would");
  train->add_flag("!--no-overlap", cfg.grad_overlap,
                  "Under mpirun: average gradients after backward instead of starting buckets during it");
  train->add_option("--bucket-mb", cfg.bucket_mb, "Under mpirun: gradient bucket size in MB (DDP's bucket_cap_mb)")
      ->capture_default_str();
  bool profile = false;
  train->add_flag("--profile", profile, "At exit, print the time per op (as EMBER_PROFILE=1 does)");

  SampleOptions so;
  CLI::App* sample = app.add_subcommand("sample", "Draw a grid of samples from a checkpoint");
  sample->add_option("--checkpoint", so.checkpoint, "A checkpoint file")->required();
  sample->add_option("--n", so.n, "Number of images")->capture_default_str();
  sample->add_option("--out", so.out, "PNG grid to write")->capture_default_str();
  sample->add_option("--seed", so.seed, "Noise seed")->capture_default_str();
  sample->add_option("--z", so.z_file, "Read the noise from a safetensors file (tensor 'z' [n, 128])");
  sample->add_option("--save-tensor", so.save_tensor, "Also write G's raw output as safetensors tensor 'images'");
  sample->add_option("--device", so.device, "cuda | cpu | auto")->capture_default_str();
  sample->add_flag("!--no-ema", so.ema, "Use the trained G even when the checkpoint has an EMA copy");
  sample->add_option("--bn", so.bn, "G's BatchNorm: auto (eval for the trained G, standing for EMA) | eval | batch | standing")->capture_default_str();
  sample->add_option("--attention", so.attention, "Also write the attention picture of the first image (PNG)");

  ExportOptions eo;
  CLI::App* exp = app.add_subcommand("export", "Write N single PNGs (for external FID tools such as pytorch-fid)");
  exp->add_option("--checkpoint", eo.checkpoint, "A checkpoint file")->required();
  exp->add_option("--n", eo.n, "Number of images")->capture_default_str();
  exp->add_option("--out", eo.out, "Folder to write 000000.png ...")->required();
  exp->add_option("--seed", eo.seed, "Noise seed")->capture_default_str();
  exp->add_option("--batch", eo.batch, "Images per forward pass")->capture_default_str();
  exp->add_option("--device", eo.device, "cuda | cpu | auto")->capture_default_str();
  exp->add_flag("!--no-ema", eo.ema, "Use the trained G even when the checkpoint has an EMA copy");
  exp->add_option("--bn", eo.bn, "G's BatchNorm: auto (eval for the trained G, standing for EMA) | eval | batch | standing")->capture_default_str();

  EvaluateOptions vo;
  CLI::App* eval = app.add_subcommand("evaluate", "Frechet distance to the Fashion-MNIST test images (the committed classifier's features)");
  eval->add_option("--checkpoint", vo.checkpoints, "Checkpoint(s) of a Fashion-MNIST run")->required();
  eval->add_option("--n", vo.n, "Generated images (and training images for the floor)")->capture_default_str();
  eval->add_flag("--ema", vo.ema, "Use the EMA generator (an error when the checkpoint has none)");
  eval->add_flag("--no-ema", vo.no_ema, "Use the trained generator even when the checkpoint has an EMA copy");
  eval->add_flag("--both", vo.both, "Score the trained and the EMA generator");
  eval->add_option("--bn", vo.bn, "G's BatchNorm: auto (eval for the trained G, standing for EMA) | eval | batch | standing (several: each)")
      ->delimiter(',')
      ->capture_default_str();
  eval->add_option("--csv", vo.csv, "Append step,generator,bn,n,frechet,checkpoint rows to this file");
  eval->add_option("--classifier", vo.classifier, "Classifier weights (default: the committed file)");
  eval->add_option("--seed", vo.seed, "Noise seed")->capture_default_str();
  eval->add_flag("!--no-floor", vo.floor, "Skip the real-train vs real-test floor");
  eval->add_option("--device", vo.device, "cuda | cpu | auto")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (profile) ember::profile::enable();
  try {
    if (*train) {
      std::set<std::string> given;  // flags on the command line, told apart from defaults
      for (const CLI::Option* o : train->get_options())
        if (o->count() > 0) given.insert(o->get_name());
      return run_train(cfg, given);
    }
    if (*sample) return run_sample(so);
    if (*exp) return run_export(eo);
    if (*eval) return run_evaluate(vo);
  } catch (const ember::InputError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());  // names the flag or file: no source location
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());  // internal: keeps its [file:line]
    return 1;
  }
  return 0;
}
