// What the fuzz targets share: a property check that aborts (libFuzzer and the replay both report
// an abort as a failure, with the input that caused it).
#pragma once
#include <cstdio>
#include <cstdlib>

#define FUZZ_REQUIRE(cond)                                                                  \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "fuzz property violated: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
