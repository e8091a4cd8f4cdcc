#include "core/context.h"

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#ifdef EMBER_WITH_CUDA
#include "core/device_memory.h"
#endif

namespace ember {

Context& context() {
  static Context ctx = [] {
    Context c;
    const char* s = std::getenv("EMBER_SYNC_DEBUG");
    c.sync_debug = s && s[0] == '1';
    if (const char* conv = std::getenv("EMBER_CONV")) c.cpu_conv = parse_cpu_conv(conv);
    return c;
  }();
  return ctx;
}

CpuConv parse_cpu_conv(const std::string& name) {
  if (name == "auto" || name.empty()) return CpuConv::Auto;
  if (name == "onednn") return CpuConv::Onednn;
  EMBER_CHECK(name == "im2col", "EMBER_CONV='" << name << "': expected auto, onednn or im2col");
  return CpuConv::Im2col;
}

bool cuda_available() {
#ifdef EMBER_WITH_CUDA
  return cuda_rt::available();
#else
  return false;
#endif
}

std::string cuda_unavailable_reason() {
#ifdef EMBER_WITH_CUDA
  return cuda_rt::available() ? std::string() : cuda_rt::unavailable_reason();
#else
  return "ember was built without the CUDA backend";
#endif
}

Device default_device() {
  if (cuda_available()) return Device::CUDA;
  static bool said = false;
  if (!said) {
    std::fprintf(stderr, "[ember] no usable CUDA device (%s): running on CPU\n", cuda_unavailable_reason().c_str());
    said = true;
  }
  return Device::CPU;
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "auto" || name.empty()) return default_device();
  EMBER_CHECK(name == "cuda", "unknown device '" << name << "' (expected cpu, cuda or auto)");
  EMBER_CHECK(cuda_available(), "device cuda was requested but cannot be used: " << cuda_unavailable_reason());
  return Device::CUDA;
}

}  // namespace ember
