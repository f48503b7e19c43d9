#include "method/fastkv.h"

#include <algorithm>

#include "common/error.h"

namespace fastkv {

OptionSchema FastKVConfig::schema() {
  const FastKVConfig d;
  OptionSchema s;
  s.push_back(OptionSpec::layer_or_none(
      "tsp_layer", "floor(L/2)-1",
      "layer after which only the selected tokens propagate, or 'none' (no TSP)"));
  s.push_back(OptionSpec::number("tsp_rate", 0, 1, true, false, cat(d.tsp_rate),
                                 "fraction of the prompt propagated after the TSP layer"));
  for (OptionSpec& b : budget_schema({.window = true, .kernel = true, .pool = true}, d)) {
    s.push_back(std::move(b));
  }
  s.push_back(OptionSpec::integer("tsp_len", 0, "",
                                  "constant mode: tokens propagated after the TSP layer",
                                  /*min_open=*/true));
  return s;
}

FastKVConfig FastKVConfig::from_set(const OptionSet& opts, int n_layer) {
  FastKVConfig c;
  read_budget(opts, c);
  if (opts.has("tsp_layer")) {
    const std::string layer = opts.text("tsp_layer", "");
    c.tsp_layer = layer == "none" ? -1 : opts.integer("tsp_layer", -2);
  }
  c.tsp_rate = opts.number("tsp_rate", c.tsp_rate);
  c.tsp_len = opts.integer("tsp_len", c.tsp_len);
  c.validate(n_layer, opts);
  return c;
}

FastKVConfig FastKVConfig::from_options(const MethodOptions& opts, int n_layer) {
  return config_from_text<FastKVConfig>("fastkv", opts, n_layer);
}

void FastKVConfig::validate(int n_layer) {
  validate(n_layer, OptionSet("fastkv", {}));
}

void FastKVConfig::validate(int n_layer, const OptionSet& where) {
  // Ranges of values set in code (those from options were checked by the schema).
  for (const OptionSpec& spec : schema()) {
    OptionValue v;
    if (spec.key == "tsp_rate")
      v = tsp_rate;
    else if (spec.key == "retain_rate")
      v = retain_rate;
    else if (spec.key == "window")
      v = int64_t{window};
    else if (spec.key == "kernel")
      v = int64_t{kernel};
    else
      continue;
    (void)check_options("fastkv", {spec}, OptionValues{{spec.key, v}});
  }
  if (tsp_layer == -2) tsp_layer = std::max(0, n_layer / 2 - 1);
  if (tsp_layer >= n_layer) {
    where.reject("tsp_layer", cat(tsp_layer, " is not below the model's ", n_layer, " layers"));
  }
  if (tsp_enabled() && kv_budget == 0 && tsp_len == 0 && retain_rate > tsp_rate) {
    where.reject("retain_rate",
                 cat(retain_rate, " is above {tsp_rate} ", tsp_rate,
                     ": after the TSP layer only tsp_rate × N tokens remain, so a layer cannot "
                     "keep retain_rate × N of them (lower {retain_rate}, raise {tsp_rate}, or "
                     "{tsp_layer} none)"));
  }
}

std::vector<int32_t> tsp_select(const KeyScores& s, int n, int window, int T,
                                std::vector<float>* summed) {
  const int before = n - window;
  std::vector<float> tsp(before, 0.0f);  // [n - w] sum over the cache heads
  for (int h = 0; h < s.cache_heads; ++h) {
    const float* gs = s.scores.data() + static_cast<int64_t>(h) * s.stride;
    for (int j = 0; j < before; ++j) tsp[j] += gs[j];
  }
  std::vector<int32_t> sel = kernels::topk(tsp.data(), before, T - window);
  for (int j = before; j < n; ++j) sel.push_back(j);
  std::sort(sel.begin(), sel.end());
  if (summed) *summed = std::move(tsp);
  return sel;
}

int FastKVConfig::layer_capacity(int n, double retain) const {
  return kv_budget > 0 ? kv_budget : static_cast<int>(n * retain);
}

int FastKVConfig::tsp_target(int n_prompt) const {
  return tsp_len > 0 ? tsp_len : static_cast<int>(n_prompt * tsp_rate);
}

FastKVLayerResult fastkv_select(const FastKVConfig& cfg, const float* q, const float* k, int n,
                                int H, int G, int d, double retain, bool is_tsp_layer,
                                int n_prompt) {
  FastKVLayerResult r;
  r.n = n;
  const int w = cfg.window;
  const int capacity = cfg.layer_capacity(n, retain);
  const int T = cfg.tsp_target(n_prompt);
  const bool compress = n > capacity && capacity >= w + 1;
  // As the authors' update_kv: a layer with fewer live tokens than C returns before both steps
  // (only possible in constant mode; proportional C = int(n × ρ) <= n).
  const bool propagate = is_tsp_layer && n >= capacity && n > T && T >= w + 1;
  r.capacity = compress ? capacity : n;
  if (!compress && !propagate) {
    r.keep.assign(G, all_indices(n));
    return r;
  }
  KeyScores s = grouped_window_key_scores(cfg, q, k, n, H, G, d);
  r.scoring_flops = s.flops;
  r.keep = compress ? keep_top_then_window(s, n, w, capacity)
                    : std::vector<std::vector<int32_t>>(G, all_indices(n));
  r.dropped = compress;
  if (propagate) r.tsp = tsp_select(s, n, w, T, &r.tsp_scores);
  r.group_scores = std::move(s.scores);
  return r;
}

LayerDecision FastKVMethod::on_layer(const LayerInput& in) {
  // A local layer at the TSP point defers TSP to the next layer, until a global one.
  if (cfg_.tsp_enabled() && in.layer == tsp_at_ && in.window > 0) tsp_at_ = in.layer + 1;
  return ScorerMethod::on_layer(in);
}

double FastKVMethod::retain(int layer) const {
  const bool after_tsp = cfg_.tsp_enabled() && layer > tsp_at_;
  return after_tsp ? cfg_.retain_rate / cfg_.tsp_rate : cfg_.retain_rate;
}

int FastKVMethod::capacity(const LayerInput& in) const {
  return cfg_.layer_capacity(in.n, retain(in.layer));
}

bool FastKVMethod::propagates(const LayerInput& in) const {
  const int T = cfg_.tsp_target(in.n_prompt);
  return cfg_.tsp_enabled() && in.layer == tsp_at_ && in.n >= capacity(in) && in.n > T &&
         T >= cfg_.window + 1;
}

KeyScores FastKVMethod::score(const LayerInput& in) {
  return grouped_window_key_scores(cfg_, in.q, in.k, in.n, in.n_head, in.n_head_kv, in.head_dim);
}

void FastKVMethod::finish(const LayerInput& in, const KeyScores* s, LayerDecision& d) {
  if (s && propagates(in)) {
    d.propagate = tsp_select(*s, in.n, cfg_.window, cfg_.tsp_target(in.n_prompt), nullptr);
  }
}

void register_fastkv(MethodRegistry& reg) {
  add_method<FastKVMethod, FastKVConfig>(reg, "fastkv");
}

}  // namespace fastkv
