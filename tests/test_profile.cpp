// The op profiler (core/profile.h): every dispatched kernel is counted once per call, in the
// phase it ran in.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>

#include "core/ops.h"
#include "core/profile.h"
#include "tests/harness.h"

using namespace ember;

namespace {

struct Row {
  bool found = false;
  double fwd_ms = 0, bwd_ms = 0;
  long long fwd_calls = 0, bwd_calls = 0;
};

// The row of `kernel` in the table.
Row row_of(const std::string& table, const std::string& kernel) {
  std::istringstream in(table);
  Row r;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name != kernel) continue;
    r.found = static_cast<bool>(fields >> r.fwd_ms >> r.fwd_calls >> r.bwd_ms >> r.bwd_calls);
  }
  return r;
}

}  // namespace

TEST_CASE("profile: kernels are counted per call, forward and backward apart", "[profile]") {
  const bool was_on = profile::enabled();
  profile::enable();
  profile::reset();
  Tensor x = test::random_tensor(Shape{64, 32}, 7);
  x.requires_grad_();
  Tensor y = ops::relu(ops::relu(x));  // two forward calls of relu_forward
  ops::sum(y).backward();              // two backward calls of relu_backward
  const std::string t = profile::report();
  INFO(t);
  const Row fwd = row_of(t, "relu_forward"), bwd = row_of(t, "relu_backward");
  REQUIRE(fwd.found);
  REQUIRE(bwd.found);
  CHECK(fwd.fwd_calls == 2);
  CHECK(fwd.bwd_calls == 0);
  CHECK(bwd.fwd_calls == 0);
  CHECK(bwd.bwd_calls == 2);
  CHECK(fwd.fwd_ms >= 0);
  CHECK(bwd.bwd_ms >= 0);
  CHECK(row_of(t, "sum_mid").fwd_calls == 1);
  profile::reset();
  CHECK(profile::report().empty());
  if (!was_on) profile::disable();  // as it was for the other tests
}
