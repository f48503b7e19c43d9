#include "policy/options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "common/error.h"

namespace fastkv {

std::string flag_name(const std::string& key) {
  std::string f = "--" + key;
  for (char& c : f) {
    if (c == '_') c = '-';
  }
  return f;
}

void reject_unknown(const PolicyOptions& opts, const std::string& method,
                    std::initializer_list<const char*> allowed) {
  for (const auto& [k, v] : opts) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) fail("method '", method, "' does not take ", flag_name(k));
  }
}

double option_double(const PolicyOptions& opts, const std::string& key, double fallback) {
  auto it = opts.find(key);
  if (it == opts.end()) return fallback;
  const std::string& s = it->second;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) {
    fail(flag_name(key), " must be a number, got '", s, "'");
  }
  return v;
}

int option_int(const PolicyOptions& opts, const std::string& key, int fallback) {
  auto it = opts.find(key);
  if (it == opts.end()) return fallback;
  const std::string& s = it->second;
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE || v < std::numeric_limits<int>::min() ||
      v > std::numeric_limits<int>::max()) {
    fail(flag_name(key), " must be an integer, got '", s, "'");
  }
  return static_cast<int>(v);
}

std::string option_string(const PolicyOptions& opts, const std::string& key,
                          const std::string& fallback) {
  auto it = opts.find(key);
  return it == opts.end() ? fallback : it->second;
}

}  // namespace fastkv
