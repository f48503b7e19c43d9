#include "method/budget.h"

#include <numeric>

#include "common/error.h"

namespace fastkv {

OptionSchema budget_schema(BudgetFields fields, const BudgetConfig& d) {
  OptionSchema s;
  s.push_back(OptionSpec::number("retain_rate", 0, 1, true, false, cat(d.retain_rate),
                                 "fraction of the live tokens each cache head keeps"));
  s.push_back(OptionSpec::integer("kv_budget", 0, "", "constant mode: KV entries kept per head",
                                  /*min_open=*/true));
  if (fields.window) {
    s.push_back(OptionSpec::integer("window", 1, cat(d.window),
                                    "observation window: the last W queries score the keys"));
  }
  if (fields.kernel) {
    s.push_back(OptionSpec::integer("kernel", 1, cat(d.kernel),
                                    "pooling kernel size over the scores, odd",
                                    /*min_open=*/false, /*odd=*/true));
  }
  if (fields.pool) {
    s.push_back(OptionSpec::choice("pool", {"max", "avg"}, {{"maxpool", "max"}, {"avgpool", "avg"}},
                                   d.pool == kernels::PoolType::kMax ? "max" : "avg",
                                   "pooling of the scores: max or avg"));
  }
  return s;
}

void read_budget(const OptionSet& opts, BudgetConfig& c) {
  c.retain_rate = opts.number("retain_rate", c.retain_rate);
  c.kv_budget = opts.integer("kv_budget", c.kv_budget);
  c.window = opts.integer("window", c.window);
  c.kernel = opts.integer("kernel", c.kernel);
  if (opts.has("pool")) {
    c.pool = opts.text("pool", "") == "max" ? kernels::PoolType::kMax : kernels::PoolType::kAvg;
  }
}

std::vector<int32_t> all_indices(int n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace fastkv
