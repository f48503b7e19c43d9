// `fastkv synth`: every preset (with one or two layers) gives a file that Model::load reads with
// the published model's shapes, the source vocabulary and a finite forward pass; every --type;
// determinism in the seed; the tensor table llama.cpp expects; the CLI's summary and errors.
//
// The preset numbers below are typed in from the models' config.json files, independently of
// the table in src/model/synth.cpp, so a typo in either shows up here.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/gguf.h"
#include "model/model.h"
#include "model/synth.h"
#include "method/method.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace fastkv {
namespace {

namespace fs = std::filesystem;
using gguf::TensorType;

struct Expect {
  std::string name, arch;
  int n_layer, d_model, n_head, n_head_kv, head_dim, d_ff, n_ctx;
  double theta;
  float eps;
  bool tied, bias;
  double llama3_factor;  // 0: no scaling (low 1, high 4, original 8192 for all llama3 presets)
  bool qk_norm = false, post_norms = false;
  int window = 0;  // attention.sliding_window
};

const std::vector<Expect> kExpect = {
    {"llama-3.2-1b", "llama", 16, 2048, 32, 8, 64, 8192, 131072, 500000, 1e-5f, true, false, 32},
    {"llama-3.2-3b", "llama", 28, 3072, 24, 8, 128, 8192, 131072, 500000, 1e-5f, true, false, 32},
    {"llama-3.1-8b", "llama", 32, 4096, 32, 8, 128, 14336, 131072, 500000, 1e-5f, false, false, 8},
    {"ministral-8b", "llama", 36, 4096, 32, 8, 128, 12288, 32768, 1e8, 1e-5f, false, false, 0},
    {"smollm2-135m", "llama", 30, 576, 9, 3, 64, 1536, 8192, 100000, 1e-5f, true, false, 0},
    {"smollm2-360m", "llama", 32, 960, 15, 5, 64, 2560, 8192, 100000, 1e-5f, true, false, 0},
    {"qwen2.5-0.5b", "qwen2", 24, 896, 14, 2, 64, 4864, 32768, 1000000, 1e-6f, true, true, 0},
    // Qwen/Qwen3-0.6B and google/gemma-3-270m config.json: head_dim 128 / 256, not D/H
    {"qwen3-0.6b", "qwen3", 28, 1024, 16, 8, 128, 3072, 40960, 1000000, 1e-6f, true, false, 0,
     true},
    {"gemma3-270m", "gemma3", 18, 640, 4, 1, 256, 2048, 32768, 1000000, 1e-6f, true, false, 0,
     true, true, 512},
};

const Expect& expect_of(const std::string& name) {
  for (const Expect& e : kExpect) {
    if (e.name == name) return e;
  }
  throw Error("no expectation for " + name);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string quote(const std::string& s) { return test::shell_quote(s); }

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// A scratch directory in memory when the machine has /dev/shm (the files are hundreds of MB for
// the 8B-shaped presets), else the usual temporary directory.
std::string scratch_dir() {
  if (fs::is_directory("/dev/shm") && access("/dev/shm", W_OK) == 0) {
    std::string tmpl = "/dev/shm/fastkv-synth-XXXXXX";
    if (mkdtemp(tmpl.data())) return tmpl;
  }
  return test::temp_dir();
}

// A small SentencePiece vocabulary (<unk>, <s>, </s>, 256 byte tokens, a few words): the
// embedding tables of 8B-shaped models stay small with it. Also carries keys that synth must
// not copy (general.*, a foreign key) and one it must (the chat template).
constexpr int kTinyVocab = 3 + 256 + 16;
std::string write_tiny_vocab(const std::string& dir) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    scores.push_back(0);
    types.push_back(6);
  }
  for (const char* piece : {"▁", "▁h", "▁he", "▁hel", "▁hell", "▁hello", "▁w", "▁wo", "▁wor",
                            "▁worl", "▁world", "h", "e", "l", "o", "▁the"}) {
    tokens.push_back(piece);
    scores.push_back(-static_cast<float>(tokens.size()) / 100);
    types.push_back(1);
  }
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.name", "tiny vocab");
  w.set_u32("llama.block_count", 99);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_string("tokenizer.chat_template", "{{ messages }}");
  const std::string path = dir + "/tiny-vocab.gguf";
  w.write(path);
  return path;
}

std::string vocab_path(const std::string& kind, const std::string& dir) {
  if (kind == "tiny") return write_tiny_vocab(dir);
  return test::shared_path("tokenizer/ggml-vocab-" + kind + ".gguf");
}

synth::Options options(const std::string& like, const std::string& type, const std::string& vocab,
                       const std::string& out, int layers) {
  synth::Options o;
  o.like = like;
  o.type = type;
  o.vocab = vocab;
  o.out = out;
  o.layers = layers;
  return o;
}

// Llama-3 frequency factors, from the formula in Meta's reference code.
std::vector<double> llama3_reference(int dim, double theta, double factor) {
  const double low = 1, high = 4, orig = 8192;
  std::vector<double> out;
  for (int i = 0; i < dim; i += 2) {
    const double wavelen = 2 * M_PI * std::pow(theta, static_cast<double>(i) / dim);
    if (wavelen < orig / high) {
      out.push_back(1);
    } else if (wavelen > orig / low) {
      out.push_back(factor);
    } else {
      const double smooth = (orig / wavelen - low) / (high - low);
      out.push_back(1 / ((1 - smooth) / factor + smooth));
    }
  }
  return out;
}

// The tensors (name -> ne) a preset with `layers` layers and `vocab` tokens must have.
std::map<std::string, std::vector<int64_t>> expected_tensors(const Expect& e, int layers,
                                                             int64_t vocab) {
  const int64_t D = e.d_model, Q = int64_t{e.n_head} * e.head_dim,
                KV = int64_t{e.n_head_kv} * e.head_dim, F = e.d_ff;
  std::map<std::string, std::vector<int64_t>> t = {{"token_embd.weight", {D, vocab}},
                                                   {"output_norm.weight", {D}}};
  if (!e.tied) t["output.weight"] = {D, vocab};
  if (e.llama3_factor > 0) t["rope_freqs.weight"] = {e.head_dim / 2};
  for (int l = 0; l < layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    t[b + "attn_norm.weight"] = {D};
    t[b + "attn_q.weight"] = {D, Q};
    t[b + "attn_k.weight"] = {D, KV};
    t[b + "attn_v.weight"] = {D, KV};
    t[b + "attn_output.weight"] = {Q, D};
    t[b + "ffn_norm.weight"] = {D};
    t[b + "ffn_gate.weight"] = {D, F};
    t[b + "ffn_up.weight"] = {D, F};
    t[b + "ffn_down.weight"] = {F, D};
    if (e.qk_norm) {
      t[b + "attn_q_norm.weight"] = {e.head_dim};
      t[b + "attn_k_norm.weight"] = {e.head_dim};
    }
    if (e.post_norms) {
      t[b + "post_attention_norm.weight"] = {D};
      t[b + "post_ffw_norm.weight"] = {D};
    }
    if (e.bias) {
      t[b + "attn_q.bias"] = {Q};
      t[b + "attn_k.bias"] = {KV};
      t[b + "attn_v.bias"] = {KV};
    }
  }
  return t;
}

bool is_one_dim(const std::vector<int64_t>& ne) {
  return ne.size() == 1;
}

// mean and standard deviation of a tensor's values.
std::pair<double, double> moments(const std::vector<float>& v) {
  double s = 0, s2 = 0;
  for (float x : v) {
    s += x;
    s2 += double{x} * x;
  }
  const double mean = s / v.size();
  return {mean, std::sqrt(std::max(0.0, s2 / v.size() - mean * mean))};
}

TEST(SynthPresets, TableMatchesThePublishedConfigs) {
  ASSERT_EQ(synth::presets().size(), kExpect.size());
  for (const Expect& e : kExpect) {
    SCOPED_TRACE(e.name);
    const synth::Preset* p = synth::find_preset(e.name);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->arch, e.arch);
    EXPECT_EQ(p->n_layer, e.n_layer);
    EXPECT_EQ(p->d_model, e.d_model);
    EXPECT_EQ(p->n_head, e.n_head);
    EXPECT_EQ(p->n_head_kv, e.n_head_kv);
    EXPECT_EQ(p->head_dim, e.head_dim);
    EXPECT_EQ(p->d_ff, e.d_ff);
    EXPECT_EQ(p->n_ctx_train, e.n_ctx);
    EXPECT_EQ(p->rope_theta, e.theta);
    EXPECT_EQ(p->rms_eps, e.eps);
    EXPECT_EQ(p->tied_embeddings, e.tied);
    EXPECT_EQ(p->qkv_bias, e.bias);
    EXPECT_EQ(p->llama3_factor, e.llama3_factor);
    EXPECT_EQ(p->qk_norm, e.qk_norm);
    EXPECT_EQ(p->post_norms, e.post_norms);
    EXPECT_EQ(p->sliding_window, e.window);
    if (e.llama3_factor > 0) {
      EXPECT_EQ(p->llama3_low_freq_factor, 1.0);
      EXPECT_EQ(p->llama3_high_freq_factor, 4.0);
      EXPECT_EQ(p->llama3_original_ctx, 8192);
    }
    EXPECT_TRUE(contains(synth::preset_names(), e.name));
  }
  EXPECT_EQ(synth::find_preset("llama-3.2-1B"), nullptr);  // names are exact
}

TEST(SynthPresets, TypesAndFileTypes) {
  EXPECT_EQ(synth::parse_type("bf16"), TensorType::BF16);
  EXPECT_EQ(synth::parse_type("f16"), TensorType::F16);
  EXPECT_EQ(synth::parse_type("q8_0"), TensorType::Q8_0);
  EXPECT_EQ(synth::parse_type("q4_0"), TensorType::Q4_0);
  EXPECT_EQ(synth::parse_type("f32"), TensorType::F32);
  EXPECT_THROW(synth::parse_type("Q4_0"), Error);
  // llama.cpp's llama_ftype values.
  EXPECT_EQ(synth::file_type_of(TensorType::F32), 0u);
  EXPECT_EQ(synth::file_type_of(TensorType::F16), 1u);
  EXPECT_EQ(synth::file_type_of(TensorType::Q4_0), 2u);
  EXPECT_EQ(synth::file_type_of(TensorType::Q8_0), 7u);
  EXPECT_EQ(synth::file_type_of(TensorType::BF16), 32u);
  EXPECT_EQ(synth::parse_type("q5_0"), TensorType::Q5_0);
  EXPECT_EQ(synth::parse_type("q5_1"), TensorType::Q5_1);
  EXPECT_EQ(synth::parse_type("q4_k"), TensorType::Q4_K);
  EXPECT_EQ(synth::parse_type("q5_k"), TensorType::Q5_K);
  EXPECT_EQ(synth::parse_type("q6_k"), TensorType::Q6_K);
  EXPECT_EQ(synth::file_type_of(TensorType::Q5_0), 8u);
  EXPECT_EQ(synth::file_type_of(TensorType::Q5_1), 9u);
  EXPECT_EQ(synth::file_type_of(TensorType::Q4_K), 14u);  // Q4_K_S
  EXPECT_EQ(synth::file_type_of(TensorType::Q5_K), 16u);  // Q5_K_S
  EXPECT_EQ(synth::file_type_of(TensorType::Q6_K), 18u);
}

// ---- Every preset -----------------------------------------------------------------------------

struct PresetCase {
  std::string like, type;
  int layers;
  std::string vocab;  // "tiny" (made here) or a ggml-vocab-<name>.gguf of ../shared
};

void PrintTo(const PresetCase& c, std::ostream* os) {
  *os << c.like << "/" << c.type;
}

class SynthPreset : public ::testing::TestWithParam<PresetCase> {};

TEST_P(SynthPreset, LoadsWithThePresetShapesAndRuns) {
  const PresetCase& c = GetParam();
  const Expect& e = expect_of(c.like);
  const std::string dir = scratch_dir();
  ASSERT_FALSE(dir.empty());
  const std::string vocab = vocab_path(c.vocab, dir);
  ASSERT_TRUE(fs::exists(vocab)) << vocab;
  const std::string out = dir + "/" + c.like + ".gguf";

  const synth::Result r = synth::write_model(options(c.like, c.type, vocab, out, c.layers));
  const gguf::File src = gguf::File::open(vocab);
  const int64_t n_vocab = static_cast<int64_t>(src.get_array("tokenizer.ggml.tokens").size());
  EXPECT_EQ(r.n_layer, c.layers);
  EXPECT_EQ(r.n_vocab, n_vocab);
  EXPECT_EQ(r.n_bytes, fs::file_size(out));

  // The tensor table: names, shapes and types (norms, biases and rope_freqs stay f32).
  const TensorType type = synth::parse_type(c.type);
  const gguf::File f = gguf::File::open(out);
  const auto want = expected_tensors(e, c.layers, n_vocab);
  ASSERT_EQ(f.tensors().size(), want.size());
  uint64_t params = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    ASSERT_TRUE(want.count(t.name));
    EXPECT_EQ(t.ne, want.at(t.name));
    EXPECT_EQ(t.type, is_one_dim(t.ne) ? TensorType::F32 : type);
    params += static_cast<uint64_t>(t.n_elements());
  }
  EXPECT_EQ(r.n_params, params);

  // Metadata llama.cpp reads, and only the tokenizer keys of the vocabulary file.
  EXPECT_EQ(f.get_string("general.architecture"), e.arch);
  EXPECT_EQ(f.get_int("general.file_type"), synth::file_type_of(type));
  EXPECT_EQ(f.get_int(e.arch + ".block_count"), c.layers);
  EXPECT_EQ(f.get_int(e.arch + ".rope.dimension_count"), e.head_dim);
  EXPECT_EQ(f.get_int(e.arch + ".vocab_size"), n_vocab);
  EXPECT_NE(f.get_string("general.name"), src.get_string("general.name", ""));
  for (const auto& [key, v] : src.metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    SCOPED_TRACE(key);
    const gguf::Value* got = f.find(key);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(gguf::to_string(*got, 1u << 20), gguf::to_string(v, 1u << 20));
  }
  for (const auto& [key, v] : f.metadata()) {
    EXPECT_TRUE(key.rfind("tokenizer.", 0) != 0 || src.has(key)) << key;
    EXPECT_TRUE(key.rfind("general.", 0) == 0 || key.rfind(e.arch + ".", 0) == 0 ||
                key.rfind("tokenizer.", 0) == 0)
        << key;
  }

  // The model as fastkv loads it.
  const std::unique_ptr<Model> m = Model::load(out);
  const ModelConfig& cfg = m->config();
  EXPECT_EQ(cfg.arch, e.arch);
  EXPECT_EQ(cfg.n_layer, c.layers);
  EXPECT_EQ(cfg.d_model, e.d_model);
  EXPECT_EQ(cfg.n_head, e.n_head);
  EXPECT_EQ(cfg.n_head_kv, e.n_head_kv);
  EXPECT_EQ(cfg.head_dim, e.head_dim);
  EXPECT_EQ(cfg.d_ff, e.d_ff);
  EXPECT_EQ(cfg.n_vocab, n_vocab);
  EXPECT_EQ(cfg.n_ctx_train, e.n_ctx);
  EXPECT_EQ(cfg.rms_eps, e.eps);
  EXPECT_DOUBLE_EQ(cfg.rope_theta, static_cast<float>(e.theta));  // stored as f32 (global)
  EXPECT_EQ(cfg.rope_dim, e.head_dim);
  EXPECT_EQ(cfg.rope_freq_scale, 1.0);
  EXPECT_EQ(cfg.rope_style, e.arch == "llama" ? RopeStyle::kAdjacent : RopeStyle::kNeox);
  EXPECT_EQ(cfg.sliding_window, e.window);
  for (const LayerConfig& lc : cfg.layers) {
    EXPECT_EQ(lc.qk_norm, e.qk_norm);
    EXPECT_EQ(lc.post_attn_norm, e.post_norms);
    EXPECT_EQ(lc.head_dim, e.head_dim);
  }
  EXPECT_EQ(cfg.qkv_bias, e.bias);
  EXPECT_EQ(cfg.tied_embeddings, e.tied);
  if (e.llama3_factor > 0) {
    const std::vector<double> ref = llama3_reference(e.head_dim, e.theta, e.llama3_factor);
    ASSERT_EQ(cfg.rope_freq_factors.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_NEAR(cfg.rope_freq_factors[i], ref[i], 1e-5 * ref[i]) << i;
    }
    EXPECT_EQ(cfg.rope_freq_factors.front(), 1.0f);
    EXPECT_EQ(cfg.rope_freq_factors.back(), static_cast<float>(e.llama3_factor));
    EXPECT_TRUE(std::any_of(ref.begin(), ref.end(),
                            [&](double x) { return x > 1 && x < e.llama3_factor; }));
  } else {
    EXPECT_TRUE(cfg.rope_freq_factors.empty());
  }

  // The tokenizer is the source's.
  const std::unique_ptr<Tokenizer> want_tok = Tokenizer::from_gguf(src);
  const Tokenizer& tok = m->require_tokenizer();
  EXPECT_EQ(tok.n_vocab(), n_vocab);
  EXPECT_EQ(tok.model_name(), want_tok->model_name());
  for (const char* text : {"hello world", " the synthetic model, 42 times!", "héllo\nwörld"}) {
    EXPECT_EQ(tok.encode(text, true, false), want_tok->encode(text, true, false)) << text;
  }

  // Weights: unit norms, linear weights of standard deviation 1/sqrt(in), small biases.
  for (float x : f.read_f32("blk.0.ffn_norm.weight")) ASSERT_EQ(x, 1.0f);
  const auto [mean, sd] = moments(f.read_f32("blk.0.attn_q.weight"));
  EXPECT_NEAR(sd * std::sqrt(e.d_model), 1.0, 0.05);
  EXPECT_NEAR(mean * std::sqrt(e.d_model), 0.0, 0.05);
  if (e.bias) {
    const std::vector<float> b = f.read_f32("blk.0.attn_k.bias");
    const float amax = std::fabs(*std::max_element(
        b.begin(), b.end(), [](float x, float y) { return std::fabs(x) < std::fabs(y); }));
    EXPECT_GT(amax, 0.0f);
    EXPECT_LE(amax, 0.02f);
  }

  // A short prefill with the full policy gives finite, non-constant logits of a sane size.
  std::vector<int32_t> prompt = tok.encode("hello world, the synthetic model", true, false);
  ASSERT_GE(prompt.size(), 4u);
  std::unique_ptr<CompressionMethod> full = MethodRegistry::instance().create("full", {}, cfg.n_layer);
  KVCache cache;
  const PrefillOutput pre = m->prefill(prompt, *full, cache);
  ASSERT_EQ(pre.logits.size(), static_cast<size_t>(n_vocab));
  float lo = pre.logits[0], hi = pre.logits[0];
  for (float x : pre.logits) {
    ASSERT_TRUE(std::isfinite(x));
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  EXPECT_GT(hi - lo, 1e-3f);
  EXPECT_LT(std::max(std::fabs(lo), std::fabs(hi)), 1e3f);
  fs::remove_all(dir);
}

// Every --type at least once; the 8B-shaped presets with one layer, the small vocabulary and
// the smaller types, to keep the files (and the test's time) small.
INSTANTIATE_TEST_SUITE_P(Presets, SynthPreset,
                         ::testing::Values(PresetCase{"llama-3.2-1b", "bf16", 2, "tiny"},
                                           PresetCase{"llama-3.2-3b", "bf16", 1, "tiny"},
                                           PresetCase{"llama-3.1-8b", "q4_0", 1, "tiny"},
                                           PresetCase{"ministral-8b", "q4_0", 1, "tiny"},
                                           PresetCase{"smollm2-135m", "q8_0", 2, "gpt-2"},
                                           PresetCase{"smollm2-360m", "f16", 2, "llama-spm"},
                                           PresetCase{"qwen2.5-0.5b", "f32", 2, "tiny"},
                                           PresetCase{"qwen3-0.6b", "q8_0", 2, "tiny"},
                                           PresetCase{"gemma3-270m", "bf16", 7, "tiny"}),
                         [](const ::testing::TestParamInfo<PresetCase>& info) {
                           std::string s = info.param.like + "_" + info.param.type;
                           for (char& ch : s) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return s;
                         });

// ---- Types and determinism --------------------------------------------------------------------

TEST(SynthTypes, EveryTypeEncodesTheSameValues) {
  const std::string dir = scratch_dir();
  const std::string vocab = write_tiny_vocab(dir);
  std::map<std::string, uint64_t> size;
  std::map<std::string, std::vector<float>> up;
  for (const std::string type : {"f32", "bf16", "f16", "q8_0", "q4_0", "q5_0", "q5_1"}) {
    SCOPED_TRACE(type);
    const std::string out = dir + "/" + type + ".gguf";
    synth::write_model(options("qwen2.5-0.5b", type, vocab, out, 1));
    const gguf::File f = gguf::File::open(out);
    const TensorType t = synth::parse_type(type);
    EXPECT_EQ(f.get_int("general.file_type"), synth::file_type_of(t));
    EXPECT_EQ(f.has("general.quantization_version"), type[0] == 'q');
    for (const gguf::TensorInfo& info : f.tensors()) {
      EXPECT_EQ(info.type, info.ne.size() == 1 ? TensorType::F32 : t) << info.name;
    }
    size[type] = f.file_size();
    up[type] = f.read_f32("blk.0.ffn_up.weight");
    // Biases and norms are the same whatever the type.
    EXPECT_EQ(f.read_f32("blk.0.attn_q.bias"),
              gguf::File::open(dir + "/f32.gguf").read_f32("blk.0.attn_q.bias"));
  }
  // Each type is the f32 values, rounded as the type rounds.
  const std::vector<float>& ref = up["f32"];
  const float a = std::sqrt(3.0f / 896);  // the largest possible magnitude
  for (const auto& [type, tol] : std::map<std::string, float>{
           {"bf16", a / 256},
           {"f16", a / 2048},
           {"q8_0", a / 127},
           {"q4_0", a / 7},
           {"q5_0", a / 15},     // |d| <= a / 16; clamped elements are off by up to |d|
           {"q5_1", a / 30}}) {  // d <= 2a / 31, elements within d / 2 (+ m's f16 rounding)
    SCOPED_TRACE(type);
    const std::vector<float>& got = up[type];
    ASSERT_EQ(got.size(), ref.size());
    double max_err = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      max_err = std::max(max_err, static_cast<double>(std::fabs(got[i] - ref[i])));
    }
    EXPECT_LE(max_err, tol);
    EXPECT_GT(max_err, 0.0);  // really encoded as the type
  }
  EXPECT_GT(size["f32"], size["bf16"]);
  EXPECT_EQ(size["bf16"], size["f16"]);
  EXPECT_GT(size["f16"], size["q8_0"]);
  EXPECT_GT(size["q8_0"], size["q5_1"]);
  EXPECT_GT(size["q5_1"], size["q5_0"]);
  EXPECT_GT(size["q5_0"], size["q4_0"]);
  fs::remove_all(dir);
}

TEST(SynthDeterminism, SameSeedSameBytesAnyThreadCount) {
  const std::string dir = scratch_dir();
  const std::string vocab = write_tiny_vocab(dir);
  auto make = [&](const std::string& name, uint64_t seed, int layers) {
    synth::Options o = options("smollm2-135m", "q4_0", vocab, dir + "/" + name, layers);
    o.seed = seed;
    synth::write_model(o);
    return slurp(dir + "/" + name);
  };
  const int threads = omp_get_max_threads();
  const std::vector<uint8_t> a = make("a.gguf", 7, 2);
  omp_set_num_threads(threads == 1 ? 2 : 1);
  const std::vector<uint8_t> b = make("b.gguf", 7, 2);
  omp_set_num_threads(threads);
  const std::vector<uint8_t> c = make("c.gguf", 8, 2);
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b);
  ASSERT_EQ(a.size(), c.size());
  EXPECT_FALSE(a == c);
  // Different seeds differ in every weight tensor, not just somewhere.
  const gguf::File fa = gguf::File::open(dir + "/a.gguf"), fc = gguf::File::open(dir + "/c.gguf");
  for (const gguf::TensorInfo& t : fa.tensors()) {
    const bool same = std::equal(t.data, t.data + t.nbytes, fc.tensor(t.name).data);
    EXPECT_EQ(same, contains(t.name, "norm")) << t.name;
  }
  // Fewer layers: the same weights for the layers that remain.
  make("one.gguf", 7, 1);
  const gguf::File one = gguf::File::open(dir + "/one.gguf");
  EXPECT_EQ(one.tensors().size() + 9, fa.tensors().size());
  for (const gguf::TensorInfo& t : one.tensors()) {
    const gguf::TensorInfo& u = fa.tensor(t.name);
    ASSERT_EQ(t.nbytes, u.nbytes);
    EXPECT_TRUE(std::equal(t.data, t.data + t.nbytes, u.data)) << t.name;
  }
  fs::remove_all(dir);
}

// ---- The command line ------------------------------------------------------------------------

struct SynthCli : ::testing::Test {
  void SetUp() override {
    dir = scratch_dir();
    ASSERT_FALSE(dir.empty());
    vocab = write_tiny_vocab(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  // Runs `fastkv synth <args>` and expects exit 1 with one line "error: ..." holding `parts`.
  void expect_error(const std::string& args, const std::vector<std::string>& parts) {
    SCOPED_TRACE(args);
    const test::CommandResult r = test::run_fastkv("synth " + args);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    for (const std::string& p : parts) EXPECT_TRUE(contains(r.err, p)) << p << " not in " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  std::string ok_args(const std::string& out) const {
    return "--like smollm2-135m --type q8_0 --layers 1 --vocab " + quote(vocab) + " --out " +
           quote(out);
  }

  std::string dir, vocab;
};

TEST_F(SynthCli, WritesAModelThatRunGenerates) {
  const std::string out = dir + "/cli.gguf";
  const test::CommandResult r = test::run_fastkv("synth " + ok_args(out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;  // progress only on a terminal
  const gguf::File f = gguf::File::open(out);
  uint64_t params = 0;
  for (const gguf::TensorInfo& t : f.tensors()) params += static_cast<uint64_t>(t.n_elements());
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  for (const std::string& part :
       {std::string("smollm2-135m"), std::string("Q8_0"), std::string("1 layer,"),
        "vocab " + std::to_string(kTinyVocab), std::to_string(params) + " parameters",
        std::to_string(fs::file_size(out)) + " bytes", "-> " + out}) {
    EXPECT_TRUE(contains(r.out, part)) << part << " not in " << r.out;
  }
  // The default seed is 1.
  const test::CommandResult again =
      test::run_fastkv("synth " + ok_args(dir + "/seed1.gguf") + " --seed 1");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_TRUE(slurp(out) == slurp(dir + "/seed1.gguf"));

  const test::CommandResult run = test::run_fastkv("run -m " + quote(out) + " -p hello -n 4");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(contains(run.err, "generated tokens: 4")) << run.err;
}

TEST_F(SynthCli, BadInputIsAOneLineError) {
  const std::string out = dir + "/out.gguf";
  const std::string v = " --vocab " + quote(vocab) + " --out " + quote(out);
  expect_error("--like llama-4 --type bf16" + v,
               {"unknown model preset 'llama-4' for --like", "llama-3.2-1b", "llama-3.2-3b",
                "llama-3.1-8b", "ministral-8b", "smollm2-135m", "smollm2-360m", "qwen2.5-0.5b"});
  expect_error("--like smollm2-135m --type q3_k" + v,
               {"unknown --type 'q3_k' (supported: bf16, f16, q8_0, q4_0, q5_0, q5_1, q4_k, "
                "q5_k, q6_k, f32)"});
  // K-quants store rows in 256-element super-blocks: SmolLM2-135M's 576 do not fit.
  expect_error("--like smollm2-135m --type q4_k" + v,
               {"--type q4_k stores rows in blocks of 256 elements, but preset smollm2-135m",
                "rows of 576", "llama-3.2-1b"});
  expect_error("--like smollm2-135m --type bf16 --layers 0" + v,
               {"--layers must be between 1 and 1024, got 0"});
  expect_error("--like smollm2-135m --type bf16 --layers -3" + v, {"--layers", "got -3"});
  expect_error("--like smollm2-135m --type bf16 --layers 5000" + v, {"--layers", "got 5000"});

  // Vocabulary files.
  const std::string missing = dir + "/missing.gguf";
  expect_error("--like smollm2-135m --type bf16 --vocab " + quote(missing) + " --out " + quote(out),
               {missing, "No such file or directory"});
  const std::string text = dir + "/vocab.txt";
  std::ofstream(text) << "these are not tokens\n";
  expect_error("--like smollm2-135m --type bf16 --vocab " + quote(text) + " --out " + quote(out),
               {text, "not a GGUF file"});
  gguf::Writer bare;
  bare.set_string("general.architecture", "llama");
  bare.write(dir + "/bare.gguf");
  expect_error("--like smollm2-135m --type bf16 --vocab " + quote(dir + "/bare.gguf") + " --out " +
                   quote(out),
               {dir + "/bare.gguf: no tokenizer", "tokenizer.ggml.model", "--vocab"});
  gguf::Writer no_tokens;
  no_tokens.set_string("tokenizer.ggml.model", "gpt2");
  no_tokens.write(dir + "/notokens.gguf");
  expect_error("--like smollm2-135m --type bf16 --vocab " + quote(dir + "/notokens.gguf") +
                   " --out " + quote(out),
               {dir + "/notokens.gguf: no tokenizer", "tokenizer.ggml.tokens"});
  gguf::Writer empty_tokens;
  empty_tokens.set_string("tokenizer.ggml.model", "gpt2");
  empty_tokens.set_string_array("tokenizer.ggml.tokens", {});
  empty_tokens.write(dir + "/empty.gguf");
  expect_error("--like smollm2-135m --type bf16 --vocab " + quote(dir + "/empty.gguf") + " --out " +
                   quote(out),
               {dir + "/empty.gguf: tokenizer.ggml.tokens is empty"});
  EXPECT_FALSE(fs::exists(out));

  // Outputs.
  const std::string nodir = dir + "/no/such/dir/x.gguf";
  expect_error("--like smollm2-135m --type bf16 --layers 1 --vocab " + quote(vocab) + " --out " +
                   quote(nodir),
               {nodir + ": cannot open for writing: No such file or directory"});
  expect_error(
      "--like smollm2-135m --type bf16 --layers 1 --vocab " + quote(vocab) + " --out " + quote(dir),
      {dir + ": cannot open for writing: Is a directory"});
  const std::vector<uint8_t> vocab_bytes = slurp(vocab);
  expect_error("--like smollm2-135m --type bf16 --layers 1 --vocab " + quote(vocab) + " --out " +
                   quote(vocab),
               {"--out is the --vocab file"});
  EXPECT_TRUE(slurp(vocab) == vocab_bytes);
  if (fs::exists("/dev/full")) {
    expect_error(
        "--like smollm2-135m --type bf16 --layers 1 --vocab " + quote(vocab) + " --out /dev/full",
        {"/dev/full: write failed", "No space left on device"});
    EXPECT_TRUE(fs::is_character_file("/dev/full"));
  }
  // A file-size limit: the write fails part-way (EFBIG, not a SIGXFSZ kill) and the partial
  // file is removed. `ulimit -f` counts 512- or 1024-byte blocks: 1 MiB at most, the file
  // needs about 4.
  {
    const test::CommandResult r =
        test::run_shell("ulimit -f 1024 && '" + test::fastkv_bin() + "' synth " + ok_args(out));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_TRUE(contains(r.err, "error: " + out + ": write failed")) << r.err;
    EXPECT_TRUE(contains(r.err, "File too large")) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
  // Flag syntax (CLI11): a non-zero exit naming the flag.
  const test::CommandResult seed = test::run_fastkv("synth " + ok_args(out) + " --seed abc");
  EXPECT_NE(seed.exit_code, 0);
  EXPECT_TRUE(contains(seed.err, "--seed")) << seed.err;
  const test::CommandResult no_like =
      test::run_fastkv("synth --type bf16 --vocab " + quote(vocab) + " --out " + quote(out));
  EXPECT_NE(no_like.exit_code, 0);
  EXPECT_TRUE(contains(no_like.err, "--like")) << no_like.err;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace fastkv
