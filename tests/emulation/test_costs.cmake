# Included by CTest after the test lists (tests/emulation/CMakeLists.txt): the COST of the long
# tests, so that `ctest -j N` starts them first and does not end on one long test with the other
# cores idle. CTest would learn costs itself, but CMake < 4 reads back its CTestCostData.txt split at
# spaces, and every ember test name has spaces: without this, tests start in definition order.
# Roughly seconds on one idle core under ASan + UBSan (scripts/sanitize.sh), raised where a test
# is longer in the optimised build (spectral norm's and softmax's full grids, which ran last there
# and alone for minutes). A name that does not exist is ignored. Measure with
# `ctest -j2` and sort the "Test #" lines by time.
set(ember_test_costs
  "emu:spectral_norm: fused CUDA kernels match the CPU over dims, shapes and load paths|100"
  "emu:spectral_norm: sigma on CUDA converges to the CPU's after many steps|90"
  "emu:attention: CUDA odd sizes, head dims up to 64, value dims up to 512|74"
  "emu:attention: CUDA matches CPU, N = 4 and 16|63"
  "emu:attention: CUDA matches CPU, N = 64|31"
  "emu:pool: avg and max pooling forward and backward|29"
  "emu:reduce: sum_mid matches the CPU on every path|28"
  "emu:optim: SGD with and without momentum and weight decay|24"
  "emu:softmax: every CUDA variant matches the CPU over its row lengths (16-byte loads)|80"
  "emu:softmax: every CUDA variant matches the CPU on misaligned data (scalar loads)|20"
  "emu:optim: Adam over many tensors matches PyTorch's formula for several steps|17"
  "emu:attention: CUDA peaked rows (scores up to ~+-100)|15"
  "emu:fill: Philox normals are bit-identical to the CPU for any size and offset|12"
  "emu:fill: Philox uniforms are bit-identical to the CPU for any size and offset|12"
  "emu:conv: forward, backward-data and backward-filter kernels, fp32 and TF32|10"
  "emu:cuda parity: losses and three Adam steps|10"
  "emu:cuda parity: whole G and D at 32x32|8")
foreach(entry IN LISTS ember_test_costs)
  string(REPLACE "|" ";" pair "${entry}")
  list(GET pair 0 name)
  list(GET pair 1 cost)
  set_tests_properties("${name}" PROPERTIES COST ${cost})
endforeach()
