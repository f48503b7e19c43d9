// ModelConfig from GGUF metadata: the architecture table, RoPE scaling from metadata, the
// per-layer LayerConfig, the tensor-name table, and the errors for unsupported or inconsistent
// files.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/tensor_names.h"

namespace fastkv {
namespace {

// A minimal llama-style file: metadata plus the embedding table ModelConfig reads.
gguf::Writer base(const std::string& arch = "llama") {
  gguf::Writer w;
  w.set_string("general.architecture", arch);
  w.set_u32(arch + ".block_count", 2);
  w.set_u32(arch + ".embedding_length", 64);
  w.set_u32(arch + ".attention.head_count", 4);
  w.set_u32(arch + ".attention.head_count_kv", 2);
  w.set_u32(arch + ".feed_forward_length", 128);
  w.set_u32(arch + ".context_length", 4096);
  w.set_f32(arch + ".rope.freq_base", 500000.0f);
  std::vector<float> emb(64 * 10, 0.5f);
  w.add_f32("token_embd.weight", gguf::TensorType::F32, {64, 10}, emb.data());
  return w;
}

ModelConfig load(const gguf::Writer& w) {
  return ModelConfig::from_gguf(gguf::File::from_bytes("cfg.gguf", w.to_bytes()));
}

std::string error_of(const gguf::Writer& w) {
  try {
    load(w);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelConfig, ReadsLlamaHyperParameters) {
  ModelConfig c = load(base());
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.rope_dim, 16);
  EXPECT_EQ(c.n_vocab, 10);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.rope_style, RopeStyle::kAdjacent);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_TRUE(c.rope_freq_factors.empty());
  EXPECT_DOUBLE_EQ(c.rope_freq_scale, 1.0);
}

TEST(ModelConfig, Qwen2UsesNeoxRopeAndBiases) {
  ModelConfig c = load(base("qwen2"));
  EXPECT_EQ(c.rope_style, RopeStyle::kNeox);
  EXPECT_TRUE(c.qkv_bias);
}

// Llama and Qwen2: every layer is the same block, with the model-wide values, no window, no
// QK-norm, no post-norms, SwiGLU.
TEST(ModelConfig, EveryLayerOfLlamaAndQwen2IsTheSameBlock) {
  for (const std::string arch : {"llama", "qwen2"}) {
    gguf::Writer w = base(arch);
    w.set_string(arch + ".rope.scaling.type", "linear");
    w.set_f32(arch + ".rope.scaling.factor", 2.0f);
    const ModelConfig c = load(w);
    ASSERT_EQ(c.layers.size(), 2u) << arch;
    for (const LayerConfig& lc : c.layers) {
      EXPECT_EQ(lc, c.layers[0]) << arch;
      EXPECT_EQ(lc.n_head, 4) << arch;
      EXPECT_EQ(lc.n_head_kv, 2) << arch;
      EXPECT_EQ(lc.group_size(), 2) << arch;
      EXPECT_EQ(lc.head_dim, 16) << arch;
      EXPECT_EQ(lc.d_ff, 128) << arch;
      EXPECT_EQ(lc.window, 0) << arch;
      EXPECT_EQ(lc.rope_style, c.rope_style) << arch;
      EXPECT_EQ(lc.rope_dim, 16) << arch;
      EXPECT_DOUBLE_EQ(lc.rope_theta, 500000.0) << arch;
      EXPECT_DOUBLE_EQ(lc.rope_freq_scale, 0.5) << arch;
      EXPECT_EQ(lc.qkv_bias, arch == "qwen2") << arch;
      EXPECT_FALSE(lc.qk_norm) << arch;
      EXPECT_FALSE(lc.post_attn_norm) << arch;
      EXPECT_FALSE(lc.post_ffn_norm) << arch;
      EXPECT_EQ(lc.activation, Activation::kSwiGLU) << arch;
    }
  }
}

// Qwen3: NeoX RoPE, QK-norm on every layer, no biases, head_dim from attention.key_length
// (which may differ from D / H).
TEST(ModelConfig, Qwen3HasQkNormAndAnExplicitHeadDim) {
  gguf::Writer w = base("qwen3");
  w.set_u32("qwen3.attention.key_length", 32);  // D / H = 16
  w.set_u32("qwen3.attention.value_length", 32);
  const ModelConfig c = load(w);
  EXPECT_EQ(c.rope_style, RopeStyle::kNeox);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.rope_dim, 32);
  for (const LayerConfig& lc : c.layers) {
    EXPECT_EQ(lc.head_dim, 32);
    EXPECT_TRUE(lc.qk_norm);
    EXPECT_FALSE(lc.qkv_bias);
    EXPECT_FALSE(lc.post_attn_norm);
    EXPECT_EQ(lc.window, 0);
    EXPECT_EQ(lc.activation, Activation::kSwiGLU);
  }
  EXPECT_FLOAT_EQ(c.embed_scale, 1.0f);
  w.set_u32("qwen3.attention.value_length", 16);
  EXPECT_NE(error_of(w).find("attention.value_length 16 differs from attention.key_length 32"),
            std::string::npos)
      << error_of(w);
}

// Gemma 3 with 8 layers: without a pattern key, layers 5 is global and the others local (period
// 6: l % 6 < 5 is local); local layers take the window and the local RoPE base (10K unless
// rope.freq_base_swa says otherwise) without scaling; global ones rope.freq_base and the linear
// scaling. Block traits: QK-norm, post-norms, GeGLU; embeddings × sqrt(D); query scale
// 1/sqrt(key_length).
TEST(ModelConfig, Gemma3LocalAndGlobalLayersFromMetadata) {
  gguf::Writer w = base("gemma3");
  w.set_u32("gemma3.block_count", 8);
  w.set_u32("gemma3.attention.key_length", 32);
  w.set_u32("gemma3.attention.sliding_window", 512);
  w.set_string("gemma3.rope.scaling.type", "linear");
  w.set_f32("gemma3.rope.scaling.factor", 8.0f);
  ModelConfig c = load(w);
  ASSERT_EQ(c.layers.size(), 8u);
  EXPECT_FLOAT_EQ(c.embed_scale, std::sqrt(64.0f));
  EXPECT_EQ(c.sliding_window, 512);
  for (int l = 0; l < 8; ++l) {
    const LayerConfig& lc = c.layers[l];
    const bool local = l != 5;
    EXPECT_EQ(lc.local(), local) << l;
    EXPECT_EQ(lc.window, local ? 512 : 0) << l;
    EXPECT_DOUBLE_EQ(lc.rope_theta, local ? 10000.0 : 500000.0) << l;
    EXPECT_DOUBLE_EQ(lc.rope_freq_scale, local ? 1.0 : 0.125) << l;
    EXPECT_EQ(lc.rope_style, RopeStyle::kNeox);
    EXPECT_EQ(lc.head_dim, 32);
    EXPECT_TRUE(lc.qk_norm && lc.post_attn_norm && lc.post_ffn_norm) << l;
    EXPECT_EQ(lc.activation, Activation::kGeGLU);
    EXPECT_DOUBLE_EQ(lc.attn_scale, 1.0 / std::sqrt(32.0));
  }
  // A period in the file: layer l is local when l % 3 < 2.
  w.set_u32("gemma3.attention.sliding_window_pattern", 3);
  w.set_f32("gemma3.rope.freq_base_swa", 20000.0f);
  c = load(w);
  for (int l = 0; l < 8; ++l) {
    EXPECT_EQ(c.layers[l].local(), l % 3 < 2) << l;
    if (c.layers[l].local()) EXPECT_DOUBLE_EQ(c.layers[l].rope_theta, 20000.0);
  }
  // One flag per layer.
  w.set_i32_array("gemma3.attention.sliding_window_pattern", {1, 0, 1, 0, 0, 1, 1, 0});
  c = load(w);
  const bool want[8] = {true, false, true, false, false, true, true, false};
  for (int l = 0; l < 8; ++l) EXPECT_EQ(c.layers[l].local(), want[l]) << l;
  w.set_i32_array("gemma3.attention.sliding_window_pattern", {1, 0});
  EXPECT_NE(error_of(w).find("has 2 entries, expected one per layer (8)"), std::string::npos)
      << error_of(w);
  // No window: every layer global.
  gguf::Writer global = base("gemma3");
  c = load(global);
  for (const LayerConfig& lc : c.layers) EXPECT_FALSE(lc.local());
}

TEST(TensorNames, BlockTensorsHaveTheirGgufNamesAndOptionalOnesFollowTheConfig) {
  EXPECT_EQ(tensor_name(LayerTensor::kQ, 3), "blk.3.attn_q.weight");
  EXPECT_EQ(tensor_name(LayerTensor::kAttnNorm, 0), "blk.0.attn_norm.weight");
  EXPECT_EQ(tensor_name(LayerTensor::kKBias, 11), "blk.11.attn_k.bias");
  EXPECT_EQ(tensor_name(LayerTensor::kO, 2), "blk.2.attn_output.weight");
  EXPECT_EQ(tensor_name(LayerTensor::kDown, 31), "blk.31.ffn_down.weight");
  EXPECT_EQ(tensor_name(LayerTensor::kQNorm, 1), "blk.1.attn_q_norm.weight");
  EXPECT_EQ(tensor_name(LayerTensor::kPostFfnNorm, 1), "blk.1.post_ffw_norm.weight");
  EXPECT_FALSE(tensor_name(LayerTensor::kV).optional());
  EXPECT_TRUE(tensor_name(LayerTensor::kVBias).optional());
  EXPECT_TRUE(tensor_name(LayerTensor::kKNorm).optional());
  EXPECT_TRUE(tensor_name(LayerTensor::kPostAttnNorm).optional());

  LayerConfig llama;
  EXPECT_TRUE(has_tensor(LayerTensor::kGate, llama));
  EXPECT_FALSE(has_tensor(LayerTensor::kQBias, llama));
  EXPECT_FALSE(has_tensor(LayerTensor::kQNorm, llama));
  EXPECT_FALSE(has_tensor(LayerTensor::kPostFfnNorm, llama));
  LayerConfig other;
  other.qkv_bias = other.qk_norm = other.post_attn_norm = other.post_ffn_norm = true;
  for (LayerTensor t : {LayerTensor::kQBias, LayerTensor::kKBias, LayerTensor::kVBias,
                        LayerTensor::kQNorm, LayerTensor::kKNorm, LayerTensor::kPostAttnNorm,
                        LayerTensor::kPostFfnNorm}) {
    EXPECT_TRUE(has_tensor(t, other)) << tensor_name(t, 0);
    EXPECT_FALSE(has_tensor(t, llama)) << tensor_name(t, 0);
  }
}

TEST(ModelConfig, LinearRopeScalingFromMetadata) {
  gguf::Writer w = base();
  w.set_string("llama.rope.scaling.type", "linear");
  w.set_f32("llama.rope.scaling.factor", 4.0f);
  EXPECT_DOUBLE_EQ(load(w).rope_freq_scale, 0.25);
}

TEST(ModelConfig, Llama3RopeScalingFromMetadata) {
  gguf::Writer w = base();
  w.set_string("llama.rope.scaling.type", "llama3");
  w.set_f32("llama.rope.scaling.factor", 8.0f);
  w.set_f32("llama.rope.scaling.low_freq_factor", 1.0f);
  w.set_f32("llama.rope.scaling.high_freq_factor", 4.0f);
  w.set_u32("llama.rope.scaling.original_context_length", 8192);
  ModelConfig c = load(w);
  ASSERT_EQ(c.rope_freq_factors.size(), 8u);
  // Independent evaluation of the rule for each pair i: wavelength 2π / θ^(-2i/d).
  for (int i = 0; i < 8; ++i) {
    const double wavelen = 2 * M_PI / std::pow(500000.0, -2.0 * i / 16);
    double want;
    if (wavelen < 8192 / 4.0) {
      want = 1;  // high frequencies untouched
    } else if (wavelen > 8192 / 1.0) {
      want = 8;  // low frequencies divided by the factor
    } else {
      const double smooth = (8192 / wavelen - 1) / (4 - 1);
      want = 1 / ((1 - smooth) / 8 + smooth);
    }
    EXPECT_NEAR(c.rope_freq_factors[i], want, 1e-5 * want) << i;
  }
  EXPECT_FLOAT_EQ(c.rope_freq_factors[0], 1.0f);
  EXPECT_FLOAT_EQ(c.rope_freq_factors[7], 8.0f);
}

TEST(ModelConfig, RopeFreqsTensorWinsOverMetadata) {
  gguf::Writer w = base();
  w.set_string("llama.rope.scaling.type", "linear");
  w.set_f32("llama.rope.scaling.factor", 4.0f);
  std::vector<float> f = {1, 1, 2, 2, 4, 4, 8, 8};
  w.add_f32("rope_freqs.weight", gguf::TensorType::F32, {8}, f.data());
  ModelConfig c = load(w);
  EXPECT_EQ(c.rope_freq_factors, f);
  EXPECT_DOUBLE_EQ(c.rope_freq_scale, 1.0);
}

TEST(ModelConfig, PartialRotaryDimension) {
  gguf::Writer w = base();
  w.set_u32("llama.rope.dimension_count", 8);
  EXPECT_EQ(load(w).rope_dim, 8);
  w.set_u32("llama.rope.dimension_count", 7);
  EXPECT_NE(error_of(w).find("must be even"), std::string::npos);
}

TEST(ModelConfig, ErrorsNameTheFileAndTheProblem) {
  std::string e = error_of(base("gpt-neox"));
  EXPECT_NE(e.find("cfg.gguf: unsupported architecture 'gpt-neox'"), std::string::npos) << e;
  EXPECT_NE(e.find("llama, qwen2"), std::string::npos) << e;

  gguf::Writer w = base();
  w.set_u32("llama.attention.head_count_kv", 3);
  EXPECT_NE(error_of(w).find("not a multiple of head_count_kv"), std::string::npos);

  gguf::Writer bad_scaling = base();
  bad_scaling.set_string("llama.rope.scaling.type", "yarn");
  EXPECT_NE(error_of(bad_scaling).find("unsupported rope.scaling.type 'yarn'"), std::string::npos);

  gguf::Writer no_layers;
  no_layers.set_string("general.architecture", "llama");
  EXPECT_NE(error_of(no_layers).find("missing required key 'llama.block_count'"),
            std::string::npos);
}

}  // namespace
}  // namespace fastkv
