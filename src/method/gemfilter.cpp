#include "method/gemfilter.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace fastkv {

int GemFilterConfig::default_filter_layer(int n_layer) {
  const int l = static_cast<int>(std::lround(13.0 * n_layer / 32.0));
  return std::clamp(l, 0, std::max(0, n_layer - 1));
}

OptionSchema GemFilterConfig::schema() {
  const GemFilterConfig d;
  OptionSchema s = budget_schema({.kernel = true}, d);
  s.push_back(OptionSpec::integer("filter_layer", 0, "round(13 L / 32)",
                                  "GemFilter: the layer whose last query selects the tokens"));
  return s;
}

GemFilterConfig GemFilterConfig::from_set(const OptionSet& opts, int n_layer) {
  GemFilterConfig c;
  read_budget(opts, c);
  c.filter_layer = opts.integer("filter_layer", default_filter_layer(n_layer));
  if (c.filter_layer >= n_layer) {
    opts.reject("filter_layer",
                cat(c.filter_layer, " is not below the model's ", n_layer, " layers"));
  }
  return c;
}

GemFilterConfig GemFilterConfig::from_options(const MethodOptions& opts, int n_layer) {
  return config_from_text<GemFilterConfig>("gemfilter", opts, n_layer);
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

LayerDecision GemFilterMethod::on_layer(const LayerInput& in) {
  LayerDecision d;
  d.cache_heads = in.n_head_kv;  // keep everything (pass 0's caches are discarded anyway)
  if (in.pass == 0 && in.layer == filter_at_ && in.window > 0) filter_at_ = in.layer + 1;
  if (in.pass == 0 && in.layer == filter_at_) {
    GemFilterResult r =
        gemfilter_select(cfg_, in.q, in.k, in.n, in.n_head, in.n_head_kv, in.head_dim);
    d.restart = std::move(r.selected);
    d.scoring_flops = r.scoring_flops;
  }
  return d;
}

void register_gemfilter(MethodRegistry& reg) {
  add_method<GemFilterMethod, GemFilterConfig>(reg, "gemfilter");
}

}  // namespace fastkv
