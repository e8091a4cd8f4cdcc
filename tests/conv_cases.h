// What the CPU convolution tests (test_conv.cpp, test_conv_paths.cpp) share for one case: its
// random operands, its outputs NaN-filled (an element a kernel fails to write cannot pass), their
// relative errors against the double-precision formulas of tests/reference.h, and a description
// for INFO.
#pragma once
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

#include "tests/harness.h"
#include "tests/reference.h"

namespace ember::test {

struct ConvOperands {
  Tensor x;   // [N, Ci, H, W]
  Tensor w;   // [Co, Ci, KH, KW]
  Tensor dy;  // [N, Co, Ho, Wo]
};

// Uniform in [-1, 1); uses the seeds seed, seed + 1, seed + 2 and advances seed past them.
inline ConvOperands random_conv_operands(const ref::ConvShape& c, uint64_t& seed) {
  ConvOperands in;
  in.x = random_tensor(Shape{c.N, c.Ci, c.H, c.W}, seed++);
  in.w = random_tensor(Shape{c.Co, c.Ci, c.KH, c.KW}, seed++);
  in.dy = random_tensor(Shape{c.N, c.Co, c.Ho(), c.Wo()}, seed++);
  return in;
}

struct ConvResults {
  Tensor y, dx, dw;  // shaped as dy, x, w
};

inline ConvResults nan_conv_results(const ConvOperands& in) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  return {Tensor::full(in.dy.shape(), nan), Tensor::full(in.x.shape(), nan), Tensor::full(in.w.shape(), nan)};
}

struct ConvErrors {
  double y, dx, dw;  // ||out - ref|| / ||ref|| of each output
};

inline ConvErrors conv_errors(const ref::ConvShape& c, const ConvOperands& in, const ConvResults& out) {
  const std::vector<float> xv = in.x.to_vector(), wv = in.w.to_vector(), dyv = in.dy.to_vector();
  return {rel_err(out.y, ref::conv_forward(c, xv, wv)), rel_err(out.dx, ref::conv_backward_data(c, dyv, wv)),
          rel_err(out.dw, ref::conv_backward_filter(c, xv, dyv))};
}

inline std::string describe(const ref::ConvShape& c) {
  std::ostringstream os;
  os << "N=" << c.N << " Ci=" << c.Ci << " H=" << c.H << " W=" << c.W << " Co=" << c.Co << " K=" << c.KH << "x" << c.KW
     << " s=" << c.stride << " p=" << c.pad;
  return os.str();
}

}  // namespace ember::test
