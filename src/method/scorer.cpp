#include "method/scorer.h"

#include "kernels/scoring.h"

namespace fastkv {

std::vector<std::vector<int32_t>> keep_top_then_window(const KeyScores& s, int n, int window,
                                                       int capacity) {
  const int before = n - window;
  std::vector<std::vector<int32_t>> keep(s.cache_heads);
  for (int h = 0; h < s.cache_heads; ++h) {
    std::vector<int32_t>& kh = keep[h];
    kh = kernels::topk(s.scores.data() + static_cast<int64_t>(h) * s.stride, before,
                       capacity - window);
    for (int j = before; j < n; ++j) kh.push_back(j);
  }
  return keep;
}

KeyScores grouped_window_key_scores(const BudgetConfig& cfg, const float* q, const float* k, int n,
                                    int H, int G, int d) {
  KeyScores s;
  const int w = cfg.window;
  s.cache_heads = G;
  s.stride = n - w;
  s.scores.resize(static_cast<size_t>(G) * s.stride);
  kernels::grouped_window_scores(q, k, n, H, G, d, w, cfg.kernel, cfg.pool, s.scores.data());
  s.flops = 2LL * H * w * n * d;
  return s;
}

bool ScorerMethod::drops(const LayerInput& in) const {
  const int c = capacity(in);
  return in.n > c && c >= budget_.window + 1;
}

std::vector<std::vector<int32_t>> ScorerMethod::allocate(const KeyScores& s, const LayerInput& in,
                                                         int capacity) {
  return keep_top_then_window(s, in.n, budget_.window, capacity);
}

LayerDecision ScorerMethod::on_layer(const LayerInput& in) {
  LayerDecision d;
  d.cache_heads = in.n_head_kv;  // keeping everything: the plain per-KV-head cache
  // A local (sliding-window) layer keeps its window whatever a method chooses (model.cpp,
  // docs/fastkv.md "Hybrid models"): no scores are computed for its cache.
  const bool drop = in.window == 0 && drops(in);
  if (!drop && !wants_scores(in)) {
    finish(in, nullptr, d);
    return d;
  }
  const KeyScores s = score(in);
  d.scoring_flops = s.flops;
  if (drop) {
    d.cache_heads = s.cache_heads;
    d.keep_all = false;
    d.keep = allocate(s, in, capacity(in));
  }
  finish(in, &s, d);
  return d;
}

}  // namespace fastkv
