#include "policy/snapkv.h"

#include "policy/options.h"

namespace fastkv {

SnapKVConfig SnapKVConfig::from_options(const PolicyOptions& opts) {
  reject_unknown(opts, "snapkv", {"retain_rate", "kv_budget", "window", "kernel", "pool"});
  SnapKVConfig c;
  parse_budget(opts, {.window = true, .pooling = true}, c);
  return c;
}

SnapKVLayerResult snapkv_select(const BudgetConfig& cfg, const float* q, const float* k, int n,
                                int H, int G, int d) {
  SnapKVLayerResult r;
  r.n = n;
  const int w = cfg.window;
  const int capacity = cfg.capacity(n);
  r.dropped = cfg.drops(n);
  r.capacity = r.dropped ? capacity : n;
  r.keep.assign(H, {});
  if (!r.dropped) {
    for (auto& kh : r.keep) kh = all_indices(n);
    return r;
  }
  const int before = n - w;
  std::vector<float> raw(static_cast<size_t>(H) * before);
  kernels::window_scores(q, k, n, H, G, d, w, raw.data());
  r.scoring_flops = 2LL * H * w * n * d;
  r.head_scores.resize(raw.size());
  for (int h = 0; h < H; ++h) {
    const int64_t off = static_cast<int64_t>(h) * before;
    kernels::pool1d(raw.data() + off, before, cfg.kernel, cfg.pool, r.head_scores.data() + off);
    std::vector<int32_t>& kh = r.keep[h];
    kh = kernels::topk(r.head_scores.data() + off, before, capacity - w);
    for (int j = before; j < n; ++j) kh.push_back(j);
  }
  return r;
}

LayerDecision SnapKVPolicy::on_layer(const LayerInput& in) {
  SnapKVLayerResult r = snapkv_select(cfg_, in.q, in.k, in.n, in.n_head, in.n_head_kv, in.head_dim);
  LayerDecision d;
  d.scoring_flops = r.scoring_flops;
  if (!r.dropped) {
    // Every head keeps every token: the plain per-KV-head cache, without g-fold copies.
    d.cache_heads = in.n_head_kv;
    return d;
  }
  d.cache_heads = in.n_head;  // cache head h serves query head h, rows of KV head h / g
  d.keep_all = false;
  d.keep = std::move(r.keep);
  return d;
}

void register_snapkv(PolicyRegistry& reg) {
  reg.add("snapkv", [](const PolicyOptions& opts, int) -> std::unique_ptr<Policy> {
    return std::make_unique<SnapKVPolicy>(SnapKVConfig::from_options(opts));
  });
}

}  // namespace fastkv
