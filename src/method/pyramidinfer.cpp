#include "method/pyramidinfer.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "common/error.h"
#include "kernels/scoring.h"
#include "method/budget.h"

namespace fastkv {

OptionSchema PyramidInferConfig::schema() {
  const PyramidInferConfig d;
  return {OptionSpec::number("recent_ratio", 0, 1, true, false, cat(d.recent_ratio),
                             "PyramidInfer: fraction of the most recent queries that score keys"),
          OptionSpec::number("decay", 0, 1, true, false, cat(d.decay),
                             "PyramidInfer: retention decay p (1 keeps everything)")};
}

PyramidInferConfig PyramidInferConfig::from_set(const OptionSet& opts) {
  PyramidInferConfig c;
  c.recent_ratio = opts.number("recent_ratio", c.recent_ratio);
  c.decay = opts.number("decay", c.decay);
  return c;
}

PyramidInferConfig PyramidInferConfig::from_options(const MethodOptions& opts) {
  return config_from_text<PyramidInferConfig>("pyramidinfer", opts);
}

double PyramidInferConfig::rho(int layer, int n_layer) const {
  const double c = std::cos(std::numbers::pi * layer / n_layer);
  return (1.0 - decay) * (c + 1.0) / 2.0 + decay;
}

int PyramidInferMethod::queries_read(int, int n) const {
  return std::min(n, static_cast<int>(n * cfg_.recent_ratio));
}

PyramidInferResult pyramidinfer_select(const PyramidInferConfig& cfg, const float* q,
                                       const float* k, int n, int H, int G, int d, int layer,
                                       int n_layer) {
  PyramidInferResult r;
  r.recent = static_cast<int>(n * cfg.recent_ratio);
  const int target = static_cast<int>(n * cfg.rho(layer, n_layer));
  r.dropped = target < n && target >= PyramidInferConfig::kMinKeep && r.recent >= 1;
  r.target = r.dropped ? target : n;
  if (!r.dropped) {
    r.keep = all_indices(n);
    return r;
  }
  const int R = r.recent;
  std::vector<float> weights(R, 1.0f);
  for (int t = 0; t < R; ++t) {
    weights[t] = R > 1 ? 1.0f + 0.2f * static_cast<float>(t) / static_cast<float>(R - 1) : 1.0f;
  }
  float wsum = 0;
  for (float x : weights) wsum += x;
  std::vector<float> per_head(static_cast<size_t>(H) * n);
  kernels::recent_query_scores(q, k, n, H, G, d, R, weights.data(), per_head.data());
  r.scoring_flops = 2LL * H * R * n * d;
  r.scores.assign(n, 0.0f);
  for (int h = 0; h < H; ++h) {
    const float* ph = per_head.data() + static_cast<int64_t>(h) * n;
    for (int j = 0; j < n; ++j) r.scores[j] += ph[j];
  }
  const float norm = 1.0f / (wsum * static_cast<float>(H));
  for (float& s : r.scores) s *= norm;

  // Forced tokens (sinks and the last token) first, then the best of the others.
  const int sinks = PyramidInferConfig::kSinks;
  std::vector<float> ranked(r.scores);
  for (int j = 0; j < sinks; ++j) ranked[j] = -1.0f;  // scores are >= 0
  ranked[n - 1] = -1.0f;
  std::vector<int32_t> keep = kernels::topk(ranked.data(), n, target - sinks - 1);
  for (int j = 0; j < sinks; ++j) keep.push_back(j);
  keep.push_back(n - 1);
  std::sort(keep.begin(), keep.end());
  r.keep = std::move(keep);
  return r;
}

LayerDecision PyramidInferMethod::on_layer(const LayerInput& in) {
  LayerDecision d;
  d.cache_heads = in.n_head_kv;              // the cache holds every token that reached this layer
  if (in.layer + 1 >= in.n_layer) return d;  // no later layer to propagate to
  PyramidInferResult r = pyramidinfer_select(cfg_, in.q, in.k, in.n, in.n_head, in.n_head_kv,
                                             in.head_dim, in.layer, in.n_layer);
  d.scoring_flops = r.scoring_flops;
  if (r.dropped) d.propagate = std::move(r.keep);
  return d;
}

void register_pyramidinfer(MethodRegistry& reg) {
  add_method<PyramidInferMethod, PyramidInferConfig>(reg, "pyramidinfer");
}

}  // namespace fastkv
