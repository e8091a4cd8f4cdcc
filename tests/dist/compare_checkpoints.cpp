// compare_checkpoints A B TOL [PREFIX...]: for each prefix (default: every tensor), the relative
// error ||a - b|| / ||b|| (double) over all tensors of B whose name starts with it; exits 1 when
// one exceeds TOL (0 asks for bitwise equality), a tensor is missing or shaped differently, or a
// value is NaN/Inf. For the data-parallel tests (tests/examples/sagan_celeba_dist.sh).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: compare_checkpoints A.safetensors B.safetensors TOL [PREFIX...]\n");
    return 2;
  }
  try {
    const ember::SafetensorsFile a = ember::load_safetensors(argv[1]), b = ember::load_safetensors(argv[2]);
    const double tol = std::atof(argv[3]);
    std::vector<std::string> prefixes(argv + 4, argv + argc);
    if (prefixes.empty()) prefixes.push_back("");
    bool ok = a.names.size() == b.names.size();
    if (!ok) std::printf("different tensor counts: %zu and %zu\n", a.names.size(), b.names.size());
    for (const std::string& prefix : prefixes) {
      double num = 0, den = 0;
      int64_t count = 0, differ = 0;
      for (const std::string& name : b.names) {
        if (name.rfind(prefix, 0) != 0) continue;
        const ember::Tensor tb = b.get(name), ta = a.get(name, tb.shape());
        const std::vector<float> va = ta.to_vector(), vb = tb.to_vector();
        for (size_t i = 0; i < va.size(); ++i) {
          if (!std::isfinite(va[i]) || !std::isfinite(vb[i])) {
            std::printf("%s[%zu] is not finite\n", name.c_str(), i);
            return 1;
          }
          const double d = double(va[i]) - vb[i];
          num += d * d, den += double(vb[i]) * vb[i];
          differ += va[i] != vb[i];
        }
        ++count;
      }
      const double err = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
      const bool pass = count > 0 && (tol == 0 ? differ == 0 : err <= tol);
      std::printf("%-10s %3lld tensors: relative error %.3g, %lld values differ (%s %g)\n",
                  prefix.empty() ? "(all)" : prefix.c_str(), static_cast<long long>(count), err,
                  static_cast<long long>(differ), pass ? "within" : "NOT within", tol);
      ok = ok && pass;
    }
    return ok ? 0 : 1;
  } catch (const ember::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
