#include "model/config.h"

#include <cmath>

#include "common/error.h"
#include "io/gguf.h"

namespace fastkv {
namespace {

// Architecture table: GGUF `general.architecture` -> the traits that differ between them.
struct ArchTraits {
  const char* name;
  RopeStyle rope_style;
  bool qkv_bias;
  bool qk_norm;      // per-head RMSNorm of Q and K before RoPE
  bool post_norms;   // RMSNorm of the attention and MLP outputs before each residual add
  Activation activation;
  bool gemma;        // embeddings × sqrt(D), local/global layers from attention.sliding_window
};

constexpr ArchTraits kArchs[] = {
    // Llama 2/3/3.x, Mistral, Ministral, SmolLM
    {"llama", RopeStyle::kAdjacent, false, false, false, Activation::kSwiGLU, false},
    {"qwen2", RopeStyle::kNeox, true, false, false, Activation::kSwiGLU, false},
    {"qwen3", RopeStyle::kNeox, false, true, false, Activation::kSwiGLU, false},
    {"gemma3", RopeStyle::kNeox, false, true, true, Activation::kGeGLU, true},
};

// Gemma 3's published layer pattern when the file does not say: 5 local layers, then 1 global
// (layer l is global when (l + 1) % 6 == 0), as in every Gemma 3 size and llama.cpp's default.
constexpr int kGemma3Pattern = 6;
// RoPE base of Gemma 3's local layers when the file has no rope.freq_base_swa (the model card's
// 10K; the global layers use rope.freq_base, 1M).
constexpr double kGemma3LocalRopeBase = 10000;

}  // namespace

// Used for rope.scaling metadata (when the converter did not write a rope_freqs.weight tensor)
// and by `fastkv synth`, which writes the tensor.
std::vector<float> llama3_rope_freq_factors(int rope_dim, double theta, double factor, double low,
                                            double high, double original_ctx) {
  std::vector<float> out(rope_dim / 2);
  double low_wavelen = original_ctx / low;
  double high_wavelen = original_ctx / high;
  for (int i = 0; i < rope_dim / 2; ++i) {
    double freq = std::pow(theta, -2.0 * i / rope_dim);
    double wavelen = 2 * M_PI / freq;
    double f;
    if (wavelen < high_wavelen) {
      f = 1;
    } else if (wavelen > low_wavelen) {
      f = factor;
    } else {
      double smooth = (original_ctx / wavelen - low) / (high - low);
      f = 1.0 / ((1 - smooth) / factor + smooth);
    }
    out[i] = static_cast<float>(f);
  }
  return out;
}

const std::vector<std::string>& supported_architectures() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const ArchTraits& a : kArchs) v.emplace_back(a.name);
    return v;
  }();
  return names;
}

namespace {

// Gemma 3 (p = "gemma3."): embeddings × sqrt(D); the query scale; local layers from
// attention.sliding_window and the layer pattern. c.layers holds the global block on entry.
//   pattern: attention.sliding_window_pattern when present, either one bool per layer (true =
//   local) or a period n (layer l is local when l % n < n - 1); else Gemma 3's period 6.
//   local layers: window = attention.sliding_window, RoPE base rope.freq_base_swa (else 10K),
//   no RoPE scaling; global layers: rope.freq_base and rope.scaling.* as read above.
void gemma3_layers(const gguf::File& f, const std::string& p, ModelConfig& c) {
  c.embed_scale = std::sqrt(static_cast<float>(c.d_model));
  // Queries are scaled by 1/sqrt(query_pre_attn_scalar), which the GGUF does not carry: it is
  // head_dim (attention.key_length) for every Gemma 3 size but 27B (62 layers), where it is
  // D / H (the fact llama.cpp and Google's reference code use).
  const double attn_scale = c.n_layer == 62 ? 1.0 / std::sqrt(static_cast<double>(c.d_model / c.n_head))
                                             : 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  for (LayerConfig& lc : c.layers) lc.attn_scale = attn_scale;
  const int64_t window = f.get_int(p + "attention.sliding_window", 0);
  if (window < 0 || window > (int64_t{1} << 30)) {
    f.error(cat("attention.sliding_window must be >= 0, got ", window));
  }
  if (window == 0) return;  // every layer global
  c.sliding_window = static_cast<int>(window);
  std::vector<bool> local(c.n_layer);
  const std::string key = p + "attention.sliding_window_pattern";
  const gguf::Value* v = f.find(key);
  if (v != nullptr && v->type == gguf::ValueType::ARRAY) {
    if (static_cast<int>(v->arr.size()) != c.n_layer) {
      f.error(cat(key, " has ", v->arr.size(), " entries, expected one per layer (", c.n_layer,
                  ")"));
    }
    for (int l = 0; l < c.n_layer; ++l) local[l] = v->arr[l].as_int() != 0;
  } else {
    const int64_t period = v != nullptr ? f.get_int(key) : kGemma3Pattern;
    if (period < 0) f.error(cat(key, " must be >= 0, got ", period));
    // period 0: every layer local (llama.cpp's reading of the key).
    for (int l = 0; l < c.n_layer; ++l) local[l] = period == 0 || l % period < period - 1;
  }
  const double local_base = f.get_float(p + "rope.freq_base_swa", kGemma3LocalRopeBase);
  if (!(local_base > 0)) f.error("rope.freq_base_swa must be > 0");
  for (int l = 0; l < c.n_layer; ++l) {
    if (!local[l]) continue;
    LayerConfig& lc = c.layers[l];
    lc.window = c.sliding_window;
    lc.rope_theta = local_base;
    lc.rope_freq_scale = 1;
    lc.rope_freq_factors.clear();
  }
}

}  // namespace

ModelConfig ModelConfig::from_gguf(const gguf::File& f) {
  ModelConfig c;
  c.arch = f.get_string("general.architecture");
  const ArchTraits* traits = nullptr;
  for (const ArchTraits& a : kArchs) {
    if (c.arch == a.name) traits = &a;
  }
  if (!traits) {
    std::string list;
    for (const std::string& n : supported_architectures()) list += (list.empty() ? "" : ", ") + n;
    f.error(cat("unsupported architecture '", c.arch, "' (supported: ", list, ")"));
  }
  const std::string p = c.arch + ".";
  auto positive = [&](const std::string& key) {
    int64_t v = f.get_int(key);
    if (v <= 0 || v > (int64_t{1} << 30)) f.error(cat(key, " must be positive, got ", v));
    return static_cast<int>(v);
  };
  c.name = f.get_string("general.name", c.arch);
  c.n_layer = positive(p + "block_count");
  c.d_model = positive(p + "embedding_length");
  c.n_head = positive(p + "attention.head_count");
  c.n_head_kv = f.has(p + "attention.head_count_kv") ? positive(p + "attention.head_count_kv")
                                                      : c.n_head;
  c.d_ff = positive(p + "feed_forward_length");
  c.n_ctx_train = f.has(p + "context_length") ? positive(p + "context_length") : 2048;
  c.rms_eps = static_cast<float>(f.get_float(p + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = f.get_float(p + "rope.freq_base", 10000.0);
  c.rope_style = traits->rope_style;
  c.qkv_bias = traits->qkv_bias;
  if (c.n_head % c.n_head_kv != 0) {
    f.error(cat("head_count ", c.n_head, " is not a multiple of head_count_kv ", c.n_head_kv));
  }
  if (c.d_model % c.n_head != 0 && !f.has(p + "attention.key_length")) {
    f.error(cat("embedding_length ", c.d_model, " is not a multiple of head_count ", c.n_head,
                " and the file has no attention.key_length"));
  }
  // head_dim: attention.key_length where present (Qwen3 and Gemma 3 store one that differs from
  // D / H: Qwen3-0.6B has D = 1024, H = 16, d = 128), else D / H. V rows have the same width.
  c.head_dim = c.d_model / c.n_head;
  if (f.has(p + "attention.key_length")) {
    c.head_dim = positive(p + "attention.key_length");
    if (f.has(p + "attention.value_length") &&
        positive(p + "attention.value_length") != c.head_dim) {
      f.error(cat("attention.value_length ", f.get_int(p + "attention.value_length"),
                  " differs from attention.key_length ", c.head_dim, " (not supported)"));
    }
  }
  if (c.head_dim > 1024 || c.n_head / c.n_head_kv > 64) {
    f.error(cat("head_dim ", c.head_dim, " or group size ", c.n_head / c.n_head_kv,
                " is beyond what fastkv supports (1024, 64)"));
  }
  c.rope_dim = f.has(p + "rope.dimension_count") ? positive(p + "rope.dimension_count")
                                                   : c.head_dim;
  if (c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    f.error(cat("rope.dimension_count ", c.rope_dim, " must be even and at most head_dim ",
                c.head_dim));
  }
  if (!(c.rope_theta > 0) || !(c.rms_eps > 0)) f.error("rope.freq_base and rms epsilon must be > 0");

  // Embedding table and LM head.
  const gguf::TensorInfo& emb = f.tensor("token_embd.weight");
  if (emb.ne.size() != 2 || emb.ne[0] != c.d_model) {
    f.error(cat("token_embd.weight has shape ", emb.shape_string(), ", expected [", c.d_model,
                ", n_vocab]"));
  }
  c.n_vocab = static_cast<int>(emb.ne[1]);
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;

  // RoPE scaling: a rope_freqs tensor wins; else rope.scaling.* metadata.
  if (const gguf::TensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
    if (rf->n_elements() != c.rope_dim / 2) {
      f.error(cat("rope_freqs.weight has ", rf->n_elements(), " entries, expected ",
                  c.rope_dim / 2));
    }
    std::vector<float> v = f.read_f32(*rf);
    for (float x : v) {
      if (!(x > 0) || !std::isfinite(x)) f.error("rope_freqs.weight has a non-positive factor");
    }
    c.rope_freq_factors = std::move(v);
  } else if (f.has(p + "rope.scaling.type")) {
    std::string type = f.get_string(p + "rope.scaling.type");
    double factor = f.get_float(p + "rope.scaling.factor", 1.0);
    if (!(factor > 0)) f.error(cat("rope.scaling.factor must be > 0, got ", factor));
    if (type == "none") {
    } else if (type == "linear") {
      c.rope_freq_scale = 1.0 / factor;
    } else if (type == "llama3") {
      double orig = f.get_float(p + "rope.scaling.original_context_length", 8192);
      double low = f.get_float(p + "rope.scaling.low_freq_factor", 1.0);
      double high = f.get_float(p + "rope.scaling.high_freq_factor", 4.0);
      if (!(high > low) || !(low > 0) || !(orig > 0)) f.error("invalid llama3 rope.scaling values");
      c.rope_freq_factors =
          llama3_rope_freq_factors(c.rope_dim, c.rope_theta, factor, low, high, orig);
    } else {
      f.error(cat("unsupported rope.scaling.type '", type, "' (supported: none, linear, llama3)"));
    }
  }

  if (f.has(p + "final_logit_softcapping")) {
    c.final_logit_softcap = static_cast<float>(f.get_float(p + "final_logit_softcapping"));
    if (!(c.final_logit_softcap >= 0)) f.error("final_logit_softcapping must be >= 0");
  }

  // The block every layer of a Llama, Qwen2 or Qwen3 model has, and Gemma 3's global layers.
  LayerConfig lc;
  lc.n_head = c.n_head;
  lc.n_head_kv = c.n_head_kv;
  lc.head_dim = c.head_dim;
  lc.d_ff = c.d_ff;
  lc.rope_style = c.rope_style;
  lc.rope_dim = c.rope_dim;
  lc.rope_theta = c.rope_theta;
  lc.rope_freq_scale = c.rope_freq_scale;
  lc.rope_freq_factors = c.rope_freq_factors;
  lc.qkv_bias = c.qkv_bias;
  lc.qk_norm = traits->qk_norm;
  lc.post_attn_norm = lc.post_ffn_norm = traits->post_norms;
  lc.activation = traits->activation;
  c.layers.assign(c.n_layer, lc);
  if (traits->gemma) gemma3_layers(f, p, c);
  return c;
}

}  // namespace fastkv
