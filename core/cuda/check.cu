// The out-of-line half of core/cuda/check.cuh: formats a failed library call as an ember::Error.
#include <string>

#include "core/cuda/check.cuh"

namespace ember::cuda_rt::detail {

void throw_api_error(const char* library, const char* status, int code, bool oom, const char* call,
                     const char* function, const char* file, int line) {
  std::string f(file);
  auto slash = f.find_last_of('/');
  if (slash != std::string::npos) f = f.substr(slash + 1);
  std::string msg = std::string(library) + " error " + std::to_string(code) + " (" + (status ? status : "?") + ") in " +
                    function + ": " + call + " [" + f + ":" + std::to_string(line) + "]";
  if (oom) throw OutOfMemory(msg);
  throw Error(msg);
}

}  // namespace ember::cuda_rt::detail
