// Replays fuzz inputs through one target's LLVMFuzzerTestOneInput without libFuzzer, so every CI
// build (g++, no clang) runs each committed corpus:
//   fuzz_replay_<target> FILE_OR_FOLDER...
// Every file (a folder's files in sorted order) runs once. An exception escaping the entry fails
// the run naming the file (targets catch ember::Error, their way of refusing input); a crash or
// an abort() of a violated property kills the process after the file's name was printed.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    if (fs::is_directory(argv[i])) {
      std::vector<fs::path> in;
      for (const auto& e : fs::directory_iterator(argv[i]))
        if (e.is_regular_file()) in.push_back(e.path());
      std::sort(in.begin(), in.end());
      files.insert(files.end(), in.begin(), in.end());
    } else if (fs::is_regular_file(argv[i])) {
      files.emplace_back(argv[i]);
    } else {
      std::fprintf(stderr, "fuzz replay: '%s' is neither a file nor a folder\n", argv[i]);
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "fuzz replay: no input files (usage: %s FILE_OR_FOLDER...)\n", argv[0]);
    return 2;
  }
  for (const fs::path& p : files) {
    std::printf("%s\n", p.c_str());
    std::fflush(stdout);  // named before it runs: a crash shows which input did it
    std::ifstream f(p, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    try {
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz replay: '%s': uncaught exception: %s\n", p.c_str(), e.what());
      return 1;
    } catch (...) {
      std::fprintf(stderr, "fuzz replay: '%s': uncaught exception of unknown type\n", p.c_str());
      return 1;
    }
  }
  std::printf("%zu inputs replayed\n", files.size());
  return 0;
}
