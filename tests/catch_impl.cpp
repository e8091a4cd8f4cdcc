// Catch2's implementation, compiled once per build and linked into every test binary
// (ember_tests, ember_cuda_tests, ember_emu_tests): in each binary's main it cost ~30 s of compile.
// The mains (tests/main.cpp, tests/cuda/main.cpp) run the session through catch_session.h, since
// the header declares Catch::Session only in the implementation's translation unit.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "tests/catch_session.h"

namespace ember::test {
int run_catch_session(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
}  // namespace ember::test
