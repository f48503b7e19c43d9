// SnapKV, as the FastKV authors' baseline runs it: FastKV's window score and pooling, but
// selected and cached per QUERY head (the reference repeats K/V to H heads before selecting).
//
// At every layer with n live tokens (all layers see all N tokens: no propagation):
//   scores[H, n-w] = pool(window_scores)      (one row per query head, no group sum)
//   cache head h (h < H, serving query head h, holding rows of KV head h / g) keeps the top
//     (C - w) keys of row h + the w window keys, C = int(n × retain_rate) or kv_budget;
//   nothing is dropped when n <= C or C < w + 1 (then the cache is the plain G KV heads).
// The cache therefore holds H × C rows, g = H / G times what a GQA-aware method (fastkv with
// --tsp-layer none) holds at the same rate.
#pragma once

#include <string>
#include <vector>

#include "method/budget.h"
#include "method/method.h"
#include "method/scorer.h"

namespace fastkv {

struct SnapKVConfig : BudgetConfig {
  // retain_rate, kv_budget, window, kernel, pool.
  static OptionSchema schema();
  static SnapKVConfig from_set(const OptionSet& opts);
  // Checks text options against schema() (errors worded with flag names).
  static SnapKVConfig from_options(const MethodOptions& opts);
};

struct SnapKVLayerResult {
  int n = 0;
  int capacity = 0;                        // C (n when nothing is dropped)
  bool dropped = false;                    // false: every token kept, no scores computed
  std::vector<float> head_scores;          // [H, n - w] pooled window scores per query head
  std::vector<std::vector<int32_t>> keep;  // [H] kept live-token indices (top-k, then window)
  int64_t scoring_flops = 0;
};

// The scores [H, n - w]: pooled window scores per query head.
KeyScores snapkv_scores(const BudgetConfig& cfg, const float* q, const float* k, int n, int H,
                        int G, int d);

// The selection step alone on one layer's post-RoPE q [n, H, d] and k [n, G, d].
SnapKVLayerResult snapkv_select(const BudgetConfig& cfg, const float* q, const float* k, int n,
                                int H, int G, int d);

// Cache head h (of H) serves query head h with rows of KV head h / g when the layer drops rows;
// a layer that keeps everything has the plain G KV heads, without g-fold copies.
class SnapKVMethod : public ScorerMethod {
 public:
  explicit SnapKVMethod(SnapKVConfig cfg) : ScorerMethod("snapkv", cfg), cfg_(cfg) {}
  const SnapKVConfig& config() const { return cfg_; }

 protected:
  KeyScores score(const LayerInput& in) override {
    return snapkv_scores(cfg_, in.q, in.k, in.n, in.n_head, in.n_head_kv, in.head_dim);
  }

 private:
  SnapKVConfig cfg_;
};

void register_snapkv(MethodRegistry& reg);

}  // namespace fastkv
