// FastKV (arXiv 2502.01068): token-selective propagation (TSP) and GQA-aware KV compression.
//
// At layer i with n live tokens:
//   scores[G, n-w] = sum over the g query heads of a KV head of pool(window_scores)
//   cache keeps per KV head: top (C - w) keys by score + the w window keys,
//     C = int(n × ρ_i) (ρ_i = retain_rate up to the TSP layer, retain_rate / tsp_rate after) or
//     C = kv_budget (constant mode); nothing is dropped when n <= C or C < w + 1.
//   at the TSP layer, after the whole block: T = int(N × tsp_rate) (or tsp_len); the live set
//     becomes the top (T - w) tokens by the sum of all KV heads' scores + the last w, sorted.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/scoring.h"
#include "policy/policy.h"

namespace fastkv {

struct FastKVConfig {
  double tsp_rate = 0.2;       // fraction of the prompt propagated after the TSP layer, (0, 1]
  double retain_rate = 0.1;    // fraction of the prompt kept in every layer's cache, (0, 1]
  int tsp_layer = -2;          // layer index; -1 = TSP off; -2 = default floor(L/2) - 1
  int kv_budget = 0;           // > 0: constant mode, C fixed
  int tsp_len = 0;             // > 0: T fixed
  int window = 8;              // w >= 1
  int kernel = 7;              // odd >= 1
  kernels::PoolType pool = kernels::PoolType::kMax;

  // Parses "tsp_layer" ("none" or an index), "tsp_rate", "retain_rate", "kv_budget",
  // "tsp_len", "window", "kernel", "pool" (max|avg); rejects unknown keys. Throws
  // fastkv::Error naming the flag on bad values.
  static FastKVConfig from_options(const PolicyOptions& opts, int n_layer);
  // Resolves the default TSP layer and checks every field against the model's depth.
  void validate(int n_layer);
  bool tsp_enabled() const { return tsp_layer >= 0; }
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

// The selection step alone, on one layer's post-RoPE q [n, H, d] and k [n, G, d].
// `retain` is ρ_i (ignored in constant mode); `is_tsp_layer` asks for the propagated set of a
// prompt of n_prompt tokens.
FastKVLayerResult fastkv_select(const FastKVConfig& cfg, const float* q, const float* k, int n,
                                int H, int G, int d, double retain, bool is_tsp_layer,
                                int n_prompt);

class FastKVPolicy : public Policy {
 public:
  explicit FastKVPolicy(FastKVConfig cfg) : cfg_(cfg) {}
  std::string name() const override { return "fastkv"; }
  void begin(int n_prompt, int n_layer) override { n_prompt_ = n_prompt; }
  LayerDecision on_layer(const LayerInput& in) override;
  const FastKVConfig& config() const { return cfg_; }

 private:
  FastKVConfig cfg_;
  int n_prompt_ = 0;
};

void register_fastkv(PolicyRegistry& reg);

}  // namespace fastkv
