// Errors: every failure is an ember::Error whose message names what was wrong.
// EMBER_CHECK(cond, "op", msg-stream) throws with the op name, the condition and the file/line.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace ember {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Out of memory on a device: a distinct type so callers can tell it apart.
struct OutOfMemory : Error {
  using Error::Error;
};

// Bad input from the user (a flag, a file): the message names what was wrong and carries no
// source location, which means nothing to the user (set EMBER_DEBUG=1 to append it).
struct InputError : Error {
  using Error::Error;
};

// An error's message without the " [file.cpp:123]" that EMBER_CHECK appends (to re-raise a
// library error as an InputError that names the flag or file at fault).
std::string without_location(const std::string& what);

namespace detail {
[[noreturn]] void throw_error(const std::string& what, const char* file, int line);
[[noreturn]] void throw_input_error(const std::string& what, const char* file, int line);
}  // namespace detail

}  // namespace ember

// Usage: EMBER_CHECK(a.dim() == 4, "conv2d: input must be [N,C,H,W], got " << a.shape());
#define EMBER_CHECK(cond, msg)                                           \
  do {                                                                   \
    if (!(cond)) {                                                       \
      std::ostringstream ember_oss_;                                     \
      ember_oss_ << msg;                                                 \
      ::ember::detail::throw_error(ember_oss_.str(), __FILE__, __LINE__); \
    }                                                                    \
  } while (0)

#define EMBER_FAIL(msg) EMBER_CHECK(false, msg)

// Usage: EMBER_INPUT_CHECK(batch >= 1, "--batch must be >= 1, got " << batch);
#define EMBER_INPUT_CHECK(cond, msg)                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::ostringstream ember_oss_;                                           \
      ember_oss_ << msg;                                                       \
      ::ember::detail::throw_input_error(ember_oss_.str(), __FILE__, __LINE__); \
    }                                                                          \
  } while (0)
