// Compression-method flags shared by `run`, `bench`, `eval` and `serve`: --method plus one flag
// per option key of any registered method, generated from the methods' option schemas
// (policy/options.h): --retain-rate for retain_rate, with the schema's help, the methods that
// take it and their defaults. Only flags the user gave are passed on, so each method applies its
// own defaults and rejects options it does not take.
#pragma once

#include <map>
#include <string>

#include <CLI/CLI.hpp>

#include "method/method.h"

namespace fastkv::cli {

struct MethodFlags {
  std::string method = "full";
  MethodOptions options;  // filled after parsing by collect()

  // Adds --method and the option flags.
  void add_to(CLI::App* app);
  // Copies the flags that were given into `options` (key -> text).
  void collect();

 private:
  std::map<std::string, std::string> text_;  // key -> the flag's text ("" = not given)
};

}  // namespace fastkv::cli
