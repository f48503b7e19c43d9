#include "policy/fastkv.h"

#include <algorithm>

#include "common/error.h"
#include "policy/options.h"

namespace fastkv {

FastKVConfig FastKVConfig::from_options(const PolicyOptions& opts, int n_layer) {
  reject_unknown(opts, "fastkv",
                 {"tsp_layer", "tsp_rate", "retain_rate", "kv_budget", "tsp_len", "window",
                  "kernel", "pool"});
  FastKVConfig c;
  const std::string layer = option_string(opts, "tsp_layer", "");
  if (layer == "none" || layer == "off") {
    c.tsp_layer = -1;
  } else if (!layer.empty()) {
    c.tsp_layer = option_int(opts, "tsp_layer", -2);
    if (c.tsp_layer < 0) fail("--tsp-layer must be a layer index >= 0 or 'none', got ", layer);
  }
  c.tsp_rate = option_double(opts, "tsp_rate", c.tsp_rate);
  c.retain_rate = option_double(opts, "retain_rate", c.retain_rate);
  c.kv_budget = option_int(opts, "kv_budget", 0);
  c.tsp_len = option_int(opts, "tsp_len", 0);
  if (opts.count("kv_budget") && c.kv_budget <= 0) fail("--kv-budget must be > 0");
  if (opts.count("tsp_len") && c.tsp_len <= 0) fail("--tsp-len must be > 0");
  c.window = option_int(opts, "window", c.window);
  c.kernel = option_int(opts, "kernel", c.kernel);
  const std::string pool = option_string(opts, "pool", "max");
  if (pool == "max" || pool == "maxpool") {
    c.pool = kernels::PoolType::kMax;
  } else if (pool == "avg" || pool == "avgpool") {
    c.pool = kernels::PoolType::kAvg;
  } else {
    fail("--pool must be max or avg, got '", pool, "'");
  }
  c.validate(n_layer);
  return c;
}

void FastKVConfig::validate(int n_layer) {
  if (!(tsp_rate > 0 && tsp_rate <= 1)) fail("--tsp-rate must be in (0, 1], got ", tsp_rate);
  if (!(retain_rate > 0 && retain_rate <= 1)) {
    fail("--retain-rate must be in (0, 1], got ", retain_rate);
  }
  if (window < 1) fail("--window must be >= 1, got ", window);
  if (kernel < 1 || kernel % 2 == 0) fail("--kernel must be an odd number >= 1, got ", kernel);
  if (tsp_layer == -2) tsp_layer = std::max(0, n_layer / 2 - 1);
  if (tsp_layer >= n_layer) {
    fail("--tsp-layer ", tsp_layer, " is not below the model's ", n_layer, " layers");
  }
  if (tsp_enabled() && kv_budget == 0 && tsp_len == 0 && retain_rate > tsp_rate) {
    fail("--retain-rate ", retain_rate, " is above --tsp-rate ", tsp_rate,
         ": after the TSP layer only tsp_rate × N tokens remain, so a layer cannot keep "
         "retain_rate × N of them (lower --retain-rate, raise --tsp-rate, or --tsp-layer none)");
  }
}

FastKVLayerResult fastkv_select(const FastKVConfig& cfg, const float* q, const float* k, int n,
                                int H, int G, int d, double retain, bool is_tsp_layer,
                                int n_prompt) {
  FastKVLayerResult r;
  r.n = n;
  const int w = cfg.window;
  const int capacity = cfg.kv_budget > 0 ? cfg.kv_budget : static_cast<int>(n * retain);
  const int T = cfg.tsp_len > 0 ? cfg.tsp_len : static_cast<int>(n_prompt * cfg.tsp_rate);
  const bool compress = n > capacity && capacity >= w + 1;
  const bool propagate = is_tsp_layer && n > T && T >= w + 1;
  r.capacity = compress ? capacity : n;
  r.keep.assign(G, {});
  if (!compress && !propagate) {
    for (auto& kh : r.keep) {
      kh.resize(n);
      for (int j = 0; j < n; ++j) kh[j] = j;
    }
    return r;
  }

  // window scores [H, n-w] -> pooled per query head -> summed per KV head [G, n-w]
  const int before = n - w;
  r.group_scores.resize(static_cast<size_t>(G) * before);
  kernels::grouped_window_scores(q, k, n, H, G, d, w, cfg.kernel, cfg.pool,
                                 r.group_scores.data());
  r.scoring_flops = 2LL * H * w * n * d;

  for (int kvh = 0; kvh < G; ++kvh) {
    std::vector<int32_t>& kh = r.keep[kvh];
    if (compress) {
      kh = kernels::topk(r.group_scores.data() + static_cast<int64_t>(kvh) * before, before,
                         capacity - w);
      for (int j = before; j < n; ++j) kh.push_back(j);
    } else {
      kh.resize(n);
      for (int j = 0; j < n; ++j) kh[j] = j;
    }
  }
  r.dropped = compress;

  if (propagate) {
    r.tsp_scores.assign(before, 0.0f);
    for (int kvh = 0; kvh < G; ++kvh) {
      const float* gs = r.group_scores.data() + static_cast<int64_t>(kvh) * before;
      for (int j = 0; j < before; ++j) r.tsp_scores[j] += gs[j];
    }
    std::vector<int32_t> sel = kernels::topk(r.tsp_scores.data(), before, T - w);
    for (int j = before; j < n; ++j) sel.push_back(j);
    std::sort(sel.begin(), sel.end());
    r.tsp = std::move(sel);
  }
  return r;
}

LayerDecision FastKVPolicy::on_layer(const LayerInput& in) {
  const bool after_tsp = cfg_.tsp_enabled() && in.layer > cfg_.tsp_layer;
  const double retain = after_tsp ? cfg_.retain_rate / cfg_.tsp_rate : cfg_.retain_rate;
  const bool is_tsp = cfg_.tsp_enabled() && in.layer == cfg_.tsp_layer;
  FastKVLayerResult r = fastkv_select(cfg_, in.q, in.k, in.n, in.n_head, in.n_head_kv,
                                      in.head_dim, retain, is_tsp, in.n_prompt);
  LayerDecision d;
  d.cache_heads = in.n_head_kv;
  d.keep_all = !r.dropped;
  if (r.dropped) d.keep = std::move(r.keep);
  d.propagate = std::move(r.tsp);
  d.scoring_flops = r.scoring_flops;
  return d;
}

void register_fastkv(PolicyRegistry& reg) {
  reg.add("fastkv", [](const PolicyOptions& opts, int n_layer) -> std::unique_ptr<Policy> {
    return std::make_unique<FastKVPolicy>(FastKVConfig::from_options(opts, n_layer));
  });
}

}  // namespace fastkv
