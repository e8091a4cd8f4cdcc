// The process group of the dist test binary: mpirun's world, made once in main.cpp.
#pragma once
#include "core/dist/process_group.h"

ember::dist::ProcessGroup& test_world();
