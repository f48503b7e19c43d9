#include "policy/h2o.h"

#include "common/error.h"
#include "policy/options.h"

namespace fastkv {

H2OConfig H2OConfig::from_options(const PolicyOptions& opts) {
  reject_unknown(opts, "h2o", {"retain_rate", "kv_budget", "window"});
  H2OConfig c;
  parse_budget(opts, {.window = true}, c);
  return c;
}

H2OLayerResult h2o_select(const BudgetConfig& cfg, const float* colsum, int n, int H, int G) {
  H2OLayerResult r;
  const int w = cfg.window;
  const int capacity = cfg.capacity(n);
  r.dropped = cfg.drops(n);
  r.capacity = r.dropped ? capacity : n;
  r.keep.assign(G, {});
  if (!r.dropped) {
    for (auto& kh : r.keep) kh = all_indices(n);
    return r;
  }
  const int g = H / G;
  const int before = n - w;
  r.group_scores.assign(static_cast<size_t>(G) * n, 0.0f);
  for (int h = 0; h < H; ++h) {
    const float* cs = colsum + static_cast<int64_t>(h) * n;
    float* gs = r.group_scores.data() + static_cast<int64_t>(h / g) * n;
    for (int j = 0; j < n; ++j) gs[j] += cs[j];
  }
  for (int kvh = 0; kvh < G; ++kvh) {
    std::vector<int32_t>& kh = r.keep[kvh];
    kh = kernels::topk(r.group_scores.data() + static_cast<int64_t>(kvh) * n, before, capacity - w);
    for (int j = before; j < n; ++j) kh.push_back(j);
  }
  return r;
}

bool H2OPolicy::wants_attention_column_sums(int layer, int n) const {
  return cfg_.drops(n);
}

LayerDecision H2OPolicy::on_layer(const LayerInput& in) {
  LayerDecision d;
  d.cache_heads = in.n_head_kv;
  if (!wants_attention_column_sums(in.layer, in.n)) return d;  // nothing to drop
  if (in.attn_colsum == nullptr) fail("h2o needs the attention column sums from the model");
  H2OLayerResult r = h2o_select(cfg_, in.attn_colsum, in.n, in.n_head, in.n_head_kv);
  d.keep_all = false;
  d.keep = std::move(r.keep);
  // The group sums; the column sums themselves are counted by the model.
  d.scoring_flops = static_cast<int64_t>(in.n_head) * in.n;
  return d;
}

void register_h2o(PolicyRegistry& reg) {
  reg.add("h2o", [](const PolicyOptions& opts, int) -> std::unique_ptr<Policy> {
    return std::make_unique<H2OPolicy>(H2OConfig::from_options(opts));
  });
}

}  // namespace fastkv
