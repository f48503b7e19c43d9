#include "policy/adakv.h"

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "policy/options.h"

namespace fastkv {

AdaKVConfig AdaKVConfig::from_options(const PolicyOptions& opts) {
  reject_unknown(opts, "adakv",
                 {"retain_rate", "kv_budget", "window", "kernel", "pool", "floor_alpha"});
  AdaKVConfig c;
  parse_budget(opts, {.window = true, .pooling = true}, c);
  c.floor_alpha = option_double(opts, "floor_alpha", c.floor_alpha);
  if (!(c.floor_alpha >= 0 && c.floor_alpha <= 1)) {
    fail("--floor-alpha must be in [0, 1], got ", c.floor_alpha);
  }
  return c;
}

int AdaKVConfig::safeguard(int capacity) const {
  return std::min(static_cast<int>(floor_alpha * capacity), capacity - window);
}

AdaKVLayerResult adakv_select(const AdaKVConfig& cfg, const float* q, const float* k, int n, int H,
                              int G, int d) {
  AdaKVLayerResult r;
  const int w = cfg.window;
  const int capacity = cfg.capacity(n);
  r.dropped = cfg.drops(n);
  r.capacity = r.dropped ? capacity : n;
  r.keep.assign(G, {});
  if (!r.dropped) {
    for (auto& kh : r.keep) kh = all_indices(n);
    return r;
  }

  // GQA-aware pooled window scores [G, n-w], as fastkv computes them.
  const int before = n - w;
  r.group_scores.resize(static_cast<size_t>(G) * before);
  kernels::grouped_window_scores(q, k, n, H, G, d, w, cfg.kernel, cfg.pool,
                                 r.group_scores.data());
  r.scoring_flops = 2LL * H * w * n * d;

  // 1. safeguard: each head's own top s.
  const int s = cfg.safeguard(capacity);
  std::vector<float> rest(r.group_scores);  // [G, before], taken entries set to -inf
  for (int kvh = 0; kvh < G; ++kvh) {
    const int64_t off = static_cast<int64_t>(kvh) * before;
    r.keep[kvh] = kernels::topk(r.group_scores.data() + off, before, s);
    for (int32_t j : r.keep[kvh]) rest[off + j] = -std::numeric_limits<float>::infinity();
  }
  // 2. the rest of the budget: a layer-wide top-k over every head's remaining scores.
  const int64_t global = static_cast<int64_t>(G) * (capacity - w - s);
  for (int32_t flat :
       kernels::topk(rest.data(), static_cast<int>(rest.size()), static_cast<int>(global))) {
    r.keep[flat / before].push_back(flat % before);
  }
  // 3. the window.
  for (auto& kh : r.keep) {
    for (int j = before; j < n; ++j) kh.push_back(j);
  }
  return r;
}

LayerDecision AdaKVPolicy::on_layer(const LayerInput& in) {
  AdaKVLayerResult r = adakv_select(cfg_, in.q, in.k, in.n, in.n_head, in.n_head_kv, in.head_dim);
  LayerDecision d;
  d.cache_heads = in.n_head_kv;
  d.scoring_flops = r.scoring_flops;
  if (r.dropped) {
    d.keep_all = false;
    d.keep = std::move(r.keep);
  }
  return d;
}

void register_adakv(PolicyRegistry& reg) {
  reg.add("adakv", [](const PolicyOptions& opts, int) -> std::unique_ptr<Policy> {
    return std::make_unique<AdaKVPolicy>(AdaKVConfig::from_options(opts));
  });
}

}  // namespace fastkv
