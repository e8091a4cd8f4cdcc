// Shared test helpers: random inputs, relative errors against double references, and
// gradient checks by central finite differences.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace ember::test {

// Uniform in [lo, hi) on the CPU, from a seed (never zeros: tests and timings use real data).
Tensor random_tensor(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f);
// A leaf that requires grad.
Tensor random_param(const Shape& shape, uint64_t seed, float lo = -1.f, float hi = 1.f);
// A unit vector [n] from a seed (spectral norm's u, v buffers), normalised in double.
Tensor random_unit(int64_t n, uint64_t seed);

std::vector<double> to_double(const Tensor& t);
// ||out - ref|| / ||ref|| (absolute norm when ||ref|| == 0). Any NaN/Inf in out gives +inf.
double rel_err(const Tensor& out, const std::vector<double>& ref);
double rel_err(const Tensor& out, const Tensor& ref);
bool all_finite(const Tensor& t);
// t's values equal `want` exactly, a NaN matching a NaN (for NaN/Inf propagation tests).
bool same_values(const Tensor& t, const std::vector<float>& want);

// Checks the gradients autograd computes for `inputs` (each must require grad) against
// central finite differences in float64 steps of `eps` on the loss sum(f(inputs) * R), R a fixed
// random tensor. At most `max_coords` coordinates per input are probed (chosen at random).
// Returns the largest relative error ||g_autograd - g_fd|| / ||g_fd|| over the inputs.
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
double gradcheck(const Fn& f, const std::vector<Tensor>& inputs, double eps = 1e-3, int max_coords = 48,
                 uint64_t seed = 1234);

}  // namespace ember::test
