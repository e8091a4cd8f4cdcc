// Entry point of the CUDA test binary. Without a usable GPU every test exits with code 77,
// which CTest reports as SKIPPED (SKIP_RETURN_CODE), printing the reason: a skipped test is
// never counted as passed. Listing tests (for CTest discovery) works without a GPU.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>

#include "core/context.h"

int main(int argc, char* argv[]) {
  bool listing = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--list", 6) == 0) listing = true;
    // --probe: say whether the CUDA tests will run (scripts/test.sh prints it before ctest).
    if (std::strcmp(argv[i], "--probe") == 0) {
      if (ember::cuda_available()) std::printf("CUDA tests: a usable GPU was found, they will run\n");
      else std::printf("CUDA tests: will be SKIPPED: no usable CUDA device: %s\n", ember::cuda_unavailable_reason().c_str());
      return 0;
    }
  }
  if (!listing && !ember::cuda_available()) {
    std::printf("SKIPPED: no usable CUDA device: %s\n", ember::cuda_unavailable_reason().c_str());
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
