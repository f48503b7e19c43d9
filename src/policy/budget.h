// The cache budget shared by the KV-compression baselines (snapkv, streamingllm, h2o, adakv,
// gemfilter): proportional mode (C = int(n × retain_rate)) or constant mode (C = kv_budget),
// plus the observation window and pooling where a method uses them. Each method's config
// derives from BudgetConfig and parses its own option list with parse_budget().
#pragma once

#include <initializer_list>
#include <string>

#include "kernels/scoring.h"
#include "policy/policy.h"

namespace fastkv {

struct BudgetConfig {
  double retain_rate = 0.1;  // fraction of the live tokens kept per cache head, (0, 1]
  int kv_budget = 0;         // > 0: constant mode, C fixed
  int window = 8;            // w >= 1 (methods with an observation window)
  int kernel = 7;            // odd >= 1 (methods that pool)
  kernels::PoolType pool = kernels::PoolType::kMax;

  // C for n live tokens: kv_budget in constant mode, else int(n × retain_rate).
  int capacity(int n) const {
    return kv_budget > 0 ? kv_budget : static_cast<int>(n * retain_rate);
  }
  // Whether a layer of n live tokens drops rows: n > C and C leaves room beyond the window
  // (C >= w + 1); otherwise every token is kept.
  bool drops(int n) const {
    const int c = capacity(n);
    return n > c && c >= window + 1;
  }
};

// Which of the shared fields a method takes.
struct BudgetFields {
  bool window = false;
  bool pooling = false;  // kernel and pool
};

// Reads "retain_rate", "kv_budget" and, when `fields` says so, "window", "kernel", "pool" from
// `opts` into `c` (keeping c's values as defaults) and validates them. Unknown keys must have
// been rejected by the caller (reject_unknown). Throws fastkv::Error naming the flag.
void parse_budget(const PolicyOptions& opts, BudgetFields fields, BudgetConfig& c);

// The identity selection 0..n-1 (a head that keeps every live token).
std::vector<int32_t> all_indices(int n);

}  // namespace fastkv
