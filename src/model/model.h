// A Llama-family model: config, weights bound from a GGUF file, tokenizer, and the forward
// pass written as named steps (norm -> attention -> select -> gather -> MLP), each block built
// from its LayerConfig (model/config.h) with weights named by the tensor table
// (model/tensor_names.h). The KV cache (cache/) sits below: the model fills and reads it only
// through its per-head accessors.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "kernels/linear.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "cache/kv_cache.h"
#include "method/method.h"
#include "tokenizer/tokenizer.h"

namespace fastkv {

namespace detail {
struct Activations;  // a pass's buffers (model.cpp)
}

// Weights of one transformer block. Linear layers are [out, in] (GGUF ne = [in, out]) on the
// backend chosen at load; norms stay f32. Optional norms are empty when the layer has none.
struct LayerWeights {
  std::vector<float> attn_norm;  // [D]
  kernels::Linear wq;            // [H*d, D] (+ bias [H*d] when qkv_bias)
  kernels::Linear wk;            // [G*d, D] (+ bias)
  kernels::Linear wv;            // [G*d, D] (+ bias)
  std::vector<float> q_norm;     // [d] when qk_norm, else empty
  std::vector<float> k_norm;     // [d] when qk_norm, else empty
  kernels::Linear wo;            // [D, H*d]
  std::vector<float> post_attn_norm;  // [D] when post_attn_norm, else empty
  std::vector<float> ffn_norm;   // [D]
  kernels::Linear w_gate;        // [F, D]
  kernels::Linear w_up;          // [F, D]
  kernels::Linear w_down;        // [D, F]
  std::vector<float> post_ffn_norm;   // [D] when post_ffn_norm, else empty
};

// The token embedding table [V, D] as the GGUF stores it (any type with a dequantisation
// routine), read in place from the file's mapping: a lookup dequantises only the rows it
// needs, so no f32 copy of the whole table (1 GiB for a 128K × 2048 vocabulary) is held.
struct EmbeddingTable {
  const uint8_t* data = nullptr;  // row 0's bytes inside the mapping (kept alive by the File)
  gguf::TensorType type = gguf::TensorType::F32;
  uint64_t row_bytes = 0;         // bytes_for(type, D)
  int rows = 0, dim = 0;          // V, D
  // Where the table is also the (tied) LM head and that layer holds its own copy of the blocks
  // (QuantLinear's interleaved groups): rows are read from that copy, not from the mapping, so
  // the file's pages of the table (dropped at load) do not come back as tokens are looked up.
  const kernels::QuantLinear* tied = nullptr;
  // out[D] = row `token` in f32.
  void row(int32_t token, float* out) const;
};

struct Weights {
  EmbeddingTable token_embd;       // [V, D] for the embedding lookup (rows dequantised on use)
  std::vector<float> output_norm;  // [D]
  kernels::Linear lm_head;         // [V, D]: output.weight, or token_embd.weight when tied
  std::vector<LayerWeights> layers;
};

// The backend `--backend auto` picks for a file: kQuant when most bytes of the blocks' 2-D
// weights (blk.*) are in a type kernels::QuantLinear reads in place (a user's quantised GGUF
// stays quantised in memory and decodes from its blocks); otherwise kBf16 where the CPU has
// native bf16 (AMX / AVX512-BF16), else kF32.
kernels::Backend auto_backend(const gguf::File& f);

struct LoadOptions {
  // kF32: the reference path the golden tests use. kBf16: oneDNN bf16 GEMMs (fast path).
  // kQuant: Q8_0/Q4_0/Q4_1 linear weights read in place from the mapping (kernels::QuantLinear),
  // other weights, attention and the KV cache as with kBf16 (kF32 without native bf16).
  kernels::Backend backend = kernels::Backend::kF32;
};

// What a prefill did, for reports and tests.
struct PrefillStats {
  int n_prompt = 0;                    // N
  std::vector<int> live_tokens;        // [L] tokens that went through each layer
  std::vector<int64_t> kept_rows;      // [L] cache rows kept per layer (all heads together)
  int propagated = 0;                  // live tokens after the last layer
  int64_t next_position = 0;           // position of the first decoded token (N, or the
                                       // restarted pass's length for two-pass policies)
  int passes = 1;                      // 2 when a policy restarted the prefill
  double linear_flops = 0;             // 2 × multiply-adds in projections, MLP and LM head
  double attention_flops = 0;          // 2 × multiply-adds in Q·Kᵀ and P·V
  double scoring_flops = 0;            // reported by the policy
  std::vector<int32_t> final_positions;  // [propagated] original positions of the live set
  // Every point where a method shrank the live set, in order: after layer `layer` of pass
  // `pass` only `positions` went on (TSP, PyramidInfer), or (restart) the prefill started again
  // from layer 0 on `positions` alone (GemFilter: its second pass then numbers them 0..T-1).
  // Positions are the prompt's original ones, ascending.
  struct Propagation {
    int pass = 0;
    int layer = 0;
    bool restart = false;
    std::vector<int32_t> positions;
  };
  std::vector<Propagation> propagations;
  // Wall time of each step, summed over layers and passes (seconds), for `fastkv bench`:
  // where a prefill's time goes, and that selection stays a small part of it.
  struct Seconds {
    double qkv = 0;        // norm, Q/K/V projections, RoPE
    double attention = 0;  // causal attention (+ column sums for H2O)
    double select = 0;     // the policy's scoring and top-k (on_layer)
    double cache = 0;      // writing the kept rows into the KV cache
    double mlp = 0;        // o_proj, norm, MLP
    double gather = 0;     // TSP: compacting the live rows
    double lm_head = 0;    // final norm and LM head
    double total() const { return qkv + attention + select + cache + mlp + gather + lm_head; }
    // this += w · other, step by step (means over repetitions).
    void add_scaled(const Seconds& o, double w) {
      qkv += w * o.qkv;
      attention += w * o.attention;
      select += w * o.select;
      cache += w * o.cache;
      mlp += w * o.mlp;
      gather += w * o.gather;
      lm_head += w * o.lm_head;
    }
  } seconds;
};

// Reported after each layer of a prefill, for progress displays.
struct PrefillProgress {
  int pass = 0;      // 0, or 1 in the second pass of a policy that restarts the prefill
  int layers_done = 0;  // layers finished in this pass (1..n_layer)
  int n_layer = 0;   // L
  int n_prompt = 0;  // N
  int live = 0;      // tokens going on to the next layer (fewer than N after TSP)
};
using PrefillProgressFn = std::function<void(const PrefillProgress&)>;

struct PrefillOutput {
  std::vector<float> logits;  // [rows, V] for the requested rows (default: the last token)
  // [tail, D] the last `hidden_tail` live tokens' final hidden states after the output norm
  // (what the LM head reads), oldest first; empty unless asked for (TSP calibration, Eq. 3).
  std::vector<float> final_hidden;
  PrefillStats stats;
};

class Model {
 public:
  // Loads config, weights (dequantised to f32) and, when present, the tokenizer.
  // Throws fastkv::Error naming the file on any problem.
  static std::unique_ptr<Model> load(const std::string& path, const LoadOptions& opts = {});

  const ModelConfig& config() const { return config_; }
  kernels::Backend backend() const { return backend_; }
  const gguf::File& file() const { return file_; }
  // nullptr when the file has no tokenizer.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  // The tokenizer, or an Error saying the file has none.
  const Tokenizer& require_tokenizer() const;

  // Runs the prompt at positions 0..N-1 through all layers (run_pass; a second pass over the
  // chosen tokens when the policy restarts); `policy` decides what each layer's cache keeps and
  // which tokens go on. `cache` is reset and filled.
  // logit_rows: indices into the prompt (0..N-1) whose logits are wanted; only valid while all
  // tokens stay live (the full policy). Empty = the last prompt token only.
  // progress: called after every layer of every pass (may be empty).
  // hidden_tail: how many of the last live tokens' final (normed) hidden states to return in
  // PrefillOutput::final_hidden (at most the live count); 0 = none.
  PrefillOutput prefill(const std::vector<int32_t>& tokens, CompressionMethod& policy, KVCache& cache,
                        const std::vector<int>& logit_rows = {},
                        const PrefillProgressFn& progress = {}, int hidden_tail = 0) const;

  // One token at original position `pos` against the cache (which it is appended to first).
  // Returns [V] logits.
  std::vector<float> decode(int32_t token, int64_t pos, KVCache& cache) const;
  // One decode step of B independent sequences together: tokens[b] at position positions[b]
  // against caches[b] (each appended to first; B distinct caches, possibly of different sizes
  // and methods). The linear layers and the LM head run once on B rows, attention per
  // sequence. Returns [B, V] logits; row b equals decode(tokens[b], positions[b], *caches[b])
  // up to the rounding of the B-row kernels.
  std::vector<float> decode_batch(const std::vector<int32_t>& tokens,
                                  const std::vector<int64_t>& positions,
                                  const std::vector<KVCache*>& caches) const;

  // FLOPs of the linear layers for one token (2 per multiply-add), excluding the LM head.
  double linear_flops_per_token() const;
  // FLOPs of an uncompressed prefill of n tokens: projections and MLP of every token in every
  // layer but the last, causal attention (Q·Kᵀ and P·V), the LM head for the last token. The
  // denominator of a method's predicted speedup.
  double full_prefill_flops(int n) const;
  // FLOPs of a prefill whose layer i runs live[i] tokens ([L]): projections and MLP of every
  // live token, causal attention among a layer's live tokens (banded on sliding-window layers:
  // token i sees min(i+1, window) keys); in the last layer Q/K/V of every live token but the
  // attention, o_proj and MLP of the last one only (nothing else reads them); the LM head for
  // one token. A method's own scoring is not counted (under 1% for window scoring).
  // full_prefill_flops(n) is prefill_flops({n, n, ..., n}).
  double prefill_flops(const std::vector<int>& live) const;
  // Weight bytes one decode step reads: every linear layer, the LM head, the norms and one
  // embedding row.
  int64_t decode_weight_bytes() const;
  const Weights& weights() const { return w_; }
  // out[n, D] = the embedding rows of `tokens` (each checked against the vocabulary) × the
  // config's embed_scale (sqrt(D) for Gemma 3): layer 0's input.
  void embed(const int32_t* tokens, int n, float* out) const;

 private:
  Model(gguf::File file) : file_(std::move(file)) {}
  void check_token(int32_t t) const;
  void lm_head(const float* hidden_rows, int rows, float* logits) const;
  // One pass of the prefill: `tokens` at original positions `positions` (ascending) through
  // layers 0..L-1, each layer's kept rows into `cache`, stats into st. Returns the policy's
  // restart list when it asked for one (the pass stops at that layer), else nullopt; the live
  // tokens after the last layer are left in `a`. rows_fixed: logit rows were requested, so
  // tokens may not be dropped. out_rows: how many of the last live tokens the output reads
  // (logits, hidden tail); the last layer's attention, o_proj and MLP run for those only, so
  // only their hidden rows are final.
  std::optional<std::vector<int32_t>> run_pass(int pass, const std::vector<int32_t>& tokens,
                                               const std::vector<int32_t>& positions,
                                               CompressionMethod& policy, KVCache& cache,
                                               bool rows_fixed, int out_rows,
                                               detail::Activations& a, PrefillStats& st,
                                               const PrefillProgressFn& progress) const;

  gguf::File file_;
  ModelConfig config_;
  Weights w_;
  std::vector<kernels::RopeTable> rope_;  // [L] each layer's RoPE
  kernels::Backend backend_ = kernels::Backend::kF32;
  // Attention tiles and KV cache in bf16: kBf16, or kQuant on a CPU with native bf16.
  bool bf16_path_ = false;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace fastkv
