// Model::decode_batch: one decode step of several sequences (each with its own cache, of
// different lengths and compression methods) equals decoding each sequence alone, step after
// step, on every backend the models load with; bad arguments are errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cache/kv_cache.h"
#include "common/error.h"
#include "method/method.h"
#include "model/model.h"
#include "model/synth.h"
#include "runtime/sampler.h"
#include "test_util.h"

namespace fastkv {
namespace {

struct Seq {
  std::unique_ptr<CompressionMethod> method;
  KVCache cache;
  int64_t pos = 0;
  std::vector<float> logits;  // [V] the last step's
};

// Prefills `prompt` with `method` (its text options) into a fresh sequence.
Seq start(const Model& m, const std::vector<int32_t>& prompt, const std::string& method,
          const MethodOptions& opts) {
  Seq s;
  s.method = MethodRegistry::instance().create(method, opts, m.config().n_layer);
  PrefillOutput out = m.prefill(prompt, *s.method, s.cache);
  s.pos = out.stats.next_position;
  s.logits = std::move(out.logits);
  return s;
}

// exact: every batched logit has the bits of the same sequence decoded alone (quantised weights:
// the multi-row dot kernels sum each row as the single-row ones do).
void expect_batch_equals_alone(const std::string& path, kernels::Backend backend,
                               bool exact = false) {
  SCOPED_TRACE(path + " " + kernels::backend_name(backend));
  LoadOptions lo;
  lo.backend = backend;
  auto m = Model::load(path, lo);
  const int V = m->config().n_vocab;
  // Relative to max|logit|. f32: the same f32 kernels on one row or B rows, differing only in
  // accumulation order. bf16: on a CPU with AMX, oneDNN runs the B-row GEMMs on AMX, which
  // rounds the activations to bf16 (as prefill does), while one row keeps them f32; measured
  // up to 3.8e-3 on tiny-llama-gqa (random weights, the model that amplifies rounding most,
  // see golden_logits.cpp), equal where the CPU has no AMX.
  const float tolerance = backend == kernels::Backend::kBf16 ? 1e-2f : 2e-3f;
  // Three prompts of different lengths, three methods: caches of different sizes and shapes.
  std::vector<std::vector<int32_t>> prompts;
  for (int n : {37, 5, 120}) {
    std::vector<int32_t> p;
    for (int i = 0; i < n; ++i) p.push_back(1 + (i * 7 + n) % (V - 1));
    prompts.push_back(p);
  }
  const std::vector<std::pair<std::string, MethodOptions>> methods = {
      {"full", {}},
      {"streamingllm", {{"kv_budget", "16"}}},
      {"snapkv", {{"kv_budget", "24"}}}};
  std::vector<Seq> alone, batch;
  for (size_t b = 0; b < prompts.size(); ++b) {
    alone.push_back(start(*m, prompts[b], methods[b].first, methods[b].second));
    batch.push_back(start(*m, prompts[b], methods[b].first, methods[b].second));
  }
  for (int step = 0; step < 6; ++step) {
    std::vector<int32_t> tokens;
    std::vector<int64_t> pos;
    std::vector<KVCache*> caches;
    for (size_t b = 0; b < alone.size(); ++b) {
      tokens.push_back(argmax(alone[b].logits));
      pos.push_back(alone[b].pos);
      caches.push_back(&batch[b].cache);
    }
    const std::vector<float> logits = m->decode_batch(tokens, pos, caches);
    ASSERT_EQ(logits.size(), alone.size() * static_cast<size_t>(V));
    for (size_t b = 0; b < alone.size(); ++b) {
      alone[b].logits = m->decode(tokens[b], alone[b].pos, alone[b].cache);
      ++alone[b].pos;
      const std::vector<float> row(logits.begin() + b * V, logits.begin() + (b + 1) * V);
      float scale = 0, diff = 0;
      for (int v = 0; v < V; ++v) {
        scale = std::max(scale, std::fabs(alone[b].logits[v]));
        diff = std::max(diff, std::fabs(alone[b].logits[v] - row[v]));
      }
      EXPECT_LE(diff, tolerance * std::max(scale, 1.0f)) << "sequence " << b << " step " << step;
      if (exact) {
        EXPECT_EQ(std::memcmp(row.data(), alone[b].logits.data(), sizeof(float) * V), 0)
            << "sequence " << b << " step " << step << ": not bit-identical";
      }
      EXPECT_EQ(argmax(row), argmax(alone[b].logits)) << "sequence " << b << " step " << step;
      EXPECT_EQ(batch[b].cache.bytes(), alone[b].cache.bytes()) << "sequence " << b;
    }
  }
}

void expect_batch_equals_alone(const char* name) {
  const std::string path = test::shared_path(std::string("models/") + name);
  for (kernels::Backend be : {kernels::Backend::kF32, kernels::Backend::kBf16}) {
    expect_batch_equals_alone(path, be);
  }
}

TEST(DecodeBatch, EqualsDecodingEachSequenceAloneStories) {
  expect_batch_equals_alone("stories260K.gguf");
}
TEST(DecodeBatch, EqualsDecodingEachSequenceAloneLlamaGqa) {
  expect_batch_equals_alone("tiny-llama-gqa.gguf");
}
TEST(DecodeBatch, EqualsDecodingEachSequenceAloneQwen2Gqa) {
  expect_batch_equals_alone("tiny-qwen2-gqa.gguf");
}

// Quantised weights (`--backend quant`, synthetic models as test_backend_quant's): the batched
// step runs the multi-row dot kernels, and each sequence's logits are bit-identical to decoding
// it alone (the server's promise: the same greedy output alone or batched). SmolLM2's width 576
// is 18 blocks (a 16-block step and a tail); the 1B shape's 2048 is 8 super-blocks.
TEST(DecodeBatch, QuantisedBatchIsBitIdenticalToAlone) {
  const std::string dir = test::temp_dir();
  struct Case {
    const char* type;
    const char* like;
  };
  for (const Case& c : {Case{"q4_0", "smollm2-135m"}, Case{"q8_0", "smollm2-135m"},
                        Case{"q5_1", "smollm2-135m"}, Case{"q4_k", "llama-3.2-1b"},
                        Case{"q6_k", "llama-3.2-1b"}}) {
    synth::Options o;
    o.like = c.like;
    o.type = c.type;
    o.vocab = test::shared_path("models/stories260K.gguf");
    o.out = dir + "/" + c.type + ".gguf";
    o.layers = 1;
    synth::write_model(o);
    expect_batch_equals_alone(o.out, kernels::Backend::kQuant, /*exact=*/true);
  }
}

TEST(DecodeBatch, BadArgumentsAreErrors) {
  auto m = Model::load(test::shared_path("models/stories260K.gguf"));
  Seq a = start(*m, {1, 2, 3}, "full", {});
  Seq b = start(*m, {4, 5}, "full", {});
  KVCache empty;
  EXPECT_THROW(m->decode_batch({}, {}, {}), Error);
  EXPECT_THROW(m->decode_batch({7, 8}, {a.pos}, {&a.cache, &b.cache}), Error);
  EXPECT_THROW(m->decode_batch({7, 8}, {a.pos, a.pos}, {&a.cache, &a.cache}), Error);
  EXPECT_THROW(m->decode_batch({7, 8}, {a.pos, 0}, {&a.cache, &empty}), Error);
  EXPECT_THROW(m->decode_batch({7, 8}, {a.pos, b.pos}, {&a.cache, nullptr}), Error);
  EXPECT_EQ(m->decode_batch({7, 8}, {a.pos, b.pos}, {&a.cache, &b.cache}).size(),
            2u * m->config().n_vocab);
}

}  // namespace
}  // namespace fastkv
