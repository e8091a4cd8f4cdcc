// Entry point of the dist tests: joins mpirun's job (or is a group of one), runs Catch2 on every
// rank, and makes the exit status the worst of all ranks so that a failure on rank 1 fails the
// job even though rank 0's output looks clean. Catch2's implementation is in tests/catch_impl.cpp.

#include <cstdio>
#include <vector>

#include "tests/catch_session.h"
#include "tests/dist/world.h"

namespace {
ember::dist::ProcessGroup* g_world = nullptr;
}

ember::dist::ProcessGroup& test_world() { return *g_world; }

int main(int argc, char** argv) {
  std::unique_ptr<ember::dist::ProcessGroup> pg = ember::dist::ProcessGroup::from_environment();
  g_world = pg.get();
  std::printf("dist tests: rank %d of %d (%s)\n", pg->rank(), pg->size(), pg->backend_name().c_str());
  const int failed = ember::test::run_catch_session(argc, argv);
  std::vector<double> worst{failed != 0 ? 1.0 : 0.0};
  pg->all_reduce(worst.data(), 1);
  if (pg->rank() == 0 && worst[0] > 0 && failed == 0) std::printf("dist tests: another rank failed\n");
  return worst[0] > 0 ? 1 : 0;
}
