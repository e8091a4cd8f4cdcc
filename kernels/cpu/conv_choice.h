// Which implementation each CPU convolution shape runs (kernels/cpu/conv_choice.cpp): the
// bookkeeping, for the profiler's summary and the tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::cpu {

struct ConvChoice {
  // How the path was chosen: timed; too small to time (im2col); forced by EMBER_CONV; a build
  // without oneDNN; oneDNN refused the shape (its message in `refusal`).
  enum class How { Measured, Small, Forced, NoOnednn, Refused };

  std::string op;         // "forward", "backward_data" or "backward_filter"
  int64_t N, Ci, H, W;    // input  [N, Ci, H, W]
  int64_t Co, KH, KW;     // weight [Co, Ci, KH, KW]
  int stride, pad;
  std::string path;       // "onednn" or "im2col"
  How how = How::Measured;
  std::string refusal;    // oneDNN's message when how == Refused
  double onednn_ms = -1;  // the measured times (best of the timed runs); -1: not measured
  double im2col_ms = -1;
  int64_t calls = 0;
};

// Every shape seen so far (since the last reset), in a stable order.
std::vector<ConvChoice> conv_choices();
// One line per shape, e.g. "conv forward x [64, 32, 14, 14] w [64, 32, 3, 3] s1 p1: onednn
// (measured: onednn 1.20 ms, im2col 3.40 ms), 100 calls"; "" when there is none.
std::string conv_choice_report();
// Forgets the choices (they are made again, measuring again, on the next calls).
void conv_choices_reset();

}  // namespace ember::cpu
