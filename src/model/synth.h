// Synthetic models for benchmarking: GGUF files with the exact layer shapes and hyper-parameters
// of real models (presets), a real vocabulary copied from another GGUF file, and random weights.
//
// The file uses llama.cpp's tensor names and metadata keys, so fastkv and other GGUF readers
// load it like a converted model. Weights come from splitmix64 (common/rng.h) with one stream per
// row, seeded from (seed, tensor name, row): every value depends on those and its column only, so
// the output does not depend on the thread count or on how the data is cut into blocks, and a
// file with fewer --layers shares its first layers' weights with the full model. Data is
// generated and written a block of rows at a time through gguf::StreamWriter: memory use stays
// at a few blocks (~16 MiB each) whatever the model size.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/tensor_type.h"

namespace fastkv::synth {

// Hyper-parameters of a published model (from its config.json).
struct Preset {
  const char* name;   // --like value, e.g. "llama-3.2-1b"
  const char* model;  // the model it copies, e.g. "meta-llama/Llama-3.2-1B"
  const char* arch;   // GGUF general.architecture: "llama" | "qwen2" | "qwen3" | "gemma3"
  int n_layer;
  int d_model;
  int n_head;
  int n_head_kv;
  int head_dim;  // written as attention.key_length / value_length where it is not d_model / n_head
  int d_ff;
  int n_ctx_train;
  double rope_theta;
  float rms_eps;
  bool tied_embeddings;  // no output.weight: the LM head reuses token_embd.weight
  bool qkv_bias;         // Q/K/V projection biases (qwen2)
  // Llama-3 RoPE scaling, written as rope_freqs.weight; llama3_factor == 0: none.
  double llama3_factor;
  double llama3_low_freq_factor;
  double llama3_high_freq_factor;
  int llama3_original_ctx;
  bool qk_norm = false;     // attn_q_norm, attn_k_norm [head_dim] per layer (qwen3, gemma3)
  bool post_norms = false;  // post_attention_norm, post_ffw_norm [D] per layer (gemma3)
  int sliding_window = 0;   // attention.sliding_window (gemma3's local layers), 0 = none
};

const std::vector<Preset>& presets();
// The preset called `name`, or nullptr.
const Preset* find_preset(std::string_view name);
// "llama-3.2-1b, llama-3.2-3b, ..." for messages.
std::string preset_names();

// --type values: bf16, f16, q8_0, q4_0, q5_0, q5_1, q4_k, q5_k, q6_k, f32 (the quantised types
// written by gguf::quantize_row's round to nearest). Throws Error listing them for anything else.
gguf::TensorType parse_type(const std::string& text);
// llama.cpp's general.file_type for an all-`type` model (ALL_F32 0, MOSTLY_F16 1, Q4_0 2,
// Q8_0 7, Q5_0 8, Q5_1 9, Q4_K_S 14, Q5_K_S 16, Q6_K 18, BF16 32).
uint32_t file_type_of(gguf::TensorType type);

struct Options {
  std::string like;  // preset name
  std::string type = "bf16";
  std::string vocab;  // GGUF file whose tokenizer.* keys are copied
  std::string out;    // output path
  uint64_t seed = 1;
  std::optional<int> layers;  // overrides the preset's layer count (1 to 1024)
};

struct Result {
  std::string path;
  const Preset* preset = nullptr;
  gguf::TensorType type = gguf::TensorType::BF16;
  int n_layer = 0;
  int n_vocab = 0;
  int n_tensors = 0;
  uint64_t n_params = 0;  // elements of all tensors
  uint64_t n_bytes = 0;   // file size
};

// Called after each block of rows is written: bytes written so far, the file's final size and
// the tensor being written.
using Progress =
    std::function<void(uint64_t written, uint64_t total, const std::string& tensor_name)>;

// Writes the synthetic model. Throws fastkv::Error for an unknown preset or type, a vocabulary
// file that cannot be read or has no tokenizer, layers < 1, and any write failure (the partial
// output file is removed then).
Result write_model(const Options& opts, const Progress& progress = {});

}  // namespace fastkv::synth
