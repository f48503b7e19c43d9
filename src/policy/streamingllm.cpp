#include "policy/streamingllm.h"

#include "policy/options.h"

namespace fastkv {

StreamingLLMConfig StreamingLLMConfig::from_options(const PolicyOptions& opts) {
  reject_unknown(opts, "streamingllm", {"retain_rate", "kv_budget"});
  StreamingLLMConfig c;
  parse_budget(opts, {}, c);
  return c;
}

std::vector<int32_t> streamingllm_select(const BudgetConfig& cfg, int n) {
  const int sinks = StreamingLLMConfig::kSinks;
  const int capacity = cfg.capacity(n);
  if (n <= capacity || capacity < sinks + 1) return all_indices(n);
  std::vector<int32_t> keep;
  keep.reserve(capacity);
  for (int j = 0; j < sinks; ++j) keep.push_back(j);
  for (int j = n - (capacity - sinks); j < n; ++j) keep.push_back(j);
  return keep;
}

LayerDecision StreamingLLMPolicy::on_layer(const LayerInput& in) {
  LayerDecision d;
  d.cache_heads = in.n_head_kv;
  std::vector<int32_t> keep = streamingllm_select(cfg_, in.n);
  if (static_cast<int>(keep.size()) == in.n) return d;
  d.keep_all = false;
  d.keep.assign(in.n_head_kv, keep);
  return d;
}

void register_streamingllm(PolicyRegistry& reg) {
  reg.add("streamingllm", [](const PolicyOptions& opts, int) -> std::unique_ptr<Policy> {
    return std::make_unique<StreamingLLMPolicy>(StreamingLLMConfig::from_options(opts));
  });
}

}  // namespace fastkv
