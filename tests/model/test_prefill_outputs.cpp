// What a prefill hands back besides logits (model/model.h): the final normed hidden states of
// the last tokens (TSP calibration) and the FLOP model (Model::prefill_flops) that calibration
// and `fastkv bench` predict speedups with, checked against the engine's own FLOP counters.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <numeric>

#include "cache/kv_cache.h"
#include "common/error.h"
#include "method/fastkv.h"
#include "method/method_list.h"
#include "model/model.h"
#include "test_util.h"

namespace fastkv {
namespace {

const Model& stories() {
  static const std::unique_ptr<Model> m = Model::load(test::shared_path("models/stories260K.gguf"));
  return *m;
}

std::vector<int32_t> tokens(int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = 1 + (i * 37 + 11) % 500;
  return t;
}

// Causality: token t's final hidden state in a prefill of N tokens is the last token's in a
// prefill of the first t + 1 tokens.
TEST(PrefillOutputs, FinalHiddenRowsAreTheLastTokensOldestFirst) {
  const Model& m = stories();
  const int D = m.config().d_model;
  const std::vector<int32_t> all = tokens(60);
  FullMethod full;
  KVCache cache;
  const PrefillOutput whole = m.prefill(all, full, cache, {}, {}, 4);
  ASSERT_EQ(whole.final_hidden.size(), static_cast<size_t>(4 * D));
  for (int k = 0; k < 4; ++k) {
    const int t = 56 + k;
    const std::vector<int32_t> prefix(all.begin(), all.begin() + t + 1);
    const PrefillOutput part = m.prefill(prefix, full, cache, {}, {}, 1);
    ASSERT_EQ(part.final_hidden.size(), static_cast<size_t>(D));
    for (int j = 0; j < D; ++j) {
      EXPECT_NEAR(whole.final_hidden[static_cast<size_t>(k) * D + j], part.final_hidden[j], 2e-4)
          << "token " << t << " channel " << j;
    }
  }
  // Normed: each row's RMS divided by the norm weights' RMS scale is not the raw stream's.
  double ss = 0;
  for (int j = 0; j < D; ++j) ss += whole.final_hidden[j] * whole.final_hidden[j];
  EXPECT_GT(ss, 0);
  // No tail asked: nothing returned; more than N asked: N rows.
  EXPECT_TRUE(m.prefill(all, full, cache).final_hidden.empty());
  EXPECT_EQ(m.prefill(tokens(3), full, cache, {}, {}, 10).final_hidden.size(),
            static_cast<size_t>(3 * D));
  EXPECT_THROW(m.prefill(all, full, cache, {}, {}, -1), Error);
}

// Prompts longer than one block of the per-token work (model.cpp's kBlockRows = 1024 rows: the
// Q/K/V, output and MLP projections run over equal blocks, 2 x 550 here, in buffers shared with
// the attention phase): the block boundary changes nothing, as causality shows: token t's final
// hidden state equals the last token's of the prefill of the first t + 1 tokens (one block).
TEST(PrefillOutputs, LongPromptsRunInBlocksWithTheSameResults) {
  const Model& m = stories();
  const int D = m.config().d_model;
  const int N = 1100, tail = 551;  // rows 549 .. 1099: both sides of the block edge at 550
  const std::vector<int32_t> all = tokens(N);
  FullMethod full;
  KVCache cache;
  const PrefillOutput whole = m.prefill(all, full, cache, {}, {}, tail);
  ASSERT_EQ(whole.final_hidden.size(), static_cast<size_t>(tail) * D);
  for (int t : {549, 550, 551}) {
    const std::vector<int32_t> prefix(all.begin(), all.begin() + t + 1);
    const PrefillOutput part = m.prefill(prefix, full, cache, {}, {}, 1);
    const size_t row = static_cast<size_t>(t - (N - tail)) * D;
    for (int j = 0; j < D; ++j) {
      EXPECT_NEAR(whole.final_hidden[row + j], part.final_hidden[j], 2e-4)
          << "token " << t << " channel " << j;
    }
  }
}

TEST(PrefillOutputs, FlopModelMatchesTheEngineCounters) {
  const Model& m = stories();
  const int L = m.config().n_layer;
  const std::vector<int32_t> t = tokens(200);
  KVCache cache;
  FullMethod full;
  const PrefillStats fs = m.prefill(t, full, cache).stats;
  EXPECT_DOUBLE_EQ(m.full_prefill_flops(200), fs.linear_flops + fs.attention_flops);
  FastKVConfig cfg;
  cfg.tsp_layer = 1;
  cfg.validate(L);
  FastKVMethod fk(cfg);
  const PrefillStats ks = m.prefill(t, fk, cache).stats;
  ASSERT_EQ(ks.live_tokens.size(), static_cast<size_t>(L));
  EXPECT_EQ(ks.live_tokens[1], 200);
  EXPECT_EQ(ks.live_tokens[2], 40);  // int(200 × 0.2) after the TSP layer
  EXPECT_DOUBLE_EQ(m.prefill_flops(ks.live_tokens), ks.linear_flops + ks.attention_flops);
  EXPECT_GT(m.full_prefill_flops(200), m.prefill_flops(ks.live_tokens));
  EXPECT_THROW(m.prefill_flops({1, 2}), Error);
}

// Another method seen through queries_read(): `rows` < 0 says every row (the default), else
// `rows`; everything else is the wrapped method's.
class DeclaresQueries : public CompressionMethod {
 public:
  DeclaresQueries(std::unique_ptr<CompressionMethod> m, int rows) : m_(std::move(m)), rows_(rows) {}
  std::string name() const override { return m_->name(); }
  void begin(int n_prompt, int n_layer) override { m_->begin(n_prompt, n_layer); }
  LayerDecision on_layer(const LayerInput& in) override { return m_->on_layer(in); }
  bool wants_attention_column_sums(int layer, int n) const override {
    return m_->wants_attention_column_sums(layer, n);
  }
  int queries_read(int, int n) const override { return rows_ < 0 ? n : rows_; }

 private:
  std::unique_ptr<CompressionMethod> m_;
  int rows_;
};

std::unique_ptr<CompressionMethod> method(const std::string& spec, int n_layer) {
  std::vector<MethodSpec> specs = parse_method_list(spec);
  resolve_methods(specs, {}, n_layer, nullptr);
  return create_policy(specs.at(0), n_layer);
}

// What a prefill decided and computed: every layer's cached positions per head, the
// propagations, and the logits.
struct Outcome {
  std::vector<std::vector<std::vector<int32_t>>> cached;  // [layer][head] positions
  std::vector<std::vector<int32_t>> propagated;
  std::vector<float> logits;
  bool operator==(const Outcome&) const = default;
};

Outcome run(const Model& m, const std::vector<int32_t>& prompt, CompressionMethod& p) {
  KVCache cache;
  Outcome o;
  const PrefillOutput out = m.prefill(prompt, p, cache);
  for (int l = 0; l < m.config().n_layer; ++l) {
    o.cached.emplace_back();
    for (int h = 0; h < cache.layer(l).n_heads(); ++h) {
      o.cached.back().push_back(cache.layer(l).positions(h));
    }
  }
  for (const auto& step : out.stats.propagations) o.propagated.push_back(step.positions);
  o.logits = out.logits;
  return o;
}

// The prefill keeps only the query rows a method says it reads (queries_read(), its last rows;
// model.cpp, "Activations"): the layer's other query rows exist only while their block of
// tokens is attended. Every registered method decides and computes exactly (bit for bit) what
// it does when every query row is kept, so each one's queries_read() covers all it reads; a
// method that claims fewer rows than it reads (FastKV claiming none) sees zeros and decides
// otherwise, so this check would catch one.
TEST(PrefillOutputs, KeepingOnlyTheQueriesAMethodReadsChangesNothingForEveryMethod) {
  const std::vector<std::string> specs = {
      "full", "fastkv:tsp_layer=1:tsp_rate=0.3:retain_rate=0.2", "snapkv:retain_rate=0.2",
      "adakv:retain_rate=0.2", "h2o:retain_rate=0.2", "streamingllm:retain_rate=0.2",
      "gemfilter:filter_layer=1:retain_rate=0.2", "pyramidinfer:recent_ratio=0.2:decay=0.5"};
  std::set<std::string> covered;
  for (const std::string& s : specs) covered.insert(s.substr(0, s.find(':')));
  for (const std::string& name : MethodRegistry::instance().names()) {
    EXPECT_TRUE(covered.count(name)) << name << " is registered but not checked here";
  }
  // Both attention kernels: the f32 reference's and the bf16 path's.
  for (const auto& [file, backend] :
       {std::pair{"models/tiny-llama-gqa.gguf", kernels::Backend::kF32},
        std::pair{"models/tiny-llama-gqa.gguf", kernels::Backend::kBf16},
        std::pair{"models/stories260K.gguf", kernels::Backend::kBf16}}) {
    LoadOptions lo;
    lo.backend = backend;
    const std::unique_ptr<Model> m = Model::load(test::shared_path(file), lo);
    const int L = m->config().n_layer;
    const std::vector<int32_t> prompt = tokens(300);
    for (const std::string& spec : specs) {
      SCOPED_TRACE(std::string(file) + " " + kernels::backend_name(backend) + " " + spec);
      auto inner = method(spec, L);
      ASSERT_LT(inner->queries_read(1, 300), 300) << "the prefill would keep every query";
      DeclaresQueries all(method(spec, L), -1);
      const Outcome over_q = run(*m, prompt, *inner);
      const Outcome whole = run(*m, prompt, all);
      EXPECT_TRUE(over_q == whole);
      if (spec != "full") {  // it dropped something: the comparison saw a decision
        EXPECT_LT(over_q.cached.back().front().size(), prompt.size());
      }
    }
    DeclaresQueries lying(method(specs[1], L), 0);
    DeclaresQueries honest(method(specs[1], L), -1);
    EXPECT_FALSE(run(*m, prompt, lying) == run(*m, prompt, honest)) << file;
  }
}

}  // namespace
}  // namespace fastkv
