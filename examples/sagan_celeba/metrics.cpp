#include "examples/sagan_celeba/metrics.h"

#include <cstdio>

#include "core/error.h"

namespace sagan_example {

MetricsLog::MetricsLog(const std::string& path, const std::vector<std::string>& gamma_names,
                       const std::vector<std::string>& sigma_names, bool append) {
  std::ifstream probe(path);
  bool has_header = append && probe.good() && probe.peek() != std::ifstream::traits_type::eof();
  probe.close();
  out_.open(path, append ? std::ios::app : std::ios::trunc);
  EMBER_CHECK(out_.good(), "cannot open metrics file " << path << " for writing");
  if (!has_header) {
    out_ << "step,loss_d,loss_g,d_real,d_fake,images_per_s,mem_in_use_mb,mem_peak_mb";
    for (const auto& n : gamma_names) out_ << ",gamma:" << n;
    for (const auto& n : sigma_names) out_ << ",sigma:" << n;
    out_ << "\n";
  }
}

void MetricsLog::write(const StepMetrics& m) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%lld,%.6f,%.6f,%.6f,%.6f,%.2f,%.1f,%.1f", static_cast<long long>(m.step), m.loss_d,
                m.loss_g, m.d_real, m.d_fake, m.images_per_s, m.mem_in_use_mb, m.mem_peak_mb);
  out_ << buf;
  for (double g : m.gammas) out_ << "," << g;
  for (double s : m.sigmas) out_ << "," << s;
  out_ << "\n";
  out_.flush();  // a killed run keeps its metrics
}

std::string progress_line(const StepMetrics& m, int64_t total_steps, double eta_seconds) {
  long eta = static_cast<long>(eta_seconds + 0.5);
  char buf[256];
  std::snprintf(buf, sizeof buf, "step %lld/%lld | D %.4f G %.4f | D(x) %+.3f D(G(z)) %+.3f | %.1f img/s | ETA %ldm%02lds",
                static_cast<long long>(m.step), static_cast<long long>(total_steps), m.loss_d, m.loss_g, m.d_real,
                m.d_fake, m.images_per_s, eta / 60, eta % 60);
  std::string s(buf);
  if (m.mem_peak_mb > 0) {
    std::snprintf(buf, sizeof buf, " | mem %.0f/%.0f MB", m.mem_in_use_mb, m.mem_peak_mb);
    s += buf;
  }
  return s;
}

}  // namespace sagan_example
