// tiny_model: writes tiny-k256.gguf, a random-weight Llama model whose every weight row is a
// multiple of 256 elements, so that llama-quantize applies the K-quant types (Q4_K, Q5_K, Q6_K,
// 256-element super-blocks) to every 2-D tensor without falling back to another type. The
// shared tiny models cannot give that: stories260K is 64 wide (FFN 172), tiny-qwen2-gqa 128 wide,
// and tiny-llama-gqa's FFN (704) and 32000-token embedding make a file of several MB.
//
// A developer tool, not part of fastkv's build (scripts/make-quant-goldens.sh compiles it against
// llama.cpp's ggml/gguf library and runs it); fastkv's own code, written against gguf.h.
//
//   tiny_model VOCAB.gguf OUT.gguf [llama|gemma3|qwen3]
//
// The default (llama) is tiny-k256, described here first; gemma3 and qwen3 write the tiny
// random models of those architectures that the architecture goldens use (see the end of this
// comment).
//
// Every metadata key of VOCAB.gguf (a Llama model with an embedded tokenizer: the script passes
// ../shared/models/stories260K.gguf, 512 SentencePiece tokens) is copied, then the shape keys
// are set to this model's:
//   llama, 2 layers, d_model 256, 4 query heads / 2 KV heads (GQA 2:1), head_dim 64, FFN 512,
//   RoPE over all 64 head dims (theta: llama.cpp's default 10000, as stories260K has no key),
//   rms eps 1e-5, untied output.weight, F32 everywhere.
// Tensors (GGUF ne = [in, out], llama.cpp's names):
//   token_embd.weight [256, V], output.weight [256, V], output_norm.weight [256],
//   blk.L.{attn_norm [256], attn_q [256, 256], attn_k [256, 128], attn_v [256, 128],
//          attn_output [256, 256], ffn_norm [256], ffn_gate [256, 512], ffn_up [256, 512],
//          ffn_down [512, 256]}.weight
// Values: matrices uniform with mean 0 and standard deviation 1/sqrt(in) (activations keep
// about unit scale from layer to layer, logits have a standard deviation of about 1); RMSNorm
// gains uniform in [0.8, 1.2]. Generator: splitmix64, one stream per tensor seeded from the
// FNV-1a hash of its name, so the file is the same on every machine.
//
// gemma3 (tiny-gemma3): 6 layers, d_model 128, 4 query heads / 2 KV heads, head_dim 64
//   (attention.key_length 64, not 128/4: the explicit head_dim), FFN 256,
//   attention.sliding_window 16 with no pattern key (so layers 0-4 are local and layer 5 global,
//   Gemma 3's default 5:1), rope.freq_base 1e6 (global; the local layers use 10K), rms eps 1e-6,
//   tied embeddings (no output.weight); per layer also attn_q_norm, attn_k_norm [64],
//   post_attention_norm, post_ffw_norm [128]. Norm gains as stored by llama.cpp's converter for
//   Gemma (already 1 + w): uniform in [0.8, 1.2] like the others.
// qwen3 (tiny-qwen3): 2 layers, d_model 128, 4 query heads / 2 KV heads, head_dim 64
//   (attention.key_length 64), FFN 256, rope.freq_base 1e6, rms eps 1e-6, tied embeddings,
//   attn_q_norm and attn_k_norm [64] per layer.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ggml.h"
#include "gguf.h"

namespace {

// The shape of one tiny model.
struct Shape {
  const char* arch;
  const char* name;
  int layers, dim, heads, heads_kv, head_dim, ffn;
  bool tied;        // no output.weight
  bool qk_norm;     // attn_q_norm, attn_k_norm
  bool post_norms;  // post_attention_norm, post_ffw_norm
  int window;       // attention.sliding_window (0: none)
};

constexpr Shape kShapes[] = {
    {"llama", "tiny-k256", 2, 256, 4, 2, 64, 512, false, false, false, 0},
    {"gemma3", "tiny-gemma3", 6, 128, 4, 2, 64, 256, true, true, true, 16},
    {"qwen3", "tiny-qwen3", 2, 128, 4, 2, 64, 256, true, true, false, 0},
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  std::exit(1);
}

// splitmix64 (Steele, Lea, Flood 2014): state += golden gamma, then two xor-shift-multiply
// rounds of the result.
struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    state += 0x9e3779b97f4a7c15ULL;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) from the top 24 bits.
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) die("usage: tiny_model VOCAB.gguf OUT.gguf [llama|gemma3|qwen3]");
  const std::string arch = argc == 4 ? argv[3] : "llama";
  const Shape* shape = nullptr;
  for (const Shape& s : kShapes) {
    if (arch == s.arch) shape = &s;
  }
  if (shape == nullptr) die("unknown architecture " + arch);
  const int kLayers = shape->layers, kDim = shape->dim, kHeads = shape->heads,
            kHeadsKv = shape->heads_kv, kHeadDim = shape->head_dim, kFfn = shape->ffn;
  gguf_init_params vp = {/*no_alloc=*/true, /*ctx=*/nullptr};
  gguf_context* src = gguf_init_from_file(argv[1], vp);
  if (src == nullptr) die(std::string("cannot read GGUF file ") + argv[1]);
  const int64_t tok_key = gguf_find_key(src, "tokenizer.ggml.tokens");
  if (tok_key < 0) die(std::string(argv[1]) + " has no tokenizer.ggml.tokens");
  const int V = static_cast<int>(gguf_get_arr_n(src, tok_key));

  gguf_context* g = gguf_init_empty();
  gguf_set_kv(g, src);
  gguf_set_val_str(g, "general.architecture", shape->arch);
  gguf_set_val_str(g, "general.name", shape->name);
  gguf_set_val_str(g, "general.description",
                   arch == "llama"
                       ? "fastkv scripts/golden/tiny_model.cpp: random weights, rows of 256 for K-quants"
                       : "fastkv scripts/golden/tiny_model.cpp: random weights");
  gguf_set_val_u32(g, "general.file_type", 0);  // all F32
  const std::string p = arch + ".";
  gguf_set_val_u32(g, (p + "block_count").c_str(), kLayers);
  gguf_set_val_u32(g, (p + "context_length").c_str(), 2048);
  gguf_set_val_u32(g, (p + "embedding_length").c_str(), kDim);
  gguf_set_val_u32(g, (p + "feed_forward_length").c_str(), kFfn);
  gguf_set_val_u32(g, (p + "attention.head_count").c_str(), kHeads);
  gguf_set_val_u32(g, (p + "attention.head_count_kv").c_str(), kHeadsKv);
  if (arch == "llama") {
    gguf_set_val_u32(g, "llama.rope.dimension_count", kHeadDim);
    gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
  } else {
    gguf_set_val_u32(g, (p + "attention.key_length").c_str(), kHeadDim);
    gguf_set_val_u32(g, (p + "attention.value_length").c_str(), kHeadDim);
    gguf_set_val_f32(g, (p + "attention.layer_norm_rms_epsilon").c_str(), 1e-6f);
    gguf_set_val_f32(g, (p + "rope.freq_base").c_str(), 1e6f);
  }
  if (shape->window > 0) {
    gguf_set_val_u32(g, (p + "attention.sliding_window").c_str(), shape->window);
  }

  struct Spec {
    std::string name;
    int in, out;  // out == 0: a 1-D norm gain of `in` elements
  };
  std::vector<Spec> specs = {{"token_embd.weight", kDim, V}, {"output_norm.weight", kDim, 0}};
  if (!shape->tied) specs.push_back({"output.weight", kDim, V});
  for (int l = 0; l < kLayers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    specs.push_back({b + "attn_norm.weight", kDim, 0});
    specs.push_back({b + "attn_q.weight", kDim, kHeads * kHeadDim});
    specs.push_back({b + "attn_k.weight", kDim, kHeadsKv * kHeadDim});
    specs.push_back({b + "attn_v.weight", kDim, kHeadsKv * kHeadDim});
    if (shape->qk_norm) {
      specs.push_back({b + "attn_q_norm.weight", kHeadDim, 0});
      specs.push_back({b + "attn_k_norm.weight", kHeadDim, 0});
    }
    specs.push_back({b + "attn_output.weight", kHeads * kHeadDim, kDim});
    if (shape->post_norms) specs.push_back({b + "post_attention_norm.weight", kDim, 0});
    specs.push_back({b + "ffn_norm.weight", kDim, 0});
    specs.push_back({b + "ffn_gate.weight", kDim, kFfn});
    specs.push_back({b + "ffn_up.weight", kDim, kFfn});
    specs.push_back({b + "ffn_down.weight", kFfn, kDim});
    if (shape->post_norms) specs.push_back({b + "post_ffw_norm.weight", kDim, 0});
  }
  size_t bytes = 0;
  for (const Spec& s : specs) {
    bytes += static_cast<size_t>(s.in) * std::max(s.out, 1) * sizeof(float) + ggml_tensor_overhead();
  }
  ggml_init_params ip = {bytes + (1 << 20), nullptr, false};
  ggml_context* tctx = ggml_init(ip);
  for (const Spec& s : specs) {
    ggml_tensor* t = s.out == 0 ? ggml_new_tensor_1d(tctx, GGML_TYPE_F32, s.in)
                                : ggml_new_tensor_2d(tctx, GGML_TYPE_F32, s.in, s.out);
    ggml_set_name(t, s.name.c_str());
    float* d = static_cast<float*>(t->data);
    SplitMix64 rng{fnv1a(s.name)};
    const int64_t n = ggml_nelements(t);
    // Uniform on [-a, a] has standard deviation a/sqrt(3).
    const float a = std::sqrt(3.0f / static_cast<float>(s.in));
    for (int64_t i = 0; i < n; ++i) {
      const float u = rng.uniform();
      d[i] = s.out == 0 ? 0.8f + 0.4f * u : a * (2.0f * u - 1.0f);
    }
    gguf_add_tensor(g, t);
  }
  if (!gguf_write_to_file(g, argv[2], false)) die(std::string("cannot write ") + argv[2]);
  std::printf("%s: %zu tensors, vocab %d -> %s\n", shape->name, specs.size(), V, argv[2]);
  gguf_free(g);
  gguf_free(src);
  ggml_free(tctx);
  return 0;
}
