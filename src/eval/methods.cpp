#include "eval/methods.h"

#include <set>

#include "common/error.h"
#include "common/strings.h"
#include "policy/options.h"

namespace fastkv::eval {
namespace {

// "--retain-rate" / "retain-rate" / "retain_rate" -> "retain_rate".
std::string option_key(std::string k) {
  while (!k.empty() && k.front() == '-') k.erase(k.begin());
  for (char& c : k) {
    if (c == '-') c = '_';
  }
  return k;
}

std::string make_label(const MethodSpec& s) {
  std::string label = s.name;
  for (const auto& [k, v] : s.options) label += ":" + k + "=" + v;  // std::map: sorted keys
  return label;
}

bool accepts(const std::string& name, const PolicyOptions& opts, int n_layer, std::string* why) {
  try {
    PolicyRegistry::instance().create(name, opts, n_layer);
    return true;
  } catch (const Error& e) {
    if (why) *why = e.what();
    return false;
  }
}

}  // namespace

std::vector<MethodSpec> parse_method_list(const std::string& text) {
  std::vector<MethodSpec> out;
  for (const std::string& raw : split(text, ",")) {
    const std::string item = strip(raw);
    if (item.empty()) fail("--methods: empty method name in '", text, "'");
    std::vector<std::string> parts = split(item, ":");
    MethodSpec s;
    s.name = strip(parts[0]);
    if (s.name.empty()) fail("--methods: missing method name in '", item, "'");
    for (size_t i = 1; i < parts.size(); ++i) {
      const std::string kv = strip(parts[i]);
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size()) {
        fail("--methods: '", kv, "' in '", item, "' is not KEY=VALUE");
      }
      const std::string key = option_key(strip(kv.substr(0, eq)));
      if (s.options.count(key)) fail("--methods: option '", key, "' given twice in '", item, "'");
      s.options[key] = strip(kv.substr(eq + 1));
    }
    out.push_back(std::move(s));
  }
  if (out.empty()) fail("--methods: no method given");
  return out;
}

void resolve_methods(std::vector<MethodSpec>& specs, const PolicyOptions& shared, int n_layer,
                     std::vector<std::string>* notes) {
  // Options of the spec itself must be valid as they are.
  for (MethodSpec& s : specs) {
    std::string why;
    if (!accepts(s.name, s.options, n_layer, &why)) fail("--methods '", make_label(s), "': ", why);
  }
  // Shared options go where they are taken (and do not override a spec's own value).
  for (const auto& [key, value] : shared) {
    bool taken = false;
    std::string first_why;
    for (MethodSpec& s : specs) {
      if (s.options.count(key)) {
        taken = true;
        continue;
      }
      PolicyOptions trial = s.options;
      trial[key] = value;
      std::string why;
      if (accepts(s.name, trial, n_layer, &why)) {
        s.options[key] = value;
        taken = true;
      } else {
        if (first_why.empty()) first_why = why;
        if (notes) {
          notes->push_back("method '" + s.name + "' runs without " + flag_name(key) + " (" + why +
                           ")");
        }
      }
    }
    if (!taken) fail(first_why);
  }
  std::set<std::string> seen;
  for (MethodSpec& s : specs) {
    s.label = make_label(s);
    if (!seen.insert(s.label).second) fail("--methods: '", s.label, "' is listed twice");
  }
}

std::unique_ptr<Policy> create_policy(const MethodSpec& spec, int n_layer) {
  return PolicyRegistry::instance().create(spec.name, spec.options, n_layer);
}

}  // namespace fastkv::eval
