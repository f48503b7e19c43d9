#include "policy/budget.h"

#include <numeric>

#include "common/error.h"
#include "policy/options.h"

namespace fastkv {

void parse_budget(const PolicyOptions& opts, BudgetFields fields, BudgetConfig& c) {
  c.retain_rate = option_double(opts, "retain_rate", c.retain_rate);
  if (!(c.retain_rate > 0 && c.retain_rate <= 1)) {
    fail("--retain-rate must be in (0, 1], got ", c.retain_rate);
  }
  c.kv_budget = option_int(opts, "kv_budget", c.kv_budget);
  if (opts.count("kv_budget") && c.kv_budget <= 0) fail("--kv-budget must be > 0");
  if (fields.window) {
    c.window = option_int(opts, "window", c.window);
    if (c.window < 1) fail("--window must be >= 1, got ", c.window);
  }
  if (fields.pooling) {
    c.kernel = option_int(opts, "kernel", c.kernel);
    if (c.kernel < 1 || c.kernel % 2 == 0) {
      fail("--kernel must be an odd number >= 1, got ", c.kernel);
    }
    const std::string pool =
        option_string(opts, "pool", c.pool == kernels::PoolType::kMax ? "max" : "avg");
    if (pool == "max" || pool == "maxpool") {
      c.pool = kernels::PoolType::kMax;
    } else if (pool == "avg" || pool == "avgpool") {
      c.pool = kernels::PoolType::kAvg;
    } else {
      fail("--pool must be max or avg, got '", pool, "'");
    }
  }
}

std::vector<int32_t> all_indices(int n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace fastkv
