// ModelConfig: the hyper-parameters of a Llama-family model, read from GGUF metadata through
// the architecture table (llama, mistral-as-llama, qwen2, qwen3, gemma3), and one LayerConfig
// per layer: what the block of that layer does (heads, RoPE, attention window, optional norms,
// activation). Llama, Qwen2 and Qwen3 fill every layer the same; Gemma 3 fills its local
// (sliding-window) and global layers differently (docs/models.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fastkv::gguf {
class File;
}

namespace fastkv {

enum class RopeStyle {
  kAdjacent,  // rotate pairs (2i, 2i+1): GGUF `llama` (converters permute Q/K rows for it)
  kNeox,      // rotate pairs (i, i + rope_dim/2): GGUF `qwen2`
};

// The MLP's activation: out = down(act(gate(x), up(x))).
enum class Activation {
  kSwiGLU,  // silu(gate) * up, silu(x) = x / (1 + e^-x): Llama, Qwen2, Qwen3
  kGeGLU,   // gelu(gate) * up with the tanh approximation of GELU:
            //   gelu(x) = x/2 · (1 + tanh(sqrt(2/π) · (x + 0.044715 x³))): Gemma 3
};

// What one transformer block does. The model builds the block from these flags (model.cpp:
// norm -> qkv (+bias, +qk-norm) -> rope -> attention(window) -> select -> cache -> o_proj
// (+post-norm) -> residual -> norm -> MLP (+post-norm) -> residual -> gather).
struct LayerConfig {
  int n_head = 0;              // H query heads
  int n_head_kv = 0;           // G KV heads (H % G == 0)
  int head_dim = 0;            // d
  int d_ff = 0;                // F, MLP inner size
  int window = 0;              // sliding attention window in positions; 0 = none (full causal)
  RopeStyle rope_style = RopeStyle::kAdjacent;
  int rope_dim = 0;            // leading dimensions of each head that are rotated
  double rope_theta = 10000;   // base
  double rope_freq_scale = 1;  // linear scaling: positions multiplied by this
  std::vector<float> rope_freq_factors;  // [rope_dim/2] angle divisors, or empty
  bool qkv_bias = false;       // Q/K/V projections have biases (qwen2)
  bool qk_norm = false;        // RMSNorm over each head of Q and K before RoPE (Qwen3, Gemma 3)
  bool post_attn_norm = false; // RMSNorm of o_proj's output before the residual add (Gemma 3)
  bool post_ffn_norm = false;  // RMSNorm of the MLP's output before the residual add (Gemma 3)
  Activation activation = Activation::kSwiGLU;
  // Attention logits are q·k × attn_scale; 0 means 1/sqrt(head_dim). Gemma 3 27B scales by
  // 1/sqrt(D/H) instead of 1/sqrt(head_dim) (its query_pre_attn_scalar).
  double attn_scale = 0;

  bool local() const { return window > 0; }  // a sliding-window layer
  int group_size() const { return n_head / n_head_kv; }  // g = H / G
  bool operator==(const LayerConfig&) const = default;
};

struct ModelConfig {
  std::string arch;           // "llama" | "qwen2" | "qwen3" | "gemma3"
  std::string name;           // general.name, for display
  int n_layer = 0;            // L
  int d_model = 0;            // D
  int n_head = 0;             // H query heads
  int n_head_kv = 0;          // G KV heads (H % G == 0)
  int head_dim = 0;           // d: attention.key_length, else D / H
  int d_ff = 0;               // F, SwiGLU inner size
  int n_vocab = 0;            // V, rows of the embedding table
  int n_ctx_train = 0;        // context length the model was trained with
  float rms_eps = 1e-5f;
  RopeStyle rope_style = RopeStyle::kAdjacent;
  int rope_dim = 0;           // leading dimensions of each head that are rotated
  double rope_theta = 10000;  // base
  double rope_freq_scale = 1; // linear rope scaling: positions multiplied by this
  // Per rotated pair i (rope_dim/2 entries): the angle is divided by factor[i]. From the
  // `rope_freqs.weight` tensor or derived from `rope.scaling.*` (Llama-3 style); empty = none.
  std::vector<float> rope_freq_factors;
  bool qkv_bias = false;      // qwen2: Q/K/V projections have biases
  bool tied_embeddings = false;  // LM head reuses token_embd.weight
  // The embedding rows are multiplied by this before layer 0: sqrt(D) for Gemma 3, else 1.
  float embed_scale = 1;
  // logits = cap · tanh(logits / cap) when > 0 (`final_logit_softcapping`; 0 = none).
  float final_logit_softcap = 0;
  // Sliding-window attention: the window of the local layers (0 = every layer global).
  int sliding_window = 0;
  // [L] what each block does. The fields above are the model-wide values (for Llama and Qwen2
  // every layer has them); the forward pass reads only these.
  std::vector<LayerConfig> layers;

  int group_size() const { return n_head / n_head_kv; }  // g = H / G

  // Reads and validates the config; throws fastkv::Error naming the file on unsupported
  // architectures (listing the supported ones), missing keys or inconsistent shapes.
  static ModelConfig from_gguf(const gguf::File& file);
  bool operator==(const ModelConfig&) const = default;
};

// Architectures fastkv can run, for error messages and docs.
const std::vector<std::string>& supported_architectures();

// Llama-3 style RoPE frequency factors (rope_dim/2 entries; the angle of pair i is divided by
// factor[i]): wavelengths 2π·theta^(2i/rope_dim) longer than original_ctx / low_freq_factor are
// divided by `factor`, those shorter than original_ctx / high_freq_factor are kept, and the band
// in between is interpolated smoothly. What llama.cpp's converter stores as rope_freqs.weight.
std::vector<float> llama3_rope_freq_factors(int rope_dim, double theta, double factor,
                                            double low_freq_factor, double high_freq_factor,
                                            double original_ctx);

}  // namespace fastkv
