// Training metrics: one CSV line every log_every steps (metrics.csv in the run folder, appended
// on resume) and a progress line on stdout with losses, images/s and ETA.
#pragma once
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace sagan_example {

struct StepMetrics {
  int64_t step = 0;
  double loss_d = 0, loss_g = 0;
  double d_real = 0, d_fake = 0;         // mean D(x), mean D(G(z))
  std::vector<double> gammas;            // one per attention layer (G first, then D)
  std::vector<double> sigmas;            // spectral-norm sigma estimates, one per SN layer
  double images_per_s = 0;
  double mem_in_use_mb = 0, mem_peak_mb = 0;  // device memory (0 on CPU)
  double frechet = std::nan("");         // measured at this step (empty in the CSV otherwise)
  double latest_frechet = std::nan("");  // the last measured, for the progress line
};

class MetricsLog {
 public:
  // Opens path; the header names the gamma and sigma columns. resume_step >= 0 (resuming from
  // that step): keeps the header and the lines up to that step, drops the later ones (the
  // resumed run logs those steps again) and any line cut short by a killed run, then appends.
  MetricsLog(const std::string& path, const std::vector<std::string>& gamma_names,
             const std::vector<std::string>& sigma_names, int64_t resume_step = -1);
  void write(const StepMetrics& m);

 private:
  std::ofstream out_;
};

// "step 120/2000 | D 1.234 G 0.567 | D(x) 0.41 D(G(z)) -0.33 | 812 img/s | FD 41.2 | ETA 3m12s"
std::string progress_line(const StepMetrics& m, int64_t total_steps, double eta_seconds);

}  // namespace sagan_example
