#include "model/tensor_names.h"

#include <cstdio>

#include "common/error.h"

namespace fastkv {
namespace {

// GGUF names as llama.cpp's converters write them.
constexpr TensorName kLayerTensors[] = {
    {LayerTensor::kAttnNorm, "blk.%d.attn_norm.weight", Presence::kAlways},
    {LayerTensor::kQ, "blk.%d.attn_q.weight", Presence::kAlways},
    {LayerTensor::kK, "blk.%d.attn_k.weight", Presence::kAlways},
    {LayerTensor::kV, "blk.%d.attn_v.weight", Presence::kAlways},
    {LayerTensor::kQBias, "blk.%d.attn_q.bias", Presence::kIfQkvBias},
    {LayerTensor::kKBias, "blk.%d.attn_k.bias", Presence::kIfQkvBias},
    {LayerTensor::kVBias, "blk.%d.attn_v.bias", Presence::kIfQkvBias},
    {LayerTensor::kQNorm, "blk.%d.attn_q_norm.weight", Presence::kIfQkNorm},
    {LayerTensor::kKNorm, "blk.%d.attn_k_norm.weight", Presence::kIfQkNorm},
    {LayerTensor::kO, "blk.%d.attn_output.weight", Presence::kAlways},
    {LayerTensor::kPostAttnNorm, "blk.%d.post_attention_norm.weight", Presence::kIfPostAttnNorm},
    {LayerTensor::kFfnNorm, "blk.%d.ffn_norm.weight", Presence::kAlways},
    {LayerTensor::kGate, "blk.%d.ffn_gate.weight", Presence::kAlways},
    {LayerTensor::kUp, "blk.%d.ffn_up.weight", Presence::kAlways},
    {LayerTensor::kDown, "blk.%d.ffn_down.weight", Presence::kAlways},
    {LayerTensor::kPostFfnNorm, "blk.%d.post_ffw_norm.weight", Presence::kIfPostFfnNorm},
};

}  // namespace

const TensorName& tensor_name(LayerTensor t) {
  for (const TensorName& e : kLayerTensors) {
    if (e.tensor == t) return e;
  }
  fail("tensor_name: no table entry for layer tensor ", static_cast<int>(t));
}

std::string tensor_name(LayerTensor t, int layer) {
  char buf[96];
  std::snprintf(buf, sizeof buf, tensor_name(t).pattern, layer);
  return buf;
}

bool has_tensor(LayerTensor t, const LayerConfig& lc) {
  switch (tensor_name(t).presence) {
    case Presence::kAlways: return true;
    case Presence::kIfQkvBias: return lc.qkv_bias;
    case Presence::kIfQkNorm: return lc.qk_norm;
    case Presence::kIfPostAttnNorm: return lc.post_attn_norm;
    case Presence::kIfPostFfnNorm: return lc.post_ffn_norm;
  }
  return false;
}

}  // namespace fastkv
