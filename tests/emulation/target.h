// The GPU the emulator stands for: its limits feed the launch checks and the device attributes
// the launchers read. EMBER_EMU_ARCH=sm_90 (default: H100 SXM) or sm_80 (A100).
#pragma once
#include <string>

namespace ember::emu {

struct Target {
  std::string arch;
  int cc_major, cc_minor;
  int sm_count;
  int smem_optin;  // bytes of shared memory one block may have after opting in
};
const Target& target();

}  // namespace ember::emu
