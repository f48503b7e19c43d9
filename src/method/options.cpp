#include "method/options.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace fastkv {
namespace {

// The problem of an unknown key for a method without options.
constexpr const char* kTakesNoOptions = "takes no options";

const OptionSpec* find_spec(const OptionSchema& schema, const std::string& key) {
  for (const OptionSpec& s : schema) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

// "'abc'" for text, the number as `cat` prints it otherwise.
std::string shown(const OptionValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return "'" + *s + "'";
  if (const auto* i = std::get_if<int64_t>(&v)) return cat(*i);
  return cat(std::get<double>(v));
}

bool parse_double(const std::string& s, double* out) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool parse_int(const std::string& s, int64_t* out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE) return false;
  *out = v;
  return true;
}

bool in_range(const OptionSpec& s, double x) {
  if (s.min_open ? !(x > s.min) : !(x >= s.min)) return false;
  if (s.max_open ? !(x < s.max) : !(x <= s.max)) return false;
  return true;
}

// The value of one option, checked against its spec; throws OptionError(kBadValue).
OptionValue check_value(const std::string& method, const OptionSpec& s, const OptionValue& v) {
  auto bad = [&](const std::string& problem) -> OptionError {
    return OptionError(OptionError::Kind::kBadValue, method, s.key, problem);
  };
  const auto* text = std::get_if<std::string>(&v);
  switch (s.type) {
    case OptionType::kNumber: {
      double x = 0;
      if (text) {
        if (!parse_double(*text, &x)) throw bad("must be a number, got " + shown(v));
      } else if (const auto* i = std::get_if<int64_t>(&v)) {
        x = static_cast<double>(*i);
      } else {
        x = std::get<double>(v);
        if (!std::isfinite(x)) throw bad("must be a number, got " + shown(v));
      }
      if (!in_range(s, x)) throw bad(s.requirement() + ", got " + cat(x));
      return x;
    }
    case OptionType::kLayerOrNone:
      if (text && (*text == "none" || *text == "off")) return std::string("none");
      [[fallthrough]];
    case OptionType::kInteger: {
      int64_t n = 0;
      bool ok = true;
      if (text) {
        ok = parse_int(*text, &n);
      } else if (const auto* i = std::get_if<int64_t>(&v)) {
        n = *i;
      } else {  // an integral double (5.0, as some JSON clients send) counts as an integer
        const double d = std::get<double>(v);
        ok = std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15;
        n = ok ? static_cast<int64_t>(d) : 0;
      }
      ok = ok && n >= std::numeric_limits<int>::min() && n <= std::numeric_limits<int>::max();
      if (!ok) {
        throw bad(s.type == OptionType::kInteger ? "must be an integer, got " + shown(v)
                                                 : s.requirement() + ", got " + shown(v));
      }
      if (!in_range(s, static_cast<double>(n)) || (s.odd && n % 2 == 0)) {
        throw bad(s.requirement() + ", got " + cat(n));
      }
      return n;
    }
    case OptionType::kChoice: {
      if (!text) throw bad(s.requirement() + ", got " + shown(v));
      for (const std::string& c : s.choices) {
        if (*text == c) return c;
      }
      auto it = s.aliases.find(*text);
      if (it != s.aliases.end()) return it->second;
      throw bad(s.requirement() + ", got " + shown(v));
    }
  }
  return v;
}

// The fields every builder sets.
OptionSpec spec_of(std::string key, OptionType type, std::string default_text, std::string help) {
  OptionSpec s;
  s.key = std::move(key);
  s.type = type;
  s.default_text = std::move(default_text);
  s.help = std::move(help);
  return s;
}

}  // namespace

OptionSpec OptionSpec::number(std::string key, double min, double max, bool min_open, bool max_open,
                              std::string default_text, std::string help) {
  OptionSpec s =
      spec_of(std::move(key), OptionType::kNumber, std::move(default_text), std::move(help));
  s.min = min;
  s.max = max;
  s.min_open = min_open;
  s.max_open = max_open;
  return s;
}

OptionSpec OptionSpec::integer(std::string key, double min, std::string default_text,
                               std::string help, bool min_open, bool odd) {
  OptionSpec s =
      spec_of(std::move(key), OptionType::kInteger, std::move(default_text), std::move(help));
  s.min = min;
  s.min_open = min_open;
  s.odd = odd;
  return s;
}

OptionSpec OptionSpec::choice(std::string key, std::vector<std::string> choices,
                              std::map<std::string, std::string> aliases, std::string default_text,
                              std::string help) {
  OptionSpec s =
      spec_of(std::move(key), OptionType::kChoice, std::move(default_text), std::move(help));
  s.choices = std::move(choices);
  s.aliases = std::move(aliases);
  return s;
}

OptionSpec OptionSpec::layer_or_none(std::string key, std::string default_text, std::string help) {
  OptionSpec s =
      spec_of(std::move(key), OptionType::kLayerOrNone, std::move(default_text), std::move(help));
  s.min = 0;
  return s;
}

std::string OptionSpec::requirement() const {
  switch (type) {
    case OptionType::kChoice: {
      std::string r = "must be ";
      for (size_t i = 0; i < choices.size(); ++i) {
        r += i == 0 ? "" : (i + 1 == choices.size() ? " or " : ", ");
        r += choices[i];
      }
      return r;
    }
    case OptionType::kLayerOrNone:
      return "must be a layer index >= 0 or 'none'";
    case OptionType::kNumber:
    case OptionType::kInteger:
      break;
  }
  const bool has_min = std::isfinite(min), has_max = std::isfinite(max);
  if (has_min && has_max) {
    return cat("must be in ", min_open ? "(" : "[", min, ", ", max, max_open ? ")" : "]");
  }
  if (has_min) return cat("must be ", odd ? "an odd number " : "", min_open ? "> " : ">= ", min);
  if (has_max) return cat("must be ", max_open ? "< " : "<= ", max);
  return type == OptionType::kInteger ? "must be an integer" : "must be a number";
}

std::string flag_name(const std::string& key) {
  std::string f = "--" + key;
  for (char& c : f) {
    if (c == '_') c = '-';
  }
  return f;
}

std::string option_key(std::string k) {
  while (!k.empty() && k.front() == '-') k.erase(k.begin());
  for (char& c : k) {
    if (c == '-') c = '_';
  }
  return k;
}

std::string option_text(const OptionValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return cat(*i);
  // The shortest text that reads back as the same double.
  const double d = std::get<double>(v);
  for (int digits = 1; digits <= 17; ++digits) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.*g", digits, d);
    if (std::strtod(buf, nullptr) == d) return buf;
  }
  return cat(d);
}

OptionError::OptionError(Kind kind, std::string method, std::string key, std::string problem)
    : Error(message(kind, method, key, problem, [](const std::string& k) { return k; })),
      kind_(kind),
      method_(std::move(method)),
      key_(std::move(key)),
      problem_(std::move(problem)) {}

OptionError::OptionError(Kind kind, std::string method, std::string key, std::string problem,
                         const std::string& what)
    : Error(what),
      kind_(kind),
      method_(std::move(method)),
      key_(std::move(key)),
      problem_(std::move(problem)) {}

OptionError OptionError::with_flag_names() const {
  return OptionError(kind_, method_, key_, problem_, worded(flag_name));
}

std::string OptionError::message(Kind kind, const std::string& method, const std::string& key,
                                 const std::string& problem,
                                 const std::function<std::string(const std::string&)>& name) {
  // Other options named in the problem as {key}.
  std::string p;
  for (size_t i = 0; i < problem.size();) {
    const size_t close = problem[i] == '{' ? problem.find('}', i) : std::string::npos;
    if (close != std::string::npos) {
      p += name(problem.substr(i + 1, close - i - 1));
      i = close + 1;
    } else {
      p += problem[i++];
    }
  }
  if (kind == Kind::kUnknownKey && problem == kTakesNoOptions) {
    return cat("method '", method, "' takes no options (got '", name(key), "')");
  }
  if (kind == Kind::kUnknownKey) return cat("method '", method, "' ", p, " ", name(key));
  return name(key) + " " + p;
}

std::string OptionError::worded(const std::function<std::string(const std::string&)>& name) const {
  return message(kind_, method_, key_, problem_, name);
}

double OptionSet::number(const std::string& key, double fallback) const {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
  return std::get<double>(it->second);
}

int OptionSet::integer(const std::string& key, int fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : static_cast<int>(std::get<int64_t>(it->second));
}

std::string OptionSet::text(const std::string& key, const std::string& fallback) const {
  auto it = values_.find(key);
  return it == values_.end() ? fallback : option_text(it->second);
}

void OptionSet::reject(const std::string& key, const std::string& problem) const {
  throw OptionError(OptionError::Kind::kBadValue, method_, key, problem);
}

OptionError unknown_option(const std::string& method, const OptionSchema& schema,
                           const std::string& key) {
  return OptionError(OptionError::Kind::kUnknownKey, method, key,
                     schema.empty() ? kTakesNoOptions : "does not take");
}

bool has_option(const OptionSchema& schema, const std::string& key) {
  return find_spec(schema, key) != nullptr;
}

OptionSet check_options(const std::string& method, const OptionSchema& schema,
                        const OptionValues& values) {
  OptionValues checked;
  for (const auto& [key, value] : values) {
    const OptionSpec* spec = find_spec(schema, key);
    if (!spec) throw unknown_option(method, schema, key);
    checked[key] = check_value(method, *spec, value);
  }
  return OptionSet(method, std::move(checked));
}

OptionSet check_options(const std::string& method, const OptionSchema& schema,
                        const MethodOptions& text) {
  OptionValues values;
  for (const auto& [k, v] : text) values[k] = v;
  return check_options(method, schema, values);
}

}  // namespace fastkv
