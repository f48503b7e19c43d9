#include "int_list_flag.h"

#include <cstdlib>

#include "common/error.h"
#include "common/strings.h"

namespace fastkv::cli {

std::vector<int> parse_int_list(const std::string& flag, const std::string& text) {
  std::vector<int> out;
  if (text.empty()) return out;
  for (const std::string& raw : split(text, ",")) {
    std::string s = strip(raw);
    // "4K" / "4k" = 4096
    int mult = 1;
    if (!s.empty() && (s.back() == 'K' || s.back() == 'k')) {
      mult = 1024;
      s.pop_back();
    }
    char* end = nullptr;
    long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || v < 0 || v > (1L << 30) / mult) {
      fail(flag, ": '", raw, "' is not a non-negative integer");
    }
    out.push_back(static_cast<int>(v * mult));
  }
  return out;
}

}  // namespace fastkv::cli
