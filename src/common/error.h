// fastkv: the one error type every layer throws for bad input.
//
// Messages are one line, name the file (or flag) and the problem, e.g.
//   "model.gguf: truncated file: tensor table ends at byte 812 but the file has 640 bytes".
// Front ends catch fastkv::Error, print "error: <message>" and exit non-zero.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace fastkv {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Concatenates any streamable values into one string: cat("n=", 3) == "n=3".
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

// Throws fastkv::Error built from the streamable arguments.
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(cat(std::forward<Args>(args)...));
}

}  // namespace fastkv
