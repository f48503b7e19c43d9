// StreamingLLM: the first kSinks "attention sink" tokens plus the most recent C - kSinks
// tokens, the same set in every KV head, C = int(n × retain_rate) or kv_budget. No scoring.
// Nothing is dropped when n <= C or C < kSinks + 1.
#pragma once

#include <string>
#include <vector>

#include "method/budget.h"
#include "method/method.h"

namespace fastkv {

struct StreamingLLMConfig : BudgetConfig {
  static constexpr int kSinks = 4;
  // retain_rate, kv_budget.
  static OptionSchema schema();
  static StreamingLLMConfig from_set(const OptionSet& opts);
  // Checks text options against schema() (errors worded with flag names).
  static StreamingLLMConfig from_options(const MethodOptions& opts);
};

// The kept live-token indices (ascending) for n live tokens; all of them when nothing drops.
std::vector<int32_t> streamingllm_select(const BudgetConfig& cfg, int n);

class StreamingLLMMethod : public CompressionMethod {
 public:
  explicit StreamingLLMMethod(StreamingLLMConfig cfg) : cfg_(cfg) {}
  std::string name() const override { return "streamingllm"; }
  LayerDecision on_layer(const LayerInput& in) override;
  int queries_read(int, int) const override { return 0; }  // positions only
  bool reads_keys() const override { return false; }

 private:
  StreamingLLMConfig cfg_;
};

void register_streamingllm(MethodRegistry& reg);

}  // namespace fastkv
