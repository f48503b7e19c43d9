#include "method_options.h"

#include "common/error.h"

namespace fastkv::cli {
namespace {

// "(fastkv, snapkv; default 7, gemfilter 5)": who takes the option and with which default.
std::string who_and_default(const MethodRegistry::SharedOption& o) {
  const MethodRegistry& reg = MethodRegistry::instance();
  std::string methods, defaults;
  std::map<std::string, std::vector<std::string>> by_default;  // default -> methods
  std::vector<std::string> order;
  for (const std::string& m : o.methods) {
    methods += (methods.empty() ? "" : ", ") + m;
    for (const OptionSpec& s : reg.method(m).options) {
      if (s.key != o.spec.key || s.default_text.empty()) continue;
      if (!by_default.count(s.default_text)) order.push_back(s.default_text);
      by_default[s.default_text].push_back(m);
    }
  }
  for (size_t i = 0; i < order.size(); ++i) {
    defaults += i == 0 ? "; default " : ", ";
    if (i > 0) {  // the first default is the common one; others name their methods
      for (size_t k = 0; k < by_default[order[i]].size(); ++k) {
        defaults += (k ? "/" : "") + by_default[order[i]][k];
      }
      defaults += " ";
    }
    defaults += order[i];
  }
  return "(" + methods + defaults + ")";
}

// What the help shows as the value: FLOAT, INT, max|avg, INT|none.
std::string type_name(const OptionSpec& s) {
  switch (s.type) {
    case OptionType::kNumber:
      return "FLOAT";
    case OptionType::kInteger:
      return "INT";
    case OptionType::kLayerOrNone:
      return "INT|none";
    case OptionType::kChoice: {
      std::string t;
      for (const std::string& c : s.choices) t += (t.empty() ? "" : "|") + c;
      return t;
    }
  }
  return "TEXT";
}

}  // namespace

void MethodFlags::add_to(CLI::App* app) {
  const MethodRegistry& reg = MethodRegistry::instance();
  std::string names;
  for (const std::string& n : reg.names()) names += (names.empty() ? "" : ", ") + n;
  app->add_option("--method", method, "KV compression method (" + names + ")")
      ->capture_default_str();
  for (const MethodRegistry::SharedOption& o : reg.all_options()) {
    std::string& slot = text_[o.spec.key];
    app->add_option(flag_name(o.spec.key), slot, o.spec.help + " " + who_and_default(o))
        ->type_name(type_name(o.spec));
  }
}

void MethodFlags::collect() {
  options.clear();
  for (const auto& [key, text] : text_) {
    if (!text.empty()) options[key] = text;
  }
}

}  // namespace fastkv::cli
