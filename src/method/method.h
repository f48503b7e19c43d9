// Compression methods ("policies" in code: one CompressionMethod object runs one method over one prefill):
// model-agnostic classes that decide, at each layer of the prefill, which K/V rows go into the
// cache and (for token-selective methods) which tokens go on to the next layer. A policy sees
// tensors and indices, never the model.
//
// A method is registered once in MethodRegistry with its option schema (policy/options.h) and
// a factory. Score-and-keep methods derive from ScorerMethod (policy/scorer.h) and only supply
// scores. Adding a method: one file with its schema, factory and register_<name>(), plus one
// line in MethodRegistry::instance() (or a call to add() from wherever it lives, e.g. a test).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "method/options.h"

namespace fastkv {

// What the forward pass hands a policy after a layer's attention.
struct LayerInput {
  int layer = 0;                 // i
  int n_layer = 0;               // L
  int n_prompt = 0;              // N, prompt tokens
  int n = 0;                     // live tokens in this layer (N before any token selection)
  int n_head = 0;                // H
  int n_head_kv = 0;             // G
  int head_dim = 0;              // d
  const float* q = nullptr;      // [n, H, d] post-RoPE queries
  const float* k = nullptr;      // [n, G, d] post-RoPE keys (the layer's full, uncompressed K);
                                 // nullptr when the method's reads_keys() is false
  const int32_t* pos = nullptr;  // [n] original positions, ascending
  // [H, n] attention probability each key received, summed over all queries that see it;
  // only when the policy's wants_attention_column_sums() is true (H2O), else nullptr.
  const float* attn_colsum = nullptr;
  // 0 for the first pass over the prompt; 1 for the pass a `restart` decision asked for.
  int pass = 0;
  // The layer's sliding attention window in positions (Gemma 3's local layers), 0 = a global
  // layer. The model keeps a local layer's window in its cache whatever the decision says
  // (docs/fastkv.md, "Hybrid models").
  int window = 0;
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

class CompressionMethod {
 public:
  virtual ~CompressionMethod() = default;
  virtual std::string name() const = 0;
  // Called once before a prefill of n_prompt tokens through n_layer layers.
  virtual void begin(int n_prompt, int n_layer) {}
  virtual LayerDecision on_layer(const LayerInput& in) = 0;
  // H2O-style policies need the attention each key received from all queries; asked per layer
  // with its live-token count n, so a layer that will keep everything skips that extra pass.
  virtual bool wants_attention_column_sums(int layer, int n) const { return false; }
  // How many of the last query rows on_layer() reads from in.q at a layer of n live tokens
  // (rows n - r .. n - 1; r <= n). The prefill keeps only those r rows of the layer's queries
  // for the policy (model.cpp, "Activations"; the others read as zeros), so a policy must never
  // read a row before them. The default, n, is always safe: every row is kept (at 16K tokens of
  // a 1B Llama that is 128 MiB more).
  virtual int queries_read(int layer, int n) const { return n; }
  // Whether on_layer() reads in.k. When it does not, the bf16 path holds the f32 keys of one
  // block of tokens only (the attention and the cache take theirs from its bf16 copy) and
  // in.k is nullptr: at 16K tokens of a 1B Llama that is 32 MiB less. The default, true, is
  // always safe.
  virtual bool reads_keys() const { return true; }
};

// Keeps everything: the uncompressed baseline.
class FullMethod : public CompressionMethod {
 public:
  std::string name() const override { return "full"; }
  LayerDecision on_layer(const LayerInput& in) override;
  int queries_read(int, int) const override { return 0; }
  bool reads_keys() const override { return false; }
};

// Registry of methods by name ("full", "fastkv", ...), each with its option schema.
//
// Two ways to create a policy (see policy/options.h):
//   create(name, MethodOptions, L)   text values, as the command line and `--methods` give
//                                    them; an OptionError is worded with flag names
//                                    ("--retain-rate must be in (0, 1], got 2"), as the CLI and
//                                    `--methods` show it;
//   create_typed(name, OptionValues, L)  typed values (the server's JSON); an OptionError names
//                                    the option's key ("retain_rate must be ...").
// Both throw fastkv::Error for an unknown method name (listing the known ones).
class MethodRegistry {
 public:
  using Factory = std::function<std::unique_ptr<CompressionMethod>(const OptionSet&, int n_layer)>;
  struct MethodInfo {
    std::string name;
    OptionSchema options;  // every option the method takes
    Factory make;          // gets only options checked against `options`
  };
  static MethodRegistry& instance();
  // Adds (or replaces) a method.
  void add(MethodInfo m);
  std::unique_ptr<CompressionMethod> create(const std::string& name, const MethodOptions& opts,
                                 int n_layer) const;
  std::unique_ptr<CompressionMethod> create_typed(const std::string& name, const OptionValues& values,
                                       int n_layer) const;
  // The method's entry; throws fastkv::Error for an unknown name.
  const MethodInfo& method(const std::string& name) const;
  bool has(const std::string& name) const { return methods_.count(name) != 0; }
  std::vector<std::string> names() const;
  // Every option key of every method, in registration order, each with the methods that take
  // it (what the command line turns into flags).
  struct SharedOption {
    OptionSpec spec;                   // the first method's declaration
    std::vector<std::string> methods;  // the methods that take it
  };
  std::vector<SharedOption> all_options() const;

 private:
  std::map<std::string, MethodInfo> methods_;
  std::vector<std::string> order_;  // registration order
};

// The text path of a method's config: Config::from_set on the text options checked against
// Config::schema(), errors worded with flag names. `more` (n_layer) goes on to from_set.
template <typename Config, typename... More>
Config config_from_text(const std::string& method, const MethodOptions& text, More... more) {
  return with_flag_names(
      [&] { return Config::from_set(check_options(method, Config::schema(), text), more...); });
}

// Registers method `name` as a P built from its Config (Config::schema(), Config::from_set(opts)
// or Config::from_set(opts, n_layer)).
template <typename P, typename Config>
void add_method(MethodRegistry& reg, const std::string& name) {
  reg.add(
      {name, Config::schema(), [](const OptionSet& opts, int n_layer) -> std::unique_ptr<CompressionMethod> {
         if constexpr (std::is_invocable_v<decltype(&Config::from_set), const OptionSet&, int>) {
           return std::make_unique<P>(Config::from_set(opts, n_layer));
         } else {
           return std::make_unique<P>(Config::from_set(opts));
         }
       }});
}

}  // namespace fastkv
