// Compression policies: model-agnostic classes that decide, at each layer of the prefill,
// which K/V rows go into the cache and (for token-selective methods) which tokens go on to
// the next layer. A policy sees tensors and indices, never the model.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fastkv {

// What the forward pass hands a policy after a layer's attention.
struct LayerInput {
  int layer = 0;      // i
  int n_layer = 0;    // L
  int n_prompt = 0;   // N, prompt tokens
  int n = 0;          // live tokens in this layer (N before any token selection)
  int n_head = 0;     // H
  int n_head_kv = 0;  // G
  int head_dim = 0;   // d
  const float* q = nullptr;      // [n, H, d] post-RoPE queries
  const float* k = nullptr;      // [n, G, d] post-RoPE keys (the layer's full, uncompressed K)
  const float* v = nullptr;      // [n, G, d] values
  const int32_t* pos = nullptr;  // [n] original positions, ascending
  // [H, n] attention probability each key received, summed over all queries that see it;
  // only when the policy's wants_attention_column_sums() is true (H2O), else nullptr.
  const float* attn_colsum = nullptr;
  // 0 for the first pass over the prompt; 1 for the pass a `restart` decision asked for.
  int pass = 0;
};

struct LayerDecision {
  // Number of cache heads: G (per KV head) or H (per query head, e.g. snapkv).
  int cache_heads = 0;
  // keep[h] = live-token indices whose rows cache head h keeps (any order). Empty vector of
  // vectors with keep_all = true means every live token in every head.
  bool keep_all = true;
  std::vector<std::vector<int32_t>> keep;
  // Live-token indices (ascending) that go on to the next layer after this layer's block;
  // nullopt = all of them.
  std::optional<std::vector<int32_t>> propagate;
  // GemFilter-style two-pass prefill: stop this pass after this layer's attention and run the
  // whole model again from layer 0 on only these live tokens (ascending indices), with
  // positions restarting at 0 (pass = 1). nullopt = carry on.
  std::optional<std::vector<int32_t>> restart;
  // FLOPs (2 per multiply-add) the policy spent on scoring (reported as its cost).
  int64_t scoring_flops = 0;
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string name() const = 0;
  // Called once before a prefill of n_prompt tokens through n_layer layers.
  virtual void begin(int n_prompt, int n_layer) {}
  virtual LayerDecision on_layer(const LayerInput& in) = 0;
  // H2O-style policies need the attention each key received from all queries; asked per layer
  // with its live-token count n, so a layer that will keep everything skips that extra pass.
  virtual bool wants_attention_column_sums(int layer, int n) const { return false; }
};

// Keeps everything: the uncompressed baseline.
class FullPolicy : public Policy {
 public:
  std::string name() const override { return "full"; }
  LayerDecision on_layer(const LayerInput& in) override;
};

// Method-independent options as parsed from flags or requests: name -> value text.
using PolicyOptions = std::map<std::string, std::string>;

// Registry of policies by name ("full", "fastkv", ...).
class PolicyRegistry {
 public:
  using Factory = std::function<std::unique_ptr<Policy>(const PolicyOptions&, int n_layer)>;
  static PolicyRegistry& instance();
  void add(const std::string& name, Factory f);
  // Throws fastkv::Error for an unknown name (listing the known ones) or invalid options.
  std::unique_ptr<Policy> create(const std::string& name, const PolicyOptions& opts,
                                 int n_layer) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, Factory> factories_;
};

}  // namespace fastkv
