// H2O (heavy-hitter oracle): each key's score is the attention probability it received,
// accumulated over ALL queries of the prompt with the causal mask (the model computes it in
// the tiled attention: LayerInput.attn_colsum [H, n], per query head).
//
// GQA-aware: a KV head's score is the sum over its g query heads,
//   scores[G, n] = sum_{h in group} attn_colsum[h, :],
// and each KV head keeps its top (C - w) keys before the window by that score plus the last w
// keys (the recent window), C = int(n × retain_rate) or kv_budget; nothing is dropped when
// n <= C or C < w + 1.
#pragma once

#include <string>
#include <vector>

#include "method/budget.h"
#include "method/method.h"
#include "method/scorer.h"

namespace fastkv {

struct H2OConfig : BudgetConfig {
  // retain_rate, kv_budget, window.
  static OptionSchema schema();
  static H2OConfig from_set(const OptionSet& opts);
  // Checks text options against schema() (errors worded with flag names).
  static H2OConfig from_options(const MethodOptions& opts);
};

struct H2OLayerResult {
  int capacity = 0;  // C (n when nothing is dropped)
  bool dropped = false;
  std::vector<float> group_scores;         // [G, n] colsum summed over each group
  std::vector<std::vector<int32_t>> keep;  // [G] kept indices (top-k, then window)
};

// The scores [G, n] (stride n; the keys before the window are ranked) from colsum [H, n].
KeyScores h2o_scores(const float* colsum, int n, int H, int G);

// The selection from one layer's column sums colsum [H, n].
H2OLayerResult h2o_select(const BudgetConfig& cfg, const float* colsum, int n, int H, int G);

class H2OMethod : public ScorerMethod {
 public:
  explicit H2OMethod(H2OConfig cfg) : ScorerMethod("h2o", cfg), cfg_(cfg) {}
  // Only where the layer will drop rows (n > C >= w + 1).
  bool wants_attention_column_sums(int layer, int n) const override;

 protected:
  KeyScores score(const LayerInput& in) override;

 private:
  H2OConfig cfg_;
};

void register_h2o(MethodRegistry& reg);

}  // namespace fastkv
