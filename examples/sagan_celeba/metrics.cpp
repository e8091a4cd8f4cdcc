#include "examples/sagan_celeba/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace sagan_example {

namespace {
// The complete lines ("...\n") of path: the header, then the rows of steps <= step.
std::string lines_up_to(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::string kept, line;
  bool header = true;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no '\n': cut short by a killed run
    if (!header) {
      char* end = nullptr;
      long long s = std::strtoll(line.c_str(), &end, 10);
      if (end == line.c_str() || *end != ',' || s > step) continue;
    }
    header = false;
    kept += line + "\n";
  }
  return kept;
}
}  // namespace

MetricsLog::MetricsLog(const std::string& path, const std::vector<std::string>& gamma_names,
                       const std::vector<std::string>& sigma_names, int64_t resume_step) {
  std::string head;
  if (resume_step >= 0) head = lines_up_to(path, resume_step);
  if (head.empty()) {
    head = "step,loss_d,loss_g,d_real,d_fake,images_per_s,mem_in_use_mb,mem_peak_mb";
    for (const auto& n : gamma_names) head += ",gamma:" + n;
    for (const auto& n : sigma_names) head += ",sigma:" + n;
    head += ",frechet";
    head += "\n";
  }
  // Rewritten through a temporary and a rename: a run killed here keeps the old file whole.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream t(tmp, std::ios::trunc);
    t << head;
    t.flush();
    EMBER_INPUT_CHECK(t.good(), "cannot write the metrics file " << tmp);
  }
  EMBER_INPUT_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot replace the metrics file " << path);
  out_.open(path, std::ios::app);
  EMBER_INPUT_CHECK(out_.good(), "cannot open the metrics file " << path << " for writing");
}

void MetricsLog::write(const StepMetrics& m) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%lld,%.6f,%.6f,%.6f,%.6f,%.2f,%.1f,%.1f", static_cast<long long>(m.step), m.loss_d,
                m.loss_g, m.d_real, m.d_fake, m.images_per_s, m.mem_in_use_mb, m.mem_peak_mb);
  out_ << buf;
  for (double g : m.gammas) out_ << "," << g;
  for (double s : m.sigmas) out_ << "," << s;
  out_ << ",";
  if (std::isfinite(m.frechet)) {
    std::snprintf(buf, sizeof buf, "%.4f", m.frechet);
    out_ << buf;
  }
  out_ << "\n";
  out_.flush();  // a killed run keeps its metrics
}

std::string progress_line(const StepMetrics& m, int64_t total_steps, double eta_seconds) {
  long eta = static_cast<long>(eta_seconds + 0.5);
  char buf[256], fd[32] = "";
  if (std::isfinite(m.latest_frechet)) std::snprintf(fd, sizeof fd, " | FD %.2f", m.latest_frechet);
  std::snprintf(buf, sizeof buf, "step %lld/%lld | D %.4f G %.4f | D(x) %+.3f D(G(z)) %+.3f | %.1f img/s%s | ETA %ldm%02lds",
                static_cast<long long>(m.step), static_cast<long long>(total_steps), m.loss_d, m.loss_g, m.d_real,
                m.d_fake, m.images_per_s, fd, eta / 60, eta % 60);
  std::string s(buf);
  if (m.mem_peak_mb > 0) {
    std::snprintf(buf, sizeof buf, " | mem %.0f/%.0f MB", m.mem_in_use_mb, m.mem_peak_mb);
    s += buf;
  }
  return s;
}

}  // namespace sagan_example
