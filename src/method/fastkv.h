// FastKV (arXiv 2502.01068): token-selective propagation (TSP) and GQA-aware KV compression.
//
// At layer i with n live tokens:
//   scores[G, n-w] = sum over the g query heads of a KV head of pool(window_scores)
//   cache keeps per KV head: top (C - w) keys by score + the w window keys,
//     C = int(n × ρ_i) (ρ_i = retain_rate up to the TSP layer, retain_rate / tsp_rate after) or
//     C = kv_budget (constant mode); nothing is dropped when n <= C or C < w + 1.
//   at the TSP layer, after the whole block: T = int(N × tsp_rate) (or tsp_len); the live set
//     becomes the top (T - w) tokens by the sum of all KV heads' scores + the last w, sorted;
//     nothing is propagated when n <= T, T < w + 1, or n < C (as the authors' update_kv, which
//     returns before both steps when q_len < max_capacity_prompt: only in constant mode, where
//     C = kv_budget may exceed n; proportional C = int(n × ρ_i) <= n always).
//   Ties: kernels::topk ranks equal scores by index, lowest first, so among equal scores the
//     earliest token is kept (in the cache and in TSP).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/scoring.h"
#include "method/budget.h"
#include "method/method.h"
#include "method/scorer.h"

namespace fastkv {

// retain_rate, kv_budget, window, kernel and pool are the shared budget fields (BudgetConfig).
struct FastKVConfig : BudgetConfig {
  double tsp_rate = 0.2;  // fraction of the prompt propagated after the TSP layer, (0, 1]
  int tsp_layer = -2;     // layer index; -1 = TSP off; -2 = default floor(L/2) - 1
  int tsp_len = 0;        // > 0: T fixed

  // tsp_layer ("none" or an index), tsp_rate, retain_rate, kv_budget, window, kernel, pool
  // (max|avg), tsp_len.
  static OptionSchema schema();
  static FastKVConfig from_set(const OptionSet& opts, int n_layer);
  // Checks text options against schema() (errors worded with flag names).
  static FastKVConfig from_options(const MethodOptions& opts, int n_layer);
  // Resolves the default TSP layer and checks every field against the model's depth; throws
  // OptionError naming the option.
  void validate(int n_layer);
  void validate(int n_layer, const OptionSet& where);
  bool tsp_enabled() const { return tsp_layer >= 0; }
  // C for n live tokens at retention ρ_i = `retain`; T for a prompt of n_prompt tokens.
  int layer_capacity(int n, double retain) const;
  int tsp_target(int n_prompt) const;
};

// What one layer's scoring produced (exposed for the selection golden tests).
struct FastKVLayerResult {
  int n = 0;
  int capacity = 0;                          // C for this layer (n when nothing is dropped)
  std::vector<float> group_scores;           // [G, n - w] pooled, summed over each group
  std::vector<std::vector<int32_t>> keep;    // [G] kept live-token indices (top-k, then window)
  bool dropped = false;                      // false: every token kept, no scores computed
  std::vector<float> tsp_scores;             // [n - w] sum over KV heads (TSP layer only)
  std::optional<std::vector<int32_t>> tsp;   // sorted propagated indices (TSP layer, n > T)
  int64_t scoring_flops = 0;
};

// The TSP step on scores [heads, n - w]: the top (T - w) of the sum over heads, plus the last
// w, ascending. `summed` (optional) receives that sum [n - w].
std::vector<int32_t> tsp_select(const KeyScores& s, int n, int window, int T,
                                std::vector<float>* summed);

// The selection step alone, on one layer's post-RoPE q [n, H, d] and k [n, G, d].
// `retain` is ρ_i (ignored in constant mode); `is_tsp_layer` asks for the propagated set of a
// prompt of n_prompt tokens.
FastKVLayerResult fastkv_select(const FastKVConfig& cfg, const float* q, const float* k, int n,
                                int H, int G, int d, double retain, bool is_tsp_layer,
                                int n_prompt);

// The score-and-keep step with C = int(n × ρ_i), plus TSP at the TSP layer.
class FastKVMethod : public ScorerMethod {
 public:
  explicit FastKVMethod(FastKVConfig cfg) : ScorerMethod("fastkv", cfg), cfg_(cfg) {}
  void begin(int n_prompt, int n_layer) override {
    n_prompt_ = n_prompt;
    tsp_at_ = cfg_.tsp_layer;
  }
  // On a hybrid model TSP runs after the first global layer at or after tsp_layer: a local
  // layer's window scores rank keys its own attention never sees (docs/fastkv.md).
  LayerDecision on_layer(const LayerInput& in) override;
  // The layer TSP ran or will run after in the current prefill (tsp_layer until a local
  // layer defers it).
  int tsp_layer_used() const { return tsp_at_; }
  const FastKVConfig& config() const { return cfg_; }

 protected:
  int capacity(const LayerInput& in) const override;
  KeyScores score(const LayerInput& in) override;
  bool wants_scores(const LayerInput& in) const override { return propagates(in); }
  void finish(const LayerInput& in, const KeyScores* s, LayerDecision& d) override;

 private:
  double retain(int layer) const;           // ρ_i
  bool propagates(const LayerInput& in) const;  // the TSP layer, with n >= C, n > T >= w + 1
  FastKVConfig cfg_;
  int n_prompt_ = 0;
  int tsp_at_ = cfg_.tsp_layer;  // the effective TSP layer of this prefill (see on_layer)
};

void register_fastkv(MethodRegistry& reg);

}  // namespace fastkv
