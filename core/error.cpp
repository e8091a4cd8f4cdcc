#include "core/error.h"

#include <cstdlib>

namespace ember {

std::string without_location(const std::string& what) {
  const auto open = what.rfind(" [");
  if (open == std::string::npos || what.empty() || what.back() != ']') return what;
  const auto colon = what.rfind(':');
  return colon != std::string::npos && colon > open ? what.substr(0, open) : what;
}

}  // namespace ember

namespace ember::detail {

namespace {
// " [file.cpp:123]": the file/line goes last, so the first words a user reads say what was wrong.
std::string location(const char* file, int line) {
  std::string f(file);
  auto slash = f.find_last_of('/');
  if (slash != std::string::npos) f = f.substr(slash + 1);
  return " [" + f + ":" + std::to_string(line) + "]";
}
}  // namespace

void throw_error(const std::string& what, const char* file, int line) { throw Error(what + location(file, line)); }

void throw_input_error(const std::string& what, const char* file, int line) {
  const char* debug = std::getenv("EMBER_DEBUG");
  const bool with_location = debug != nullptr && *debug != '\0' && std::string(debug) != "0";
  throw InputError(with_location ? what + location(file, line) : what);
}

}  // namespace ember::detail
