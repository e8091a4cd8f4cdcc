// Entry point of the CPU test binary (Catch2's implementation is in catch_impl.cpp).
#include "tests/catch_session.h"

int main(int argc, char* argv[]) { return ember::test::run_catch_session(argc, argv); }
