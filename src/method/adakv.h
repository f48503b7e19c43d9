// Ada-KV: adaptive budget allocation across KV heads, on FastKV's GQA-aware window scores.
//
// At every layer with n live tokens, C = int(n × retain_rate) or kv_budget, w = window:
//   scores[G, n-w] = sum over the g query heads of a KV head of pool(window_scores)
//   the layer's budget B = C × G rows is shared by the G KV heads:
//     1. safeguard: each head keeps its own top s = min(int(floor_alpha × C), C - w) keys;
//     2. the remaining G × (C - w - s) rows go to the highest of all heads' other scores
//        (one layer-wide top-k; equal scores: lower head, then lower index first);
//     3. each head keeps its w window keys.
//   Heads hold different numbers of rows (between s + w and n); the layer holds exactly B.
//   Nothing is dropped when n <= C or C < w + 1.
#pragma once

#include <string>
#include <vector>

#include "method/budget.h"
#include "method/method.h"
#include "method/scorer.h"

namespace fastkv {

struct AdaKVConfig : BudgetConfig {
  double floor_alpha = 0.2;  // safeguard fraction of C per head, [0, 1]

  // retain_rate, kv_budget, window, kernel, pool, floor_alpha.
  static OptionSchema schema();
  static AdaKVConfig from_set(const OptionSet& opts);
  // Checks text options against schema() (errors worded with flag names).
  static AdaKVConfig from_options(const MethodOptions& opts);
  // s for a capacity C.
  int safeguard(int capacity) const;
};

struct AdaKVLayerResult {
  int capacity = 0;  // C (n when nothing is dropped)
  bool dropped = false;
  std::vector<float> group_scores;         // [G, n - w]
  std::vector<std::vector<int32_t>> keep;  // [G] kept indices (safeguard, global, window)
  int64_t scoring_flops = 0;
};

// Steps 1-3 on any scores [heads, stride] (the first n - w of a row ranked): AdaKV's allocation
// wraps whichever scorer produced `s`. Returns [heads] kept indices.
std::vector<std::vector<int32_t>> adakv_allocate(const KeyScores& s, int n, int window,
                                                 int capacity, int safeguard);

AdaKVLayerResult adakv_select(const AdaKVConfig& cfg, const float* q, const float* k, int n, int H,
                              int G, int d);

class AdaKVMethod : public ScorerMethod {
 public:
  explicit AdaKVMethod(AdaKVConfig cfg) : ScorerMethod("adakv", cfg), cfg_(cfg) {}
  const AdaKVConfig& config() const { return cfg_; }

 protected:
  KeyScores score(const LayerInput& in) override {
    return grouped_window_key_scores(cfg_, in.q, in.k, in.n, in.n_head, in.n_head_kv,
                                     in.head_dim);
  }
  std::vector<std::vector<int32_t>> allocate(const KeyScores& s, const LayerInput& in,
                                             int capacity) override;

 private:
  AdaKVConfig cfg_;
};

void register_adakv(MethodRegistry& reg);

}  // namespace fastkv
