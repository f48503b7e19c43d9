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
};

constexpr ArchTraits kArchs[] = {
    {"llama", RopeStyle::kAdjacent, false},  // Llama 2/3/3.x, Mistral, Ministral, SmolLM
    {"qwen2", RopeStyle::kNeox, true},
};

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
  if (c.d_model % c.n_head != 0) {
    f.error(cat("embedding_length ", c.d_model, " is not a multiple of head_count ", c.n_head));
  }
  c.head_dim = c.d_model / c.n_head;
  if (c.head_dim > 1024 || c.n_head / c.n_head_kv > 64) {
    f.error(cat("head_dim ", c.head_dim, " or group size ", c.n_head / c.n_head_kv,
                " is beyond what fastkv supports (1024, 64)"));
  }
  if (f.has(p + "attention.key_length")) {
    int kl = positive(p + "attention.key_length");
    if (kl != c.head_dim) {
      f.error(cat("attention.key_length ", kl, " differs from embedding_length / head_count ",
                  c.head_dim, " (not supported)"));
    }
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

  // Every layer of a Llama or Qwen2 model is the same block.
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
  c.layers.assign(c.n_layer, lc);
  return c;
}

}  // namespace fastkv
