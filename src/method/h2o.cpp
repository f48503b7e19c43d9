#include "method/h2o.h"

#include "common/error.h"

namespace fastkv {

OptionSchema H2OConfig::schema() {
  return budget_schema({.window = true}, H2OConfig{});
}

H2OConfig H2OConfig::from_set(const OptionSet& opts) {
  return read_budget_as<H2OConfig>(opts);
}

H2OConfig H2OConfig::from_options(const MethodOptions& opts) {
  return config_from_text<H2OConfig>("h2o", opts);
}

KeyScores h2o_scores(const float* colsum, int n, int H, int G) {
  KeyScores s;
  s.cache_heads = G;
  s.stride = n;
  s.scores.assign(static_cast<size_t>(G) * n, 0.0f);
  const int g = H / G;
  for (int h = 0; h < H; ++h) {
    const float* cs = colsum + static_cast<int64_t>(h) * n;
    float* gs = s.scores.data() + static_cast<int64_t>(h / g) * n;
    for (int j = 0; j < n; ++j) gs[j] += cs[j];
  }
  // The group sums; the column sums themselves are counted by the model.
  s.flops = static_cast<int64_t>(H) * n;
  return s;
}

H2OLayerResult h2o_select(const BudgetConfig& cfg, const float* colsum, int n, int H, int G) {
  H2OLayerResult r;
  if (!start_selection(cfg, n, G, r)) return r;
  const int capacity = r.capacity;
  KeyScores s = h2o_scores(colsum, n, H, G);
  r.keep = keep_top_then_window(s, n, cfg.window, capacity);
  r.group_scores = std::move(s.scores);
  return r;
}

bool H2OMethod::wants_attention_column_sums(int layer, int n) const {
  return cfg_.drops(n);
}

KeyScores H2OMethod::score(const LayerInput& in) {
  if (in.attn_colsum == nullptr) fail("h2o needs the attention column sums from the model");
  return h2o_scores(in.attn_colsum, in.n, in.n_head, in.n_head_kv);
}

void register_h2o(MethodRegistry& reg) {
  add_method<H2OMethod, H2OConfig>(reg, "h2o");
}

}  // namespace fastkv
