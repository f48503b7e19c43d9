// Compression-method flags shared by `run`, `bench`, `eval` and `serve`: --method plus the
// method parameters. Only flags the user gave are passed on, so each method's config applies
// its own defaults and rejects parameters it does not take.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "policy/policy.h"

namespace fastkv::cli {

struct MethodFlags {
  std::string method = "full";
  PolicyOptions options;  // filled after parsing by collect()
  // Raw flag values (strings: validated by the policy's config, with the flag's name).
  std::string tsp_layer, tsp_rate, retain_rate, kv_budget, tsp_len, window, kernel, pool;
  std::string filter_layer, recent_ratio, decay, floor_alpha;

  void add_to(CLI::App* app);
  // Copies the flags that were given into `options`.
  void collect();
};

}  // namespace fastkv::cli
