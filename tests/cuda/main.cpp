// Entry point of the CUDA test binary. Without a usable GPU every test exits with code 77,
// which CTest reports as SKIPPED (SKIP_RETURN_CODE), printing the reason: a skipped test is
// never counted as passed. Listing tests (for CTest discovery) works without a GPU.
//
// It also checks the test tags: a test during which ember asked for its cuBLAS or cuDNN handle must
// carry [library] and [cublas] / [cudnn] (scripts/gpu_check.sh leaves [library] out of the
// compute-sanitizer runs); an untagged one makes the run fail, naming the tags it lacks. Calls
// through a handle of the test's own (the unfused spectral-norm baseline) are not seen: tag by hand.
// Catch2's implementation is compiled once, in tests/catch_impl.cpp; the listener below needs the
// reporter interfaces, which the header declares outside the implementation only on request.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

#include "tests/catch_session.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/cuda/cuda_context.cuh"

namespace {

std::vector<std::string> g_untagged;  // "test name: missing tags"

struct LibraryTagCheck : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  ember::cuda_rt::LibraryUse before;
  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    TestEventListenerBase::testCaseStarting(info);
    before = ember::cuda_rt::library_use();
  }
  void testCaseEnded(Catch::TestCaseStats const& stats) override {
    const ember::cuda_rt::LibraryUse now = ember::cuda_rt::library_use();
    const std::vector<std::string>& tags = stats.testInfo.lcaseTags;
    auto has = [&](const char* t) { return std::find(tags.begin(), tags.end(), t) != tags.end(); };
    const bool blas = now.cublas > before.cublas, dnn = now.cudnn > before.cudnn;
    std::string missing;
    if ((blas || dnn) && !has("library")) missing += " [library]";
    if (blas && !has("cublas")) missing += " [cublas]";
    if (dnn && !has("cudnn")) missing += " [cudnn]";
    if (!missing.empty()) g_untagged.push_back(stats.testInfo.name + ":" + missing);
    TestEventListenerBase::testCaseEnded(stats);
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(LibraryTagCheck)

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
  const int rc = ember::test::run_catch_session(argc, argv);
  for (const std::string& u : g_untagged)
    std::fprintf(stderr, "error: test \"%s\" calls cuBLAS/cuDNN through ember but lacks these tags\n", u.c_str());
  return rc != 0 ? rc : (g_untagged.empty() ? 0 : 1);
}
