#include "method/method_list.h"

#include <set>

#include "common/error.h"

namespace fastkv {
namespace {

// Surrounding ASCII whitespace removed.
std::string trimmed(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Every field between separators `sep` (empty fields kept).
std::vector<std::string> fields(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

std::string make_label(const MethodSpec& s) {
  std::string label = s.name;
  for (const auto& [k, v] : s.options) label += ":" + k + "=" + v;  // std::map: sorted keys
  return label;
}

}  // namespace

std::vector<MethodSpec> parse_method_list(const std::string& text) {
  std::vector<MethodSpec> out;
  for (const std::string& raw : fields(text, ',')) {
    const std::string item = trimmed(raw);
    if (item.empty()) fail("--methods: empty method name in '", text, "'");
    std::vector<std::string> parts = fields(item, ':');
    MethodSpec s;
    s.name = trimmed(parts[0]);
    if (s.name.empty()) fail("--methods: missing method name in '", item, "'");
    for (size_t i = 1; i < parts.size(); ++i) {
      const std::string kv = trimmed(parts[i]);
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size()) {
        fail("--methods: '", kv, "' in '", item, "' is not KEY=VALUE");
      }
      const std::string key = option_key(trimmed(kv.substr(0, eq)));
      if (s.options.count(key)) fail("--methods: option '", key, "' given twice in '", item, "'");
      s.options[key] = trimmed(kv.substr(eq + 1));
    }
    out.push_back(std::move(s));
  }
  if (out.empty()) fail("--methods: no method given");
  return out;
}

void resolve_methods(std::vector<MethodSpec>& specs, const MethodOptions& shared, int n_layer,
                     std::vector<std::string>* notes) {
  const MethodRegistry& reg = MethodRegistry::instance();
  // Options of the spec itself must be valid as they are.
  for (MethodSpec& s : specs) {
    try {
      reg.create(s.name, s.options, n_layer);
    } catch (const Error& e) {
      fail("--methods '", make_label(s), "': ", e.what());
    }
  }
  // Shared options go to every method that has them (not overriding a spec's own value).
  for (const auto& [key, value] : shared) {
    bool taken = false;
    std::string unknown;
    for (MethodSpec& s : specs) {
      if (s.options.count(key)) {
        taken = true;
        continue;
      }
      const OptionSchema& schema = reg.method(s.name).options;
      if (!has_option(schema, key)) {
        const std::string why = unknown_option(s.name, schema, key).worded(flag_name);
        if (unknown.empty()) unknown = why;
        if (notes)
          notes->push_back(
              cat("method '", s.name, "' runs without ", flag_name(key), " (", why, ")"));
        continue;
      }
      MethodOptions trial = s.options;
      trial[key] = value;
      try {
        reg.create(s.name, trial, n_layer);
      } catch (const Error& e) {
        // Not a silent fallback to the method's default: that would run it at another setting
        // than the one asked for.
        fail(e.what(), " (for method '", s.name, "'; give it its own value with --methods ", s.name,
             ":", key, "=VALUE)");
      }
      s.options[key] = value;
      taken = true;
    }
    if (!taken) fail(unknown);
  }
  std::set<std::string> seen;
  for (MethodSpec& s : specs) {
    s.label = make_label(s);
    if (!seen.insert(s.label).second) fail("--methods: '", s.label, "' is listed twice");
  }
}

std::unique_ptr<CompressionMethod> create_policy(const MethodSpec& spec, int n_layer) {
  return MethodRegistry::instance().create(spec.name, spec.options, n_layer);
}

}  // namespace fastkv
