// The cache budget shared by the KV-compression baselines (snapkv, streamingllm, h2o, adakv,
// gemfilter): proportional mode (C = int(n × retain_rate)) or constant mode (C = kv_budget),
// plus the observation window and pooling where a method uses them. Each method's config
// derives from BudgetConfig, declares the shared options it takes with budget_schema() and
// reads them with read_budget().
#pragma once

#include <initializer_list>
#include <string>

#include "kernels/scoring.h"
#include "method/method.h"

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

// Which of the shared fields a method takes (retain_rate and kv_budget always).
struct BudgetFields {
  bool window = false;
  bool kernel = false;
  bool pool = false;
};

// The schema entries of "retain_rate", "kv_budget" and, when `fields` says so, "window",
// "kernel", "pool", with `defaults`' values as the documented defaults.
OptionSchema budget_schema(BudgetFields fields, const BudgetConfig& defaults);

// Reads the shared fields present in `opts` (checked against budget_schema) into `c`, keeping
// c's values where absent.
void read_budget(const OptionSet& opts, BudgetConfig& c);
// A default Config (a BudgetConfig without fields of its own) with read_budget applied.
template <typename Config>
Config read_budget_as(const OptionSet& opts) {
  Config c;
  read_budget(opts, c);
  return c;
}

// The identity selection 0..n-1 (a head that keeps every live token).
std::vector<int32_t> all_indices(int n);

// The start of a selection step alone (the *_select functions tests and goldens call) on n live
// tokens and `heads` cache heads: sets r.dropped, r.capacity (C, or n when nothing drops) and,
// when nothing drops, r.keep = every token in every head. Returns r.dropped.
template <typename Result>
bool start_selection(const BudgetConfig& cfg, int n, int heads, Result& r) {
  r.dropped = cfg.drops(n);
  r.capacity = r.dropped ? cfg.capacity(n) : n;
  if (!r.dropped) r.keep.assign(heads, all_indices(n));
  return r.dropped;
}

}  // namespace fastkv
