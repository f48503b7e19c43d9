#include "model/synth.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <system_error>

#include "common/error.h"
#include "common/rng.h"
#include "io/gguf.h"
#include "io/quant.h"
#include "model/config.h"

namespace fastkv::synth {
namespace {

using gguf::TensorType;

// From each model's published config.json (hidden_size, num_hidden_layers,
// num_attention_heads, num_key_value_heads, head_dim, intermediate_size,
// max_position_embeddings, rope_theta, rms_norm_eps, tie_word_embeddings, rope_scaling).
const std::vector<Preset> kPresets = {
    {"llama-3.2-1b", "meta-llama/Llama-3.2-1B", "llama", 16, 2048, 32, 8, 64, 8192, 131072,
     500000.0, 1e-5f, true, false, 32.0, 1.0, 4.0, 8192},
    {"llama-3.2-3b", "meta-llama/Llama-3.2-3B", "llama", 28, 3072, 24, 8, 128, 8192, 131072,
     500000.0, 1e-5f, true, false, 32.0, 1.0, 4.0, 8192},
    {"llama-3.1-8b", "meta-llama/Llama-3.1-8B", "llama", 32, 4096, 32, 8, 128, 14336, 131072,
     500000.0, 1e-5f, false, false, 8.0, 1.0, 4.0, 8192},
    {"ministral-8b", "mistralai/Ministral-8B-Instruct-2410", "llama", 36, 4096, 32, 8, 128, 12288,
     32768, 100000000.0, 1e-5f, false, false, 0, 0, 0, 0},
    {"smollm2-135m", "HuggingFaceTB/SmolLM2-135M", "llama", 30, 576, 9, 3, 64, 1536, 8192, 100000.0,
     1e-5f, true, false, 0, 0, 0, 0},
    {"smollm2-360m", "HuggingFaceTB/SmolLM2-360M", "llama", 32, 960, 15, 5, 64, 2560, 8192,
     100000.0, 1e-5f, true, false, 0, 0, 0, 0},
    {"qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B", "qwen2", 24, 896, 14, 2, 64, 4864, 32768, 1000000.0,
     1e-6f, true, true, 0, 0, 0, 0},
    // head_dim 128 with d_model / n_head = 64; QK-norm
    {"qwen3-0.6b", "Qwen/Qwen3-0.6B", "qwen3", 28, 1024, 16, 8, 128, 3072, 40960, 1000000.0,
     1e-6f, true, false, 0, 0, 0, 0, /*qk_norm=*/true},
    // head_dim 256 with d_model / n_head = 160; QK-norm, post-norms, 512-token sliding window
    // on 5 of every 6 layers (global rope_theta 1e6; the local layers' 10K is the default)
    {"gemma3-270m", "google/gemma-3-270m", "gemma3", 18, 640, 4, 1, 256, 2048, 32768, 1000000.0,
     1e-6f, true, false, 0, 0, 0, 0, /*qk_norm=*/true, /*post_norms=*/true,
     /*sliding_window=*/512},
};

constexpr int kMaxLayers = 1024;
// Elements generated per block of rows: 16 MiB of f32, plus at most as much encoded.
constexpr int64_t kBlockElements = int64_t{1} << 22;
constexpr float kBiasRange = 0.02f;

// How a tensor's values are made.
enum class Fill {
  kLinear,     // uniform, std 1/sqrt(ne[0]): keeps activations at unit scale layer after layer
  kOnes,       // RMSNorm gains
  kBias,       // uniform in [-kBiasRange, kBiasRange]
  kRopeFreqs,  // Llama-3 frequency factors
};

struct Planned {
  std::string name;
  TensorType type;
  std::vector<int64_t> ne;
  Fill fill;
};

// Per-tensor stream key from the seed and the tensor's name (FNV-1a).
uint64_t tensor_key(uint64_t seed, const std::string& name) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char ch : name) h = (h ^ ch) * 0x100000001B3ull;
  return Rng(seed ^ h).next();
}

// The generator of one row: its own well-mixed seed, so rows can be made in any order or in
// parallel and the tensor's values depend only on (seed, name, element index).
Rng row_rng(uint64_t key, int64_t row) {
  return Rng(Rng(key + static_cast<uint64_t>(row)).next());
}

std::vector<Planned> plan(const Preset& p, int n_layer, int64_t n_vocab, TensorType type) {
  const int64_t D = p.d_model, qd = int64_t{p.n_head} * p.head_dim,
                kvd = int64_t{p.n_head_kv} * p.head_dim, F = p.d_ff;
  std::vector<Planned> t;
  t.push_back({"token_embd.weight", type, {D, n_vocab}, Fill::kLinear});
  if (p.llama3_factor > 0) {
    t.push_back({"rope_freqs.weight", TensorType::F32, {p.head_dim / 2}, Fill::kRopeFreqs});
  }
  for (int l = 0; l < n_layer; ++l) {
    const std::string b = cat("blk.", l, ".");
    t.push_back({b + "attn_norm.weight", TensorType::F32, {D}, Fill::kOnes});
    t.push_back({b + "attn_q.weight", type, {D, qd}, Fill::kLinear});
    if (p.qkv_bias) t.push_back({b + "attn_q.bias", TensorType::F32, {qd}, Fill::kBias});
    t.push_back({b + "attn_k.weight", type, {D, kvd}, Fill::kLinear});
    if (p.qkv_bias) t.push_back({b + "attn_k.bias", TensorType::F32, {kvd}, Fill::kBias});
    t.push_back({b + "attn_v.weight", type, {D, kvd}, Fill::kLinear});
    if (p.qkv_bias) t.push_back({b + "attn_v.bias", TensorType::F32, {kvd}, Fill::kBias});
    if (p.qk_norm) {
      t.push_back({b + "attn_q_norm.weight", TensorType::F32, {p.head_dim}, Fill::kOnes});
      t.push_back({b + "attn_k_norm.weight", TensorType::F32, {p.head_dim}, Fill::kOnes});
    }
    t.push_back({b + "attn_output.weight", type, {qd, D}, Fill::kLinear});
    if (p.post_norms) {
      t.push_back({b + "post_attention_norm.weight", TensorType::F32, {D}, Fill::kOnes});
    }
    t.push_back({b + "ffn_norm.weight", TensorType::F32, {D}, Fill::kOnes});
    t.push_back({b + "ffn_gate.weight", type, {D, F}, Fill::kLinear});
    t.push_back({b + "ffn_up.weight", type, {D, F}, Fill::kLinear});
    t.push_back({b + "ffn_down.weight", type, {F, D}, Fill::kLinear});
    if (p.post_norms) {
      t.push_back({b + "post_ffw_norm.weight", TensorType::F32, {D}, Fill::kOnes});
    }
  }
  t.push_back({"output_norm.weight", TensorType::F32, {D}, Fill::kOnes});
  if (!p.tied_embeddings) t.push_back({"output.weight", type, {D, n_vocab}, Fill::kLinear});
  return t;
}

// Reads the tokenizer keys of --vocab (all `tokenizer.*` keys) and its token count.
std::vector<std::pair<std::string, gguf::Value>> read_vocab(const std::string& path,
                                                            int64_t* n_vocab) {
  gguf::File f = gguf::File::open(path);
  const char* hint = " (--vocab needs a GGUF file with a tokenizer: a model or a ggml-vocab file)";
  const gguf::Value* model = f.find("tokenizer.ggml.model");
  if (!model) f.error(cat("no tokenizer: key 'tokenizer.ggml.model' is missing", hint));
  if (model->type != gguf::ValueType::STRING) f.get_string("tokenizer.ggml.model");  // throws
  const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
  if (!tokens) f.error(cat("no tokenizer: key 'tokenizer.ggml.tokens' is missing", hint));
  if (tokens->type != gguf::ValueType::ARRAY || tokens->elem_type != gguf::ValueType::STRING) {
    f.get_string_array("tokenizer.ggml.tokens");  // throws the type mismatch
  }
  if (tokens->arr.empty()) f.error("tokenizer.ggml.tokens is empty");
  if (tokens->arr.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    f.error("tokenizer.ggml.tokens is too long");
  }
  *n_vocab = static_cast<int64_t>(tokens->arr.size());
  std::vector<std::pair<std::string, gguf::Value>> keys;
  for (const auto& [key, value] : f.metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) keys.emplace_back(key, value);
  }
  return keys;
}

const char* type_flag_name(TensorType t) {
  switch (t) {
    case TensorType::F32:
      return "f32";
    case TensorType::F16:
      return "f16";
    case TensorType::BF16:
      return "bf16";
    case TensorType::Q8_0:
      return "q8_0";
    case TensorType::Q4_0:
      return "q4_0";
    case TensorType::Q5_0:
      return "q5_0";
    case TensorType::Q5_1:
      return "q5_1";
    case TensorType::Q4_K:
      return "q4_k";
    case TensorType::Q5_K:
      return "q5_k";
    case TensorType::Q6_K:
      return "q6_k";
    default:
      return "?";
  }
}

// Generates rows [r0, r1) of a kLinear / kOnes / kBias tensor into `values` and encodes them.
void fill_rows(const Planned& t, uint64_t key, int64_t r0, int64_t r1, std::vector<float>& values,
               std::vector<uint8_t>& bytes) {
  const int64_t n0 = t.ne[0];
  const uint64_t row_bytes = gguf::bytes_for(t.type, n0);
  const int64_t rows = r1 - r0;
  values.resize(static_cast<size_t>(rows * n0));
  bytes.resize(static_cast<size_t>(rows) * row_bytes);
  const float scale = t.fill == Fill::kLinear ? std::sqrt(3.0f / static_cast<float>(n0))
                      : t.fill == Fill::kBias ? kBiasRange
                                              : 0.0f;
#pragma omp parallel for schedule(static) if (rows * n0 >= (int64_t{1} << 16))
  for (int64_t r = 0; r < rows; ++r) {
    float* row = values.data() + r * n0;
    if (t.fill == Fill::kOnes) {
      std::fill(row, row + n0, 1.0f);
    } else {
      Rng rng = row_rng(key, r0 + r);
      for (int64_t j = 0; j < n0; ++j) {
        row[j] = scale * static_cast<float>(2.0 * rng.uniform01() - 1.0);  // uniform (-1, 1)·scale
      }
    }
    gguf::quantize_row(t.type, row, bytes.data() + r * row_bytes, n0);
  }
}

// The --type values, in the order messages list them.
constexpr TensorType kTypes[] = {TensorType::BF16, TensorType::F16,  TensorType::Q8_0,
                                 TensorType::Q4_0, TensorType::Q5_0, TensorType::Q5_1,
                                 TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,
                                 TensorType::F32};

std::string type_names() {
  std::string out;
  for (TensorType t : kTypes) out += cat(out.empty() ? "" : ", ", type_flag_name(t));
  return out;
}

}  // namespace

const std::vector<Preset>& presets() {
  return kPresets;
}

const Preset* find_preset(std::string_view name) {
  for (const Preset& p : kPresets) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

std::string preset_names() {
  std::string out;
  for (const Preset& p : kPresets) out += cat(out.empty() ? "" : ", ", p.name);
  return out;
}

TensorType parse_type(const std::string& text) {
  for (TensorType t : kTypes) {
    if (text == type_flag_name(t)) return t;
  }
  fail("unknown --type '", text, "' (supported: ", type_names(), ")");
}

uint32_t file_type_of(TensorType type) {
  switch (type) {
    case TensorType::F32:
      return 0;
    case TensorType::F16:
      return 1;
    case TensorType::Q4_0:
      return 2;
    case TensorType::Q8_0:
      return 7;
    case TensorType::Q5_0:
      return 8;
    case TensorType::Q5_1:
      return 9;
    case TensorType::Q4_K:
      return 14;  // MOSTLY_Q4_K_S (every weight Q4_K)
    case TensorType::Q5_K:
      return 16;  // MOSTLY_Q5_K_S
    case TensorType::Q6_K:
      return 18;
    case TensorType::BF16:
      return 32;
    default:
      fail("no llama.cpp file type for tensor type ", gguf::type_name(type));
  }
}

Result write_model(const Options& opts, const Progress& progress) {
  const Preset* p = find_preset(opts.like);
  if (!p) {
    fail("unknown model preset '", opts.like, "' for --like (available: ", preset_names(), ")");
  }
  const TensorType type = parse_type(opts.type);
  if (opts.layers && (*opts.layers < 1 || *opts.layers > kMaxLayers)) {
    fail("--layers must be between 1 and ", kMaxLayers, ", got ", *opts.layers);
  }
  const int n_layer = opts.layers.value_or(p->n_layer);

  int64_t n_vocab = 0;
  std::vector<std::pair<std::string, gguf::Value>> tokenizer = read_vocab(opts.vocab, &n_vocab);
  {
    std::error_code ec;
    if (std::filesystem::equivalent(opts.out, opts.vocab, ec)) {
      fail(opts.out, ": --out is the --vocab file; refusing to overwrite it");
    }
  }

  const std::string arch = p->arch, a = arch + ".";
  gguf::StreamWriter w;
  w.set_string("general.architecture", arch);
  w.set_string("general.name", cat(p->name, " (synthetic)"));
  w.set_string(
      "general.description",
      cat("random weights with the shapes of ", p->model, ", made by fastkv synth --like ", p->name,
          " --type ", type_flag_name(type), " --seed ", opts.seed, "; not a trained model"));
  w.set_u32("general.file_type", file_type_of(type));
  if (gguf::type_info(static_cast<uint32_t>(type))->block_size > 1) {
    w.set_u32("general.quantization_version", 2);
  }
  w.set_u32(a + "block_count", static_cast<uint32_t>(n_layer));
  w.set_u32(a + "context_length", static_cast<uint32_t>(p->n_ctx_train));
  w.set_u32(a + "embedding_length", static_cast<uint32_t>(p->d_model));
  w.set_u32(a + "feed_forward_length", static_cast<uint32_t>(p->d_ff));
  w.set_u32(a + "attention.head_count", static_cast<uint32_t>(p->n_head));
  w.set_u32(a + "attention.head_count_kv", static_cast<uint32_t>(p->n_head_kv));
  w.set_f32(a + "attention.layer_norm_rms_epsilon", p->rms_eps);
  w.set_f32(a + "rope.freq_base", static_cast<float>(p->rope_theta));
  w.set_u32(a + "rope.dimension_count", static_cast<uint32_t>(p->head_dim));
  if (p->head_dim * p->n_head != p->d_model) {
    w.set_u32(a + "attention.key_length", static_cast<uint32_t>(p->head_dim));
    w.set_u32(a + "attention.value_length", static_cast<uint32_t>(p->head_dim));
  }
  if (p->sliding_window > 0) {
    w.set_u32(a + "attention.sliding_window", static_cast<uint32_t>(p->sliding_window));
  }
  w.set_u32(a + "vocab_size", static_cast<uint32_t>(n_vocab));
  for (auto& [key, value] : tokenizer) w.set(key, std::move(value));
  tokenizer.clear();

  const std::vector<Planned> tensors = plan(*p, n_layer, n_vocab, type);
  for (const Planned& t : tensors) {
    const int64_t block = gguf::type_info(static_cast<uint32_t>(t.type))->block_size;
    if (t.ne[0] % block != 0) {
      std::string fits;
      for (const Preset& q : kPresets) {
        if (q.d_model % block == 0 && q.d_ff % block == 0 && q.head_dim * q.n_head_kv % block == 0) {
          fits += cat(fits.empty() ? "" : ", ", q.name);
        }
      }
      fail("--type ", type_flag_name(type), " stores rows in blocks of ", block,
           " elements, but preset ", p->name, "'s tensor ", t.name, " has rows of ", t.ne[0],
           " (presets whose sizes fit: ", fits.empty() ? "none" : fits, ")");
    }
  }
  Result r;
  r.path = opts.out;
  r.preset = p;
  r.type = type;
  r.n_layer = n_layer;
  r.n_vocab = static_cast<int>(n_vocab);
  r.n_tensors = static_cast<int>(tensors.size());
  for (const Planned& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    r.n_params += static_cast<uint64_t>(n);
    try {
      w.add_tensor(t.name, t.type, t.ne);
    } catch (const Error& e) {
      fail("--type ", type_flag_name(type), " cannot hold preset ", p->name, ": ", e.what());
    }
  }
  r.n_bytes = w.file_size();

  w.begin(opts.out);
  std::vector<float> values;
  std::vector<uint8_t> bytes;
  for (const Planned& t : tensors) {
    if (t.fill == Fill::kRopeFreqs) {
      const std::vector<float> f = llama3_rope_freq_factors(
          p->head_dim, p->rope_theta, p->llama3_factor, p->llama3_low_freq_factor,
          p->llama3_high_freq_factor, p->llama3_original_ctx);
      w.write_tensor_f32(t.name, f.data(), static_cast<int64_t>(f.size()));
    } else {
      const uint64_t key = tensor_key(opts.seed, t.name);
      const int64_t n0 = t.ne[0];
      int64_t n_rows = 1;
      for (size_t k = 1; k < t.ne.size(); ++k) n_rows *= t.ne[k];
      const int64_t block = std::max<int64_t>(1, kBlockElements / n0);
      for (int64_t r0 = 0; r0 < n_rows; r0 += block) {
        const int64_t r1 = std::min(n_rows, r0 + block);
        fill_rows(t, key, r0, r1, values, bytes);
        w.write_tensor_data(t.name, bytes.data(), bytes.size());
        if (progress) progress(w.bytes_written(), r.n_bytes, t.name);
      }
    }
  }
  w.finish();
  if (progress) progress(r.n_bytes, r.n_bytes, "");
  return r;
}

}  // namespace fastkv::synth
