#include "method/snapkv.h"

#include "kernels/scoring.h"

namespace fastkv {

OptionSchema SnapKVConfig::schema() {
  return budget_schema({.window = true, .kernel = true, .pool = true}, SnapKVConfig{});
}

SnapKVConfig SnapKVConfig::from_set(const OptionSet& opts) {
  return read_budget_as<SnapKVConfig>(opts);
}

SnapKVConfig SnapKVConfig::from_options(const MethodOptions& opts) {
  return config_from_text<SnapKVConfig>("snapkv", opts);
}

KeyScores snapkv_scores(const BudgetConfig& cfg, const float* q, const float* k, int n, int H,
                        int G, int d) {
  KeyScores s;
  const int w = cfg.window;
  const int before = n - w;
  s.cache_heads = H;
  s.stride = before;
  std::vector<float> raw(static_cast<size_t>(H) * before);  // [H, n - w]
  kernels::window_scores(q, k, n, H, G, d, w, raw.data());
  s.flops = 2LL * H * w * n * d;
  s.scores.resize(raw.size());
  for (int h = 0; h < H; ++h) {
    const int64_t off = static_cast<int64_t>(h) * before;
    kernels::pool1d(raw.data() + off, before, cfg.kernel, cfg.pool, s.scores.data() + off);
  }
  return s;
}

SnapKVLayerResult snapkv_select(const BudgetConfig& cfg, const float* q, const float* k, int n,
                                int H, int G, int d) {
  SnapKVLayerResult r;
  r.n = n;
  if (!start_selection(cfg, n, H, r)) return r;
  const int capacity = r.capacity;
  KeyScores s = snapkv_scores(cfg, q, k, n, H, G, d);
  r.keep = keep_top_then_window(s, n, cfg.window, capacity);
  r.scoring_flops = s.flops;
  r.head_scores = std::move(s.scores);
  return r;
}

void register_snapkv(MethodRegistry& reg) {
  add_method<SnapKVMethod, SnapKVConfig>(reg, "snapkv");
}

}  // namespace fastkv
