#include "method/adakv.h"

#include <algorithm>
#include <limits>

#include "kernels/scoring.h"

namespace fastkv {

OptionSchema AdaKVConfig::schema() {
  const AdaKVConfig d;
  OptionSchema s = budget_schema({.window = true, .kernel = true, .pool = true}, d);
  s.push_back(OptionSpec::number("floor_alpha", 0, 1, false, false, cat(d.floor_alpha),
                                 "fraction of each head's budget it keeps for itself"));
  return s;
}

AdaKVConfig AdaKVConfig::from_set(const OptionSet& opts) {
  AdaKVConfig c;
  read_budget(opts, c);
  c.floor_alpha = opts.number("floor_alpha", c.floor_alpha);
  return c;
}

AdaKVConfig AdaKVConfig::from_options(const MethodOptions& opts) {
  return config_from_text<AdaKVConfig>("adakv", opts);
}

int AdaKVConfig::safeguard(int capacity) const {
  return std::min(static_cast<int>(floor_alpha * capacity), capacity - window);
}

std::vector<std::vector<int32_t>> adakv_allocate(const KeyScores& s, int n, int window,
                                                 int capacity, int safeguard) {
  const int heads = s.cache_heads;
  const int before = n - window;
  std::vector<std::vector<int32_t>> keep(heads);
  // 1. safeguard: each head's own top s.
  std::vector<float> rest(static_cast<size_t>(heads) * before);  // [heads, before], taken = -inf
  for (int h = 0; h < heads; ++h) {
    const float* row = s.scores.data() + static_cast<int64_t>(h) * s.stride;
    std::copy(row, row + before, rest.begin() + static_cast<int64_t>(h) * before);
    keep[h] = kernels::topk(row, before, safeguard);
    for (int32_t j : keep[h]) {
      rest[static_cast<int64_t>(h) * before + j] = -std::numeric_limits<float>::infinity();
    }
  }
  // 2. the rest of the budget: a layer-wide top-k over every head's remaining scores.
  const int64_t global = static_cast<int64_t>(heads) * (capacity - window - safeguard);
  for (int32_t flat :
       kernels::topk(rest.data(), static_cast<int>(rest.size()), static_cast<int>(global))) {
    keep[flat / before].push_back(flat % before);
  }
  // 3. the window.
  for (auto& kh : keep) {
    for (int j = before; j < n; ++j) kh.push_back(j);
  }
  return keep;
}

AdaKVLayerResult adakv_select(const AdaKVConfig& cfg, const float* q, const float* k, int n, int H,
                              int G, int d) {
  AdaKVLayerResult r;
  if (!start_selection(cfg, n, G, r)) return r;
  const int capacity = r.capacity;
  KeyScores s = grouped_window_key_scores(cfg, q, k, n, H, G, d);
  r.keep = adakv_allocate(s, n, cfg.window, capacity, cfg.safeguard(capacity));
  r.scoring_flops = s.flops;
  r.group_scores = std::move(s.scores);
  return r;
}

std::vector<std::vector<int32_t>> AdaKVMethod::allocate(const KeyScores& s, const LayerInput& in,
                                                        int capacity) {
  return adakv_allocate(s, in.n, cfg_.window, capacity, cfg_.safeguard(capacity));
}

void register_adakv(MethodRegistry& reg) {
  add_method<AdaKVMethod, AdaKVConfig>(reg, "adakv");
}

}  // namespace fastkv
