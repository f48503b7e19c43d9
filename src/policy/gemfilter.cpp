#include "policy/gemfilter.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "policy/options.h"

namespace fastkv {

int GemFilterConfig::default_filter_layer(int n_layer) {
  const int l = static_cast<int>(std::lround(13.0 * n_layer / 32.0));
  return std::clamp(l, 0, std::max(0, n_layer - 1));
}

GemFilterConfig GemFilterConfig::from_options(const PolicyOptions& opts, int n_layer) {
  reject_unknown(opts, "gemfilter", {"retain_rate", "kv_budget", "kernel", "filter_layer"});
  GemFilterConfig c;
  parse_budget(opts, {}, c);
  c.kernel = option_int(opts, "kernel", c.kernel);
  if (c.kernel < 1 || c.kernel % 2 == 0) {
    fail("--kernel must be an odd number >= 1, got ", c.kernel);
  }
  c.filter_layer = option_int(opts, "filter_layer", default_filter_layer(n_layer));
  if (c.filter_layer < 0) fail("--filter-layer must be >= 0, got ", c.filter_layer);
  if (c.filter_layer >= n_layer) {
    fail("--filter-layer ", c.filter_layer, " is not below the model's ", n_layer, " layers");
  }
  return c;
}

GemFilterResult gemfilter_select(const BudgetConfig& cfg, const float* q, const float* k, int n,
                                 int H, int G, int d) {
  GemFilterResult r;
  std::vector<float> raw(n);
  kernels::last_query_dot_scores(q, k, n, H, G, d, raw.data());
  r.scoring_flops = 2LL * H * n * d;
  r.scores.resize(n);
  kernels::pool1d(raw.data(), n, cfg.kernel, kernels::PoolType::kAvg, r.scores.data());
  const int T = std::clamp(cfg.capacity(n), 1, n);
  r.selected = kernels::topk(r.scores.data(), n, T);
  std::sort(r.selected.begin(), r.selected.end());
  return r;
}

LayerDecision GemFilterPolicy::on_layer(const LayerInput& in) {
  LayerDecision d;
  d.cache_heads = in.n_head_kv;  // keep everything (pass 0's caches are discarded anyway)
  if (in.pass == 0 && in.layer == cfg_.filter_layer) {
    GemFilterResult r =
        gemfilter_select(cfg_, in.q, in.k, in.n, in.n_head, in.n_head_kv, in.head_dim);
    d.restart = std::move(r.selected);
    d.scoring_flops = r.scoring_flops;
  }
  return d;
}

void register_gemfilter(PolicyRegistry& reg) {
  reg.add("gemfilter", [](const PolicyOptions& opts, int n_layer) -> std::unique_ptr<Policy> {
    return std::make_unique<GemFilterPolicy>(GemFilterConfig::from_options(opts, n_layer));
  });
}

}  // namespace fastkv
