#include "core/error.h"

namespace ember::detail {

void throw_error(const std::string& what, const char* file, int line) {
  // The file/line goes last: the first words a user reads say what was wrong.
  std::string f(file);
  auto slash = f.find_last_of('/');
  if (slash != std::string::npos) f = f.substr(slash + 1);
  throw Error(what + " [" + f + ":" + std::to_string(line) + "]");
}

}  // namespace ember::detail
