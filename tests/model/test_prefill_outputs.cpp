// What a prefill hands back besides logits (model/model.h): the final normed hidden states of
// the last tokens (TSP calibration) and the FLOP model (Model::prefill_flops) that calibration
// and `fastkv bench` predict speedups with, checked against the engine's own FLOP counters.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <numeric>

#include "cache/kv_cache.h"
#include "common/bf16.h"
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

// Another method seen through queries_read() and reads_keys(): `rows` < 0 says every row and
// the keys (the defaults), else `rows` and the wrapped method's reads_keys(); everything else is
// the wrapped method's.
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
  bool reads_keys() const override { return rows_ < 0 || m_->reads_keys(); }

 private:
  std::unique_ptr<CompressionMethod> m_;
  int rows_;
};

std::unique_ptr<CompressionMethod> method(const std::string& spec, int n_layer) {
  std::vector<MethodSpec> specs = parse_method_list(spec);
  resolve_methods(specs, {}, n_layer, nullptr);
  return create_policy(specs.at(0), n_layer);
}

// What a prefill decided and computed: every layer's cached positions and rows per head, the
// propagations, and the logits.
struct Outcome {
  std::vector<std::vector<std::vector<int32_t>>> cached;  // [layer][head] positions
  std::vector<std::vector<float>> f32_rows;               // [layer * head] K then V (f32 caches)
  std::vector<std::vector<uint16_t>> bf16_rows;           // [layer * head] K then V (bf16 caches)
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
      const HeadCache& hc = cache.layer(l).heads[h];
      o.cached.back().push_back(hc.pos);
      o.f32_rows.push_back(hc.k);
      o.f32_rows.back().insert(o.f32_rows.back().end(), hc.v.begin(), hc.v.end());
      o.bf16_rows.push_back(hc.kb);
      o.bf16_rows.back().insert(o.bf16_rows.back().end(), hc.vb.begin(), hc.vb.end());
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

// The methods that read no keys (reads_keys() false: full, StreamingLLM) have the bf16 path
// hold one block of f32 keys instead of all of them; over two blocks of tokens they still
// decide, cache and compute bit for bit what they do with every key held.
TEST(PrefillOutputs, HoldingOneBlockOfKeysChangesNothingForMethodsThatReadNone) {
  LoadOptions lo;
  lo.backend = kernels::Backend::kBf16;
  const std::unique_ptr<Model> m = Model::load(test::shared_path("models/tiny-llama-gqa.gguf"), lo);
  const int L = m->config().n_layer;
  const std::vector<int32_t> prompt = tokens(1100);  // blocks of 550
  for (const std::string spec : {"full", "streamingllm:retain_rate=0.2"}) {
    SCOPED_TRACE(spec);
    auto inner = method(spec, L);
    ASSERT_FALSE(inner->reads_keys());
    DeclaresQueries keys(method(spec, L), -1);
    const Outcome one_block = run(*m, prompt, *inner);
    EXPECT_TRUE(one_block == run(*m, prompt, keys));
    EXPECT_FALSE(one_block.bf16_rows.front().empty());
  }
}

// Nothing reads the last layer's output but for the tokens the prefill returns (the logits'
// rows, the hidden tail), so that layer runs attention, o_proj and MLP for those only. The
// last token's logits are those of a prefill that asks for every row's (which runs every row
// through it): bit for bit is not promised (o_proj and the MLP run on 1 row instead of n, a
// different GEMM shape); measured, the largest difference is 6.3e-7 (f32) and 2.9e-7 (bf16) of
// the logits' scale, so 1e-5 is float rounding with room, and a last row attending the wrong
// keys or missing its MLP would be far outside it. The counters drop exactly the skipped work.
TEST(PrefillOutputs, TheLastLayerRunsOnlyTheRowsTheOutputReads) {
  for (auto backend : {kernels::Backend::kF32, kernels::Backend::kBf16}) {
    SCOPED_TRACE(kernels::backend_name(backend));
    LoadOptions lo;
    lo.backend = backend;
    const std::unique_ptr<Model> m = Model::load(test::shared_path("models/tiny-llama-gqa.gguf"), lo);
    const ModelConfig& c = m->config();
    const int N = 300, V = c.n_vocab;
    const std::vector<int32_t> prompt = tokens(N);
    std::vector<int> every(N);
    std::iota(every.begin(), every.end(), 0);
    FullMethod full;
    KVCache cache;
    const PrefillOutput last = m->prefill(prompt, full, cache);
    const PrefillOutput all = m->prefill(prompt, full, cache, every);
    ASSERT_EQ(last.logits.size(), static_cast<size_t>(V));
    ASSERT_EQ(all.logits.size(), static_cast<size_t>(N) * V);
    float scale = 0, diff = 0;
    for (int j = 0; j < V; ++j) {
      const float want = all.logits[static_cast<size_t>(N - 1) * V + j];
      scale = std::max(scale, std::abs(want));
      diff = std::max(diff, std::abs(last.logits[j] - want));
    }
    EXPECT_GT(scale, 0.1f);
    EXPECT_LE(diff, 1e-5f * scale) << diff;
    // the skipped work: o_proj and MLP of N - 1 tokens, and their attention (a causal layer:
    // N(N+1)/2 query-key pairs, of which the last token's N remain)
    const LayerConfig& lc = c.layers.back();
    const double D = c.d_model, qd = lc.n_head * lc.head_dim;
    EXPECT_DOUBLE_EQ(all.stats.linear_flops - last.stats.linear_flops,
                     2.0 * (qd * D + 3 * D * lc.d_ff) * (N - 1) +
                         2.0 * D * V * (N - 1));  // and the LM head's N - 1 rows
    EXPECT_DOUBLE_EQ(all.stats.attention_flops - last.stats.attention_flops,
                     4.0 * qd * (N * (N + 1) / 2.0 - N));
    EXPECT_DOUBLE_EQ(m->full_prefill_flops(N), last.stats.linear_flops + last.stats.attention_flops);
  }
}

// A policy that propagates, after the last layer, a set without the last live token: the
// output would read a token whose last layer never ran. An error, not a stale answer.
class DropsTheLastTokenAtTheEnd : public CompressionMethod {
 public:
  std::string name() const override { return "drops-last"; }
  int queries_read(int, int) const override { return 0; }
  LayerDecision on_layer(const LayerInput& in) override {
    LayerDecision d;
    d.cache_heads = in.n_head_kv;
    if (in.layer + 1 == in.n_layer) {
      d.propagate = std::vector<int32_t>(in.n - 1);
      std::iota(d.propagate->begin(), d.propagate->end(), 0);
    }
    return d;
  }
};

TEST(PrefillOutputs, DroppingATokenTheOutputReadsAfterTheLastLayerIsAnError) {
  DropsTheLastTokenAtTheEnd drops;
  KVCache cache;
  try {
    stories().prefill(tokens(50), drops, cache);
    ADD_FAILURE() << "the prefill returned the logits of an unfinished token";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("drops one of the last 1 live tokens"), std::string::npos)
        << e.what();
  }
}

// Keeps every row and records each layer's keys (so the prefill holds them whole).
class RecordsKeys : public CompressionMethod {
 public:
  std::string name() const override { return "records-keys"; }
  int queries_read(int, int) const override { return 0; }
  LayerDecision on_layer(const LayerInput& in) override {
    keys.emplace_back(in.k, in.k + static_cast<size_t>(in.n) * in.n_head_kv * in.head_dim);
    LayerDecision d;
    d.cache_heads = in.n_head_kv;
    return d;
  }
  std::vector<std::vector<float>> keys;  // [layer][n, G, d]
};

// The bf16 path caches rows from the attention's bf16 copy (model.cpp, store_cache), not from
// the f32 keys: every cached key must still be the layer's f32 key rounded to nearest even,
// across the boundary of two blocks of tokens.
TEST(PrefillOutputs, Bf16CacheRowsAreTheLayersKeysNarrowed) {
  LoadOptions lo;
  lo.backend = kernels::Backend::kBf16;
  const std::unique_ptr<Model> m = Model::load(test::shared_path("models/tiny-llama-gqa.gguf"), lo);
  const int N = 1100, G = m->config().n_head_kv, d = m->config().head_dim;
  RecordsKeys rec;
  KVCache cache;
  m->prefill(tokens(N), rec, cache);
  ASSERT_EQ(rec.keys.size(), static_cast<size_t>(m->config().n_layer));
  int64_t rounded = 0;
  for (int l = 0; l < m->config().n_layer; ++l) {
    const LayerCache& lc = cache.layer(l);
    ASSERT_EQ(lc.row_type(), RowType::kBf16);
    ASSERT_EQ(lc.n_heads(), G);
    for (int h = 0; h < G; ++h) {
      ASSERT_EQ(lc.len(h), N);
      for (int i = 0; i < N; ++i) {
        for (int x = 0; x < d; ++x) {
          const float k = rec.keys[l][(static_cast<size_t>(i) * G + h) * d + x];
          ASSERT_EQ(lc.heads[h].kb[static_cast<size_t>(i) * d + x], f32_to_bf16(k))
              << "layer " << l << " head " << h << " token " << i;
          rounded += bf16_to_f32(f32_to_bf16(k)) != k;
        }
      }
    }
  }
  EXPECT_GT(rounded, 0) << "keys that need no rounding would prove nothing";
}

// Where a head's K rows are, whichever their type.
const void* rows_of(const HeadCache& h) {
  return h.k.empty() ? static_cast<const void*>(h.kb.data()) : h.k.data();
}

// A cache with decode headroom (KVCache::set_decode_headroom) takes that many decode steps
// without moving any head's rows (a move copies the head; the fastkv executable keeps the old
// copy's memory); without headroom the first step moves them. The headroom survives reset().
TEST(PrefillOutputs, DecodeHeadroomKeepsEveryHeadsRowsInPlace) {
  const Model& m = stories();
  const std::vector<int32_t> prompt = tokens(40);
  FullMethod full;
  for (const int headroom : {0, 5}) {
    SCOPED_TRACE(headroom);
    KVCache cache;
    cache.set_decode_headroom(headroom);
    const PrefillOutput out = m.prefill(prompt, full, cache);
    EXPECT_EQ(cache.decode_headroom(), headroom);
    ASSERT_NE(rows_of(cache.layer(0).heads[0]), nullptr);
    std::vector<const void*> where;
    for (int l = 0; l < cache.n_layer(); ++l) {
      for (const HeadCache& h : cache.layer(l).heads) where.push_back(rows_of(h));
    }
    for (int t = 0; t < 5; ++t) m.decode(7, out.stats.next_position + t, cache);
    size_t moved = 0, i = 0;
    for (int l = 0; l < cache.n_layer(); ++l) {
      for (const HeadCache& h : cache.layer(l).heads) {
        EXPECT_EQ(h.len(), 45);
        moved += rows_of(h) != where[i++];
      }
    }
    EXPECT_EQ(moved, headroom == 0 ? where.size() : 0u);
  }
  KVCache cache;
  EXPECT_THROW(cache.set_decode_headroom(-1), Error);
}

}  // namespace
}  // namespace fastkv
