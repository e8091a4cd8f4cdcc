// Convolution family, the two CPU paths (kernels/cpu/conv_paths.h) and the per-shape chooser
// (kernels/cpu/conv_choice.h): oneDNN against direct double-precision formulas on awkward shapes,
// forcing either path through EMBER_CONV's setting gives the same results, and the chooser's
// bookkeeping. Relative-norm tolerance 1e-5 throughout (float accumulation over at most a few
// hundred terms; an unwritten or wrong element is far above it).
#include <catch2/catch.hpp>
#include <limits>

#include "core/context.h"
#include "kernels/cpu/conv_choice.h"
#include "kernels/cpu/conv_paths.h"
#include "kernels/kernels.h"
#include "tests/conv_cases.h"
#include "tests/harness.h"

using namespace ember;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kTol = 1e-5;

using Case = test::ref::ConvShape;
using test::describe;
using How = cpu::ConvChoice::How;

// Odd H / W, C = 1 and 3, stride 2, pad 0 / 1 / 2, batch 1 and 3, 1x1 and 4x4 kernels (SAGAN's
// 4x4 s2 p1 down-sampling and 1x1 attention projections), the classifier's 3x3 p1, and a stride-2
// shape whose last input rows fall outside every window.
const Case kCases[] = {
    {3, 1, 9, 7, 5, 3, 3, 1, 1},  {1, 3, 11, 13, 4, 3, 3, 2, 1}, {3, 3, 8, 8, 16, 4, 4, 2, 1},
    {1, 5, 7, 5, 6, 1, 1, 1, 0},  {3, 4, 9, 9, 3, 1, 1, 2, 0},   {1, 2, 6, 7, 3, 5, 5, 1, 2},
    {3, 3, 10, 9, 2, 4, 4, 1, 2}, {1, 1, 5, 5, 1, 3, 3, 1, 0},   {3, 16, 14, 14, 8, 3, 3, 1, 1},
    {1, 3, 8, 10, 4, 3, 3, 2, 0},
};

// Sets context().cpu_conv for a scope.
struct ForceConv {
  CpuConv saved = context().cpu_conv;
  explicit ForceConv(CpuConv mode) { context().cpu_conv = mode; }
  ~ForceConv() { context().cpu_conv = saved; }
};

// The three kernels through the dispatching entries (kernels/kernels.h), outputs NaN-filled first.
test::ConvResults run_entries(const Case& c, const test::ConvOperands& in) {
  test::ConvResults o = test::nan_conv_results(in);
  cpu::conv2d_forward(in.x, in.w, c.stride, c.pad, o.y);
  cpu::conv2d_backward_data(in.dy, in.w, c.stride, c.pad, o.dx);
  cpu::conv2d_backward_filter(in.x, in.dy, c.stride, c.pad, o.dw);
  return o;
}

}  // namespace

TEST_CASE("conv paths: oneDNN matches direct double-precision formulas on awkward shapes", "[conv]") {
  if (!cpu::conv_paths::onednn_built()) {
    WARN("built without oneDNN: nothing to check");
    return;
  }
  uint64_t seed = 100;
  for (const Case& c : kCases) {
    INFO(describe(c));
    const test::ConvOperands in = test::random_conv_operands(c, seed);
    test::ConvResults out = test::nan_conv_results(in);
    cpu::conv_paths::onednn_forward(in.x, in.w, c.stride, c.pad, out.y);
    cpu::conv_paths::onednn_backward_data(in.dy, in.w, c.stride, c.pad, out.dx);
    cpu::conv_paths::onednn_backward_filter(in.x, in.dy, c.stride, c.pad, out.dw);
    const test::ConvErrors e = test::conv_errors(c, in, out);
    CHECK(e.y < kTol);
    CHECK(e.dx < kTol);
    CHECK(e.dw < kTol);
    // A second call reuses the cached primitive and blocked buffers: same result again.
    test::ConvResults again = test::nan_conv_results(in);
    cpu::conv_paths::onednn_forward(in.x, in.w, c.stride, c.pad, again.y);
    CHECK(test::same_values(again.y, out.y.to_vector()));
  }
}

TEST_CASE("conv paths: forcing oneDNN or im2col gives the same results as the chooser", "[conv]") {
  uint64_t seed = 200;
  for (const Case& c : kCases) {
    INFO(describe(c));
    const test::ConvOperands in = test::random_conv_operands(c, seed);
    test::ConvResults chosen, im2col;
    {
      ForceConv force(CpuConv::Auto);
      chosen = run_entries(c, in);
    }
    {
      ForceConv force(CpuConv::Im2col);
      im2col = run_entries(c, in);
    }
    const test::ConvErrors e = test::conv_errors(c, in, im2col);
    CHECK(e.y < kTol);
    CHECK(e.dx < kTol);
    CHECK(e.dw < kTol);
    CHECK(test::rel_err(chosen.y, im2col.y) < kTol);
    CHECK(test::rel_err(chosen.dx, im2col.dx) < kTol);
    CHECK(test::rel_err(chosen.dw, im2col.dw) < kTol);
    if (cpu::conv_paths::onednn_built()) {
      ForceConv force(CpuConv::Onednn);
      const test::ConvResults onednn = run_entries(c, in);
      CHECK(test::rel_err(onednn.y, im2col.y) < kTol);
      CHECK(test::rel_err(onednn.dx, im2col.dx) < kTol);
      CHECK(test::rel_err(onednn.dw, im2col.dw) < kTol);
    }
  }
}

TEST_CASE("conv paths: the chooser decides a shape once and reports its choice", "[conv]") {
  const Case c{4, 16, 15, 16, 32, 3, 3, 1, 1};  // 4.1 million multiply-adds: measured
  Tensor x = test::random_tensor(Shape{c.N, c.Ci, c.H, c.W}, 300);
  Tensor w = test::random_tensor(Shape{c.Co, c.Ci, c.KH, c.KW}, 301);
  cpu::conv_choices_reset();
  {
    ForceConv force(CpuConv::Im2col);  // a forced call is recorded as such
    Tensor y = Tensor::full(Shape{c.N, c.Co, c.Ho(), c.Wo()}, kNaN);
    cpu::conv2d_forward(x, w, c.stride, c.pad, y);
    const std::vector<cpu::ConvChoice> forced = cpu::conv_choices();
    REQUIRE(forced.size() == 1);
    CHECK(forced[0].path == "im2col");
    CHECK(forced[0].how == How::Forced);
  }
  ForceConv force(CpuConv::Auto);
  for (int call = 0; call < 3; ++call) {
    Tensor y = Tensor::full(Shape{c.N, c.Co, c.Ho(), c.Wo()}, kNaN);
    cpu::conv2d_forward(x, w, c.stride, c.pad, y);
    CHECK(test::rel_err(y, test::ref::conv_forward(c, x.to_vector(), w.to_vector())) < kTol);
  }
  const std::vector<cpu::ConvChoice> all = cpu::conv_choices();
  REQUIRE(all.size() == 1);  // one shape, one entry: the auto calls replaced the forced record
  const cpu::ConvChoice& k = all[0];
  CHECK(k.op == "forward");
  CHECK((k.N == 4 && k.Ci == 16 && k.H == 15 && k.W == 16 && k.Co == 32 && k.KH == 3 && k.KW == 3));
  CHECK((k.stride == 1 && k.pad == 1));
  CHECK(k.calls == 3);  // measured on the first auto call only
  if (cpu::conv_paths::onednn_built()) {
    CHECK(k.how == How::Measured);
    REQUIRE(k.onednn_ms >= 0);
    REQUIRE(k.im2col_ms >= 0);
    CHECK(k.path == (k.onednn_ms < k.im2col_ms ? "onednn" : "im2col"));
  } else {
    CHECK(k.how == How::NoOnednn);
    CHECK(k.path == "im2col");
  }
  const std::string report = cpu::conv_choice_report();
  CHECK(report.find("conv forward x [4, 16, 15, 16] w [32, 16, 3, 3] s1 p1: " + k.path) != std::string::npos);
  CHECK(report.find("3 calls") != std::string::npos);

  // A tiny convolution is not timed (and runs im2col); its backward filter is a separate entry.
  const Case t{1, 2, 5, 5, 3, 3, 3, 1, 1};
  Tensor tx = test::random_tensor(Shape{t.N, t.Ci, t.H, t.W}, 302), tdy = test::random_tensor(Shape{1, 3, 5, 5}, 303);
  Tensor tdw = Tensor::full(Shape{t.Co, t.Ci, t.KH, t.KW}, kNaN);
  cpu::conv2d_backward_filter(tx, tdy, t.stride, t.pad, tdw);
  CHECK(test::rel_err(tdw, test::ref::conv_backward_filter(t, tx.to_vector(), tdy.to_vector())) < kTol);
  const std::vector<cpu::ConvChoice> two = cpu::conv_choices();
  REQUIRE(two.size() == 2);
  const cpu::ConvChoice& tiny = two[0].op == "backward_filter" ? two[0] : two[1];
  CHECK(tiny.op == "backward_filter");
  CHECK(tiny.path == "im2col");
  CHECK(tiny.how == (cpu::conv_paths::onednn_built() ? How::Small : How::NoOnednn));
  CHECK(tiny.calls == 1);
  cpu::conv_choices_reset();
  CHECK(cpu::conv_choices().empty());
  CHECK(cpu::conv_choice_report().empty());
}

TEST_CASE("conv paths: EMBER_CONV values are parsed and a wrong one is named", "[conv][errors]") {
  CHECK(parse_cpu_conv("auto") == CpuConv::Auto);
  CHECK(parse_cpu_conv("onednn") == CpuConv::Onednn);
  CHECK(parse_cpu_conv("im2col") == CpuConv::Im2col);
  CHECK_THROWS_WITH(parse_cpu_conv("gpu"), Catch::Contains("EMBER_CONV='gpu'") && Catch::Contains("im2col"));
}
