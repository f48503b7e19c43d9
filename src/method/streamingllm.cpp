#include "method/streamingllm.h"

namespace fastkv {

OptionSchema StreamingLLMConfig::schema() {
  return budget_schema({}, StreamingLLMConfig{});
}

StreamingLLMConfig StreamingLLMConfig::from_set(const OptionSet& opts) {
  return read_budget_as<StreamingLLMConfig>(opts);
}

StreamingLLMConfig StreamingLLMConfig::from_options(const MethodOptions& opts) {
  return config_from_text<StreamingLLMConfig>("streamingllm", opts);
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

LayerDecision StreamingLLMMethod::on_layer(const LayerInput& in) {
  LayerDecision d;
  d.cache_heads = in.n_head_kv;
  std::vector<int32_t> keep = streamingllm_select(cfg_, in.n);
  if (static_cast<int>(keep.size()) == in.n) return d;
  d.keep_all = false;
  d.keep.assign(in.n_head_kv, keep);
  return d;
}

void register_streamingllm(MethodRegistry& reg) {
  add_method<StreamingLLMMethod, StreamingLLMConfig>(reg, "streamingllm");
}

}  // namespace fastkv
