// GemFilter: a two-pass prefill. Pass 0 runs layers 0..filter_layer over the whole prompt; at
// the filter layer every token j is scored by the raw dot product of the LAST query with its
// key, summed over all query heads (no 1/sqrt(d) scale, no softmax), average-pooled with
// `kernel` (default 5; zero padding counted); the top T = int(N × retain_rate) (or kv_budget)
// tokens, sorted by position, are returned as LayerDecision.restart. The model then runs the
// whole model again on only those T tokens at positions 0..T-1 (pass 1), where every layer
// caches all of them; decoding continues at position T + t.
//
// filter_layer default: round(13 × L / 32) (the paper's layer 13 of 32), clamped to L - 1.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "method/budget.h"
#include "method/method.h"

namespace fastkv {

struct GemFilterConfig : BudgetConfig {
  int filter_layer = -1;  // layer index; -1 = default round(13 × L / 32)

  GemFilterConfig() {
    kernel = 5;
    pool = kernels::PoolType::kAvg;
  }
  // retain_rate, kv_budget, kernel, filter_layer.
  static OptionSchema schema();
  static GemFilterConfig from_set(const OptionSet& opts, int n_layer);
  // Checks text options against schema() (errors worded with flag names).
  static GemFilterConfig from_options(const MethodOptions& opts, int n_layer);
  static int default_filter_layer(int n_layer);
};

struct GemFilterResult {
  std::vector<float> scores;      // [n] pooled filter scores
  std::vector<int32_t> selected;  // ascending live-token indices, T of them
  int64_t scoring_flops = 0;
};

// The filter step alone on the filter layer's post-RoPE q [n, H, d] and k [n, G, d].
GemFilterResult gemfilter_select(const BudgetConfig& cfg, const float* q, const float* k, int n,
                                 int H, int G, int d);

class GemFilterMethod : public CompressionMethod {
 public:
  explicit GemFilterMethod(GemFilterConfig cfg) : cfg_(cfg) {}
  std::string name() const override { return "gemfilter"; }
  void begin(int n_prompt, int n_layer) override { filter_at_ = cfg_.filter_layer; }
  // On a hybrid model the filter runs at the first global layer at or after filter_layer: a
  // local layer's last query never sees most of the prompt (docs/fastkv.md, "Hybrid models").
  LayerDecision on_layer(const LayerInput& in) override;
  // The filter scores with the last query alone (last_query_dot_scores).
  int queries_read(int, int n) const override { return std::min(n, 1); }
  const GemFilterConfig& config() const { return cfg_; }

 private:
  GemFilterConfig cfg_;
  int filter_at_ = cfg_.filter_layer;  // the effective filter layer of this prefill
};

void register_gemfilter(MethodRegistry& reg);

}  // namespace fastkv
