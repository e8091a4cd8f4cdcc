// The evaluate command (see evaluate.h).
#include "examples/sagan_celeba/evaluate.h"

#include <chrono>
#include <cstdio>

#include "core/error.h"
#include "examples/common/fashion_classifier.h"
#include "examples/sagan_celeba/quality.h"
#include "examples/sagan_celeba/run.h"

using namespace ember;

namespace sagan_example {

namespace {

// The run of a checkpoint, checked to be a Fashion-MNIST model the classifier can score.
std::unique_ptr<Run> load_fashion_run(const std::string& checkpoint, const std::string& device) {
  auto run = load_run(checkpoint, device);
  const TrainConfig& cfg = run->cfg;
  EMBER_INPUT_CHECK(cfg.data.empty() && cfg.channels == 1 && cfg.size == 32,
                    "--checkpoint " << checkpoint << ": its model makes " << cfg.channels << "-channel " << cfg.size
                                    << "x" << cfg.size << " images of " << cfg.data
                                    << "; the distance uses a Fashion-MNIST classifier and scores 1-channel 32x32 "
                                       "Fashion-MNIST models only. For RGB data write images with `sagan_celeba export` "
                                       "and score them with an external FID tool (e.g. pytorch-fid)");
  return run;
}

}  // namespace

int run_evaluate(const EvaluateOptions& opt) {
  EMBER_INPUT_CHECK(!opt.checkpoints.empty(), "evaluate: --checkpoint is required");
  EMBER_INPUT_CHECK(opt.n >= 2, "--n must be >= 2, got " << opt.n);
  EMBER_INPUT_CHECK(int(opt.ema) + int(opt.no_ema) + int(opt.both) <= 1, "--ema, --no-ema and --both exclude each other");
  std::vector<BnMode> modes;
  for (const std::string& b : opt.bn) modes.push_back(parse_bn_mode(b, "--bn"));
  auto t0 = std::chrono::steady_clock::now();
  // Every checkpoint is checked before the (long) scoring starts.
  for (const std::string& ck : opt.checkpoints) {
    auto run = load_fashion_run(ck, opt.device);
    EMBER_INPUT_CHECK(!(opt.ema || opt.both) || run->G_ema,
                      (opt.ema ? "--ema: " : "--both: ") << ck << " has no EMA generator (trained without --ema)");
  }
  std::FILE* csv = nullptr;
  if (!opt.csv.empty()) {
    csv = std::fopen(opt.csv.c_str(), "a");
    EMBER_INPUT_CHECK(csv != nullptr, "--csv " << opt.csv << ": cannot open for appending");
  }
  std::unique_ptr<FrechetScorer> scorer;
  for (const std::string& ck : opt.checkpoints) {
    std::vector<bool> generators;  // true: the EMA copy
    if (opt.both) generators = {false, true};
    else generators = {!opt.no_ema && load_run(ck, opt.device)->G_ema != nullptr};
    for (bool ema : generators)
      for (BnMode mode : modes) {
        auto run = load_fashion_run(ck, opt.device);  // afresh: batch and standing modes change G's buffers
        if (!scorer)
          scorer = std::make_unique<FrechetScorer>(
              opt.classifier.empty() ? data::default_fashion_classifier_path() : opt.classifier, run->device);
        Module& G = ema ? *run->G_ema : *run->gan.G;
        const BnMode used = resolve_bn_mode(mode, ema);
        set_sampling_mode(G, used, run->gan.z_dim, run->device, run->cfg.batch, opt.seed + 1);
        const double d = scorer->distance_of_generator(G, run->gan.z_dim, opt.n, opt.seed, run->cfg.batch);
        std::printf("frechet distance %.3f: %lld images of %s G (step %lld, BatchNorm %s) vs the 10000 test images\n", d,
                    static_cast<long long>(opt.n), ema ? "the EMA" : "the trained", static_cast<long long>(run->step),
                    bn_mode_name(used));
        std::fflush(stdout);
        if (csv) {
          std::fprintf(csv, "%lld,%s,%s,%lld,%.4f,%s\n", static_cast<long long>(run->step), ema ? "ema" : "trained",
                       bn_mode_name(used), static_cast<long long>(opt.n), d, ck.c_str());
          std::fflush(csv);
        }
      }
  }
  if (csv) std::fclose(csv);
  if (opt.floor) {
    const double f = scorer->floor(opt.n);
    std::printf("floor %.3f: the first %lld real training images vs the test images (a perfect G at this n)\n", f,
                static_cast<long long>(opt.n));
  }
  std::printf("(%.1f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

}  // namespace sagan_example
