#pragma once
// Runs Catch2's session over the command line (tests/catch_impl.cpp, where Catch's implementation is
// compiled once for every test binary). Returns Catch's exit code.
namespace ember::test {
int run_catch_session(int argc, char* argv[]);
}  // namespace ember::test
