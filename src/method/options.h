// Method options: each compression method declares its options once, as an OptionSchema
// (key, type, range, default, help). The schema is the one place that
//   - generates the command-line flags and their help (tools/fastkv/method_options.cpp),
//   - parses text values (flags, `--methods NAME:key=value`) and JSON values (the server's
//     `kv_compression`, numbers taken as numbers) into typed OptionValues,
//   - tells an unknown key (OptionError::Kind::kUnknownKey) from a bad value (kBadValue).
//
// Two ways in, one result:
//   MethodOptions  key -> text   what the command line and `--methods` specs give;
//   OptionValues   key -> typed  what the server builds from JSON (and tests);
// both are checked against the method's schema into an OptionSet, which is all a method's
// factory sees: every value present has the declared type and lies in the declared range.
//
// Errors name the option by its key ("retain_rate must be in (0, 1], got 2"); a front end
// rewords them its own way with OptionError::worded() (the CLI: "--retain-rate must be ...").
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/error.h"

namespace fastkv {

// Method options as given on the command line or in a `--methods` spec: key -> value text.
using MethodOptions = std::map<std::string, std::string>;

// One typed option value. int64_t for integers, double for numbers, text for choices (and for
// a number given as text, which the schema parses).
using OptionValue = std::variant<int64_t, double, std::string>;
// Typed method options: key -> value.
using OptionValues = std::map<std::string, OptionValue>;

enum class OptionType {
  kNumber,       // finite double
  kInteger,      // int
  kChoice,       // one of `choices` (or an alias of one)
  kLayerOrNone,  // a layer index (integer) or "none" / "off" (stored as the text "none")
};

// One option of one method.
struct OptionSpec {
  std::string key;  // JSON key and `--methods` key; the CLI flag is --key with '-' for '_'
  OptionType type = OptionType::kNumber;
  // Range of numbers and integers (and of layer indices); open ends exclude the bound.
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false, max_open = false;
  bool odd = false;  // integers: must be odd
  // kChoice: the accepted values (the first ones named in errors) and aliases -> value.
  std::vector<std::string> choices;
  std::map<std::string, std::string> aliases;
  std::string default_text;  // shown in help ("0.1", "floor(L/2)-1"); empty = no default
  std::string help;          // one line, without the default

  // Builders for the schema tables.
  static OptionSpec number(std::string key, double min, double max, bool min_open, bool max_open,
                           std::string default_text, std::string help);
  static OptionSpec integer(std::string key, double min, std::string default_text, std::string help,
                            bool min_open = false, bool odd = false);
  static OptionSpec choice(std::string key, std::vector<std::string> choices,
                           std::map<std::string, std::string> aliases, std::string default_text,
                           std::string help);
  static OptionSpec layer_or_none(std::string key, std::string default_text, std::string help);

  // "must be in (0, 1]" / "must be >= 1" / "must be an odd number >= 1" / "must be max or avg".
  std::string requirement() const;
};

using OptionSchema = std::vector<OptionSpec>;

// "--retain-rate" for key "retain_rate".
std::string flag_name(const std::string& key);
// "--retain-rate" / "retain-rate" / "retain_rate" -> "retain_rate".
std::string option_key(std::string text);
// The text of a typed value as `--methods` would give it ("0.1", "8", "none").
std::string option_text(const OptionValue& v);

// An option a method refuses. what() names the option by key.
class OptionError : public Error {
 public:
  enum class Kind {
    kUnknownKey,  // the method has no such option
    kBadValue,    // the method has it, the value is of the wrong type or out of range
  };
  // `problem` follows the option's name: "must be in (0, 1], got 2"; other options it names are
  // written {key} ("is above {tsp_rate}"), so that worded() names them the same way.
  OptionError(Kind kind, std::string method, std::string key, std::string problem);
  Kind kind() const { return kind_; }
  const std::string& method() const { return method_; }
  const std::string& key() const { return key_; }
  const std::string& problem() const { return problem_; }
  // The message with the option named by `name(key)`: flag_name for the command line.
  std::string worded(const std::function<std::string(const std::string&)>& name) const;
  // The same error with what() worded for the command line ("--retain-rate must be ...").
  OptionError with_flag_names() const;

 private:
  OptionError(Kind kind, std::string method, std::string key, std::string problem,
              const std::string& what);
  static std::string message(Kind kind, const std::string& method, const std::string& key,
                             const std::string& problem,
                             const std::function<std::string(const std::string&)>& name);
  Kind kind_;
  std::string method_, key_, problem_;
};

// The error for `key`, which `method` (with options `schema`) does not take.
OptionError unknown_option(const std::string& method, const OptionSchema& schema,
                           const std::string& key);
// Whether `schema` declares `key`.
bool has_option(const OptionSchema& schema, const std::string& key);

// A method's checked options: what its factory reads. Only keys of the schema, each of its
// declared type and in range; absent keys are absent (the method's config keeps its default).
class OptionSet {
 public:
  OptionSet() = default;
  OptionSet(std::string method, OptionValues values)
      : method_(std::move(method)), values_(std::move(values)) {}
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  // The value of `key`, or `fallback` when absent.
  double number(const std::string& key, double fallback) const;
  int integer(const std::string& key, int fallback) const;
  std::string text(const std::string& key, const std::string& fallback) const;
  const OptionValues& values() const { return values_; }
  const std::string& method() const { return method_; }
  // Throws OptionError(kBadValue) for `key` (cross-option checks of a method's config).
  [[noreturn]] void reject(const std::string& key, const std::string& problem) const;

 private:
  std::string method_;
  OptionValues values_;
};

// Checks `values` against `schema` for `method`: unknown keys, types (a number given as text is
// parsed; an integral double counts as an integer) and ranges. Throws OptionError.
OptionSet check_options(const std::string& method, const OptionSchema& schema,
                        const OptionValues& values);
// The same from text values (command line, `--methods`).
OptionSet check_options(const std::string& method, const OptionSchema& schema,
                        const MethodOptions& text);

// Runs `f` (a text-path creation) and rewords an OptionError it throws with flag names.
template <typename F>
auto with_flag_names(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const OptionError& e) {
    throw e.with_flag_names();
  }
}

}  // namespace fastkv
