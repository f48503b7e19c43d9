// PyramidInfer: the live token set shrinks layer by layer, and every layer caches all the
// tokens that reached it.
//
// At layer i of L with n live tokens (every layer but the last, which has no successor):
//   ρ_i = (1 - p)(cos(π i / L) + 1) / 2 + p                       (p = decay)
//   K   = int(n × ρ_i) tokens go on to layer i + 1;
//   R   = int(n × recent_ratio) most recent live queries score the keys:
//         score[j] = (1/H) Σ_h Σ_r w_r A[h, r, j] / Σ_r w_r,
//         A[h, r, j] = causal softmax of recent query r of head h over the live keys,
//         w_r linear from 1 (oldest recent query) to 1.2 (newest);
//   the first kSinks live tokens and the last live token (whose hidden state gives the
//   next-token logits) are always kept; the other K - kSinks - 1 are the top scores;
//   nothing is dropped when K >= n, K < kMinKeep or R < 1.
// LayerDecision.propagate is the kept set (ascending); the cache keeps every live token.
#pragma once

#include <string>
#include <vector>

#include "method/method.h"

namespace fastkv {

struct PyramidInferConfig {
  static constexpr int kSinks = 4;
  static constexpr int kMinKeep = 8;
  double recent_ratio = 0.2;  // (0, 1]
  double decay = 0.7;         // p in (0, 1]; 1 keeps everything

  // recent_ratio, decay.
  static OptionSchema schema();
  static PyramidInferConfig from_set(const OptionSet& opts);
  // Checks text options against schema() (errors worded with flag names).
  static PyramidInferConfig from_options(const MethodOptions& opts);
  // ρ_i of layer i of L.
  double rho(int layer, int n_layer) const;
};

struct PyramidInferResult {
  int recent = 0;  // R
  int target = 0;  // K (n when nothing is dropped)
  bool dropped = false;
  std::vector<float> scores;  // [n] weighted mean recent attention (when dropped)
  std::vector<int32_t> keep;  // ascending live-token indices going on
  int64_t scoring_flops = 0;
};

// The selection at one layer (layer index i of L) on post-RoPE q [n, H, d], k [n, G, d].
PyramidInferResult pyramidinfer_select(const PyramidInferConfig& cfg, const float* q,
                                       const float* k, int n, int H, int G, int d, int layer,
                                       int n_layer);

class PyramidInferMethod : public CompressionMethod {
 public:
  explicit PyramidInferMethod(PyramidInferConfig cfg) : cfg_(cfg) {}
  std::string name() const override { return "pyramidinfer"; }
  LayerDecision on_layer(const LayerInput& in) override;
  // The R = int(n × recent_ratio) recent queries score the keys (recent_query_scores).
  int queries_read(int, int n) const override;

 private:
  PyramidInferConfig cfg_;
};

void register_pyramidinfer(MethodRegistry& reg);

}  // namespace fastkv
