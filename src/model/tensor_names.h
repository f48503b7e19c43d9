// The tensor-name table: the one place that maps each weight of the forward pass to its GGUF
// tensor name. Block tensors carry the layer index ("blk.%d.attn_q.weight"); optional ones are
// present only when the layer's config says so (qkv_bias, qk_norm, post-norms).
#pragma once

#include <string>

#include "model/config.h"

namespace fastkv {

// The weights of one block, in the order its steps use them.
enum class LayerTensor {
  kAttnNorm,      // [D]      norm before attention
  kQ,             // [D, H*d] (GGUF ne = [in, out])
  kK,             // [D, G*d]
  kV,             // [D, G*d]
  kQBias,         // [H*d]    when qkv_bias
  kKBias,         // [G*d]    when qkv_bias
  kVBias,         // [G*d]    when qkv_bias
  kQNorm,         // [d]      when qk_norm
  kKNorm,         // [d]      when qk_norm
  kO,             // [H*d, D]
  kPostAttnNorm,  // [D]      when post_attn_norm
  kFfnNorm,       // [D]      norm before the MLP
  kGate,          // [D, F]
  kUp,            // [D, F]
  kDown,          // [F, D]
  kPostFfnNorm,   // [D]      when post_ffn_norm
};

// When a block tensor is in the file.
enum class Presence { kAlways, kIfQkvBias, kIfQkNorm, kIfPostAttnNorm, kIfPostFfnNorm };

struct TensorName {
  LayerTensor tensor;
  const char* pattern;  // printf pattern of the GGUF name, %d = layer index
  Presence presence;
  bool optional() const { return presence != Presence::kAlways; }
};

// The table entry of a block tensor.
const TensorName& tensor_name(LayerTensor t);
// The GGUF name of a block tensor in layer `layer`, e.g. "blk.3.attn_q.weight".
std::string tensor_name(LayerTensor t, int layer);
// Whether a layer with config lc has the tensor.
bool has_tensor(LayerTensor t, const LayerConfig& lc);

// Model-wide tensors.
inline constexpr const char* kTokenEmbdName = "token_embd.weight";    // [D, V]
inline constexpr const char* kOutputNormName = "output_norm.weight";  // [D]
inline constexpr const char* kOutputName = "output.weight";           // [D, V], absent = tied
inline constexpr const char* kRopeFreqsName = "rope_freqs.weight";    // [rope_dim/2], optional

}  // namespace fastkv
