// A new score-and-keep method is one file plus its registration: this file defines a toy
// method ("recency": a key's score is its position, so each head keeps the newest C - w keys
// before the window, plus the window), declares its options, registers it, and runs it
// through the real stories260K model by name, with options given as text and as typed values.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/error.h"
#include "model/model.h"
#include "method/method.h"
#include "method/scorer.h"
#include "test_util.h"

namespace fastkv {
namespace {

// The whole method: scores [G, n - w] = the live token's index.
class RecencyMethod : public ScorerMethod {
 public:
  explicit RecencyMethod(const BudgetConfig& b) : ScorerMethod("recency", b) {}

 protected:
  KeyScores score(const LayerInput& in) override {
    KeyScores s;
    s.cache_heads = in.n_head_kv;
    s.stride = in.n - budget().window;
    s.scores.resize(static_cast<size_t>(s.cache_heads) * s.stride);
    for (int h = 0; h < s.cache_heads; ++h) {
      for (int j = 0; j < s.stride; ++j) s.scores[h * s.stride + j] = static_cast<float>(j);
    }
    return s;
  }
};

// Its registration: the schema (shared budget options) and the factory.
void register_recency(MethodRegistry& reg) {
  reg.add({"recency", budget_schema({.window = true}, BudgetConfig{}),
           [](const OptionSet& opts, int) -> std::unique_ptr<CompressionMethod> {
             BudgetConfig b;
             read_budget(opts, b);
             return std::make_unique<RecencyMethod>(b);
           }});
}

std::vector<int32_t> prompt_tokens(int n, int vocab) {
  std::vector<int32_t> t(n);
  t[0] = 1;
  for (int i = 1; i < n; ++i) t[i] = 3 + static_cast<int32_t>((i * 7919LL) % (vocab - 3));
  return t;
}

TEST(ToyScorer, RegisteredMethodRunsThroughTheModel) {
  register_recency(MethodRegistry::instance());
  ASSERT_TRUE(MethodRegistry::instance().has("recency"));
  auto model = Model::load(test::shared_path("models/stories260K.gguf"));
  const int L = model->config().n_layer;
  const int G = model->config().n_head_kv;
  const int N = 200;
  const std::vector<int32_t> prompt = prompt_tokens(N, model->config().n_vocab);

  // Text options (the command line's path): C = int(200 × 0.25) = 50 rows per KV head.
  auto p = MethodRegistry::instance().create("recency", {{"retain_rate", "0.25"}}, L);
  KVCache cache;
  PrefillOutput out = model->prefill(prompt, *p, cache);
  ASSERT_EQ(out.stats.kept_rows.size(), static_cast<size_t>(L));
  for (int l = 0; l < L; ++l) EXPECT_EQ(out.stats.kept_rows[l], 50LL * G) << "layer " << l;
  EXPECT_EQ(out.stats.live_tokens[0], N);

  // Keeping the newest rows is exactly StreamingLLM without sinks; compare against the
  // decision itself on one layer: the top (C - w) by index are the newest.
  std::vector<float> q(static_cast<size_t>(N) * 8), k(static_cast<size_t>(N) * 8);
  LayerInput in;
  in.n_layer = L;
  in.n_prompt = in.n = N;
  in.n_head = in.n_head_kv = 1;
  in.head_dim = 8;
  in.q = q.data();
  in.k = k.data();
  LayerDecision d = p->on_layer(in);
  ASSERT_FALSE(d.keep_all);
  ASSERT_EQ(d.keep.size(), 1u);
  std::vector<int32_t> kept = d.keep[0];
  std::sort(kept.begin(), kept.end());
  ASSERT_EQ(kept.size(), 50u);
  EXPECT_EQ(kept.front(), N - 50);
  EXPECT_EQ(kept.back(), N - 1);

  // Typed options (the server's path) and the schema's checks apply to the new method too.
  auto typed = MethodRegistry::instance().create_typed("recency", {{"kv_budget", int64_t{30}}}, L);
  KVCache cache2;
  PrefillOutput out2 = model->prefill(prompt, *typed, cache2);
  for (int l = 0; l < L; ++l) EXPECT_EQ(out2.stats.kept_rows[l], 30LL * G) << "layer " << l;
  try {
    MethodRegistry::instance().create_typed("recency", {{"kernel", int64_t{7}}}, L);
    ADD_FAILURE() << "recency took kernel";
  } catch (const OptionError& e) {
    EXPECT_EQ(e.kind(), OptionError::Kind::kUnknownKey);
    EXPECT_EQ(std::string(e.what()), "method 'recency' does not take kernel");
  }
}

}  // namespace
}  // namespace fastkv
