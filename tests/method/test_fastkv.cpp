// FastKV invariants on the real (stories260K) and random-weight (tiny-llama-gqa,
// tiny-qwen2-gqa) models, plus config validation.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/error.h"
#include "model/model.h"
#include "method/fastkv.h"
#include "runtime/session.h"
#include "test_util.h"

namespace fastkv {
namespace {

// A prompt of n token ids spread over the vocabulary (deterministic), starting with BOS 1.
std::vector<int32_t> prompt_tokens(int n, int vocab) {
  std::vector<int32_t> t(n);
  t[0] = 1;
  for (int i = 1; i < n; ++i) t[i] = 3 + static_cast<int32_t>((i * 7919LL) % (vocab - 3));
  return t;
}

std::unique_ptr<CompressionMethod> make(const std::string& method, const MethodOptions& opts, int L) {
  return MethodRegistry::instance().create(method, opts, L);
}

struct GreedyRun {
  std::vector<std::vector<float>> logits;  // first token, then each decode step
  std::vector<int32_t> tokens;
  PrefillStats stats;
};

GreedyRun greedy(const Model& m, CompressionMethod& p, const std::vector<int32_t>& prompt, int steps) {
  GreedyRun r;
  KVCache cache;
  PrefillOutput out = m.prefill(prompt, p, cache);
  r.stats = out.stats;
  r.logits.push_back(out.logits);
  int64_t pos = static_cast<int64_t>(prompt.size());
  for (int s = 0; s < steps; ++s) {
    const std::vector<float>& l = r.logits.back();
    int32_t next = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
    r.tokens.push_back(next);
    r.logits.push_back(m.decode(next, pos++, cache));
  }
  return r;
}

class FastKVInvariants : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { model_ = Model::load(test::shared_path("models/" + GetParam())); }
  std::vector<int32_t> prompt() const {
    return prompt_tokens(GetParam() == "stories260K.gguf" ? 300 : 400, model_->config().n_vocab);
  }
  std::unique_ptr<Model> model_;
};

TEST_P(FastKVInvariants, CompressionWithoutTspNeverChangesPrefill) {
  const int L = model_->config().n_layer;
  FullMethod full;
  GreedyRun ref = greedy(*model_, full, prompt(), 0);
  for (const char* rate : {"0.05", "0.1", "0.5"}) {
    auto p = make("fastkv", {{"tsp_layer", "none"}, {"retain_rate", rate}}, L);
    GreedyRun r = greedy(*model_, *p, prompt(), 0);
    EXPECT_EQ(r.logits[0], ref.logits[0]) << "retain " << rate;  // bit for bit
    EXPECT_LT(r.stats.kept_rows[0], ref.stats.kept_rows[0]) << "retain " << rate;
  }
}

TEST_P(FastKVInvariants, RatesOfOneEqualFullGeneration) {
  const int L = model_->config().n_layer;
  FullMethod full;
  GreedyRun ref = greedy(*model_, full, prompt(), 12);
  auto p = make("fastkv", {{"tsp_rate", "1"}, {"retain_rate", "1"}}, L);
  GreedyRun r = greedy(*model_, *p, prompt(), 12);
  EXPECT_EQ(r.tokens, ref.tokens);
  EXPECT_EQ(r.logits, ref.logits);
}

TEST_P(FastKVInvariants, TspAtLastLayerKeepsFirstToken) {
  const int L = model_->config().n_layer;
  FullMethod full;
  GreedyRun ref = greedy(*model_, full, prompt(), 0);
  auto p = make("fastkv", {{"tsp_layer", std::to_string(L - 1)}}, L);
  GreedyRun r = greedy(*model_, *p, prompt(), 0);
  EXPECT_EQ(r.logits[0], ref.logits[0]);
  EXPECT_LT(r.stats.propagated, static_cast<int>(prompt().size()));
}

TEST_P(FastKVInvariants, TspShrinksLaterLayersAndCaches) {
  const ModelConfig& c = model_->config();
  auto p = make("fastkv", {}, c.n_layer);  // paper defaults: tsp 0.2, retain 0.1
  const std::vector<int32_t> pr = prompt();
  const int N = static_cast<int>(pr.size());
  GreedyRun r = greedy(*model_, *p, pr, 0);
  const int tsp_layer = std::max(0, c.n_layer / 2 - 1);
  for (int l = 0; l < c.n_layer; ++l) {
    EXPECT_EQ(r.stats.live_tokens[l], l <= tsp_layer ? N : static_cast<int>(N * 0.2)) << l;
    // every layer keeps about N × retain_rate rows per KV head
    const int n = r.stats.live_tokens[l];
    const double rho = l <= tsp_layer ? 0.1 : 0.1 / 0.2;
    EXPECT_EQ(r.stats.kept_rows[l], static_cast<int64_t>(static_cast<int>(n * rho)) * c.n_head_kv)
        << l;
  }
  EXPECT_EQ(r.stats.propagated, static_cast<int>(N * 0.2));
  EXPECT_TRUE(std::is_sorted(r.stats.final_positions.begin(), r.stats.final_positions.end()));
  EXPECT_EQ(r.stats.final_positions.back(), N - 1);
}

TEST_P(FastKVInvariants, DecodeContinuesAtPromptLengthNotCacheLength) {
  const ModelConfig& c = model_->config();
  const std::vector<int32_t> pr = prompt();
  const int64_t N = static_cast<int64_t>(pr.size());
  Session s(*model_, make("fastkv", {}, c.n_layer));
  std::vector<float> first = s.prefill(pr);
  const int64_t cache_len = s.cache().layer(0).heads[0].len();
  ASSERT_LT(cache_len, N);
  EXPECT_EQ(s.next_position(), N);
  const int32_t next = static_cast<int32_t>(std::max_element(first.begin(), first.end()) -
                                            first.begin());
  // Reference decodes on copies of the compressed cache at the two candidate positions.
  KVCache at_n = s.cache(), at_len = s.cache();
  std::vector<float> want = model_->decode(next, N, at_n);
  std::vector<float> wrong = model_->decode(next, cache_len, at_len);
  ASSERT_NE(want, wrong) << "test cannot tell the positions apart";
  std::vector<float> got = s.decode(next);
  EXPECT_EQ(got, want);
  for (int l = 0; l < c.n_layer; ++l) {
    for (const HeadCache& h : s.cache().layer(l).heads) EXPECT_EQ(h.pos.back(), N);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, FastKVInvariants,
                         ::testing::Values("stories260K.gguf", "tiny-llama-gqa.gguf",
                                           "tiny-qwen2-gqa.gguf"),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string s = i.param.substr(0, i.param.find('.'));
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

std::string error_of(const MethodOptions& opts, int L = 16) {
  try {
    make("fastkv", opts, L);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(FastKVConfig, DefaultsAreThePapers) {
  FastKVConfig c = FastKVConfig::from_options({}, 32);
  EXPECT_EQ(c.tsp_layer, 15);
  EXPECT_DOUBLE_EQ(c.tsp_rate, 0.2);
  EXPECT_DOUBLE_EQ(c.retain_rate, 0.1);
  EXPECT_EQ(c.window, 8);
  EXPECT_EQ(c.kernel, 7);
  EXPECT_EQ(c.pool, kernels::PoolType::kMax);
  EXPECT_EQ(c.kv_budget, 0);
  EXPECT_EQ(FastKVConfig::from_options({}, 16).tsp_layer, 7);
}

TEST(FastKVConfig, RejectsBadValues) {
  EXPECT_NE(error_of({{"retain_rate", "0"}}).find("--retain-rate"), std::string::npos);
  EXPECT_NE(error_of({{"retain_rate", "1.5"}}).find("(0, 1]"), std::string::npos);
  EXPECT_NE(error_of({{"tsp_rate", "-0.2"}}).find("--tsp-rate"), std::string::npos);
  EXPECT_NE(error_of({{"tsp_rate", "abc"}}).find("must be a number"), std::string::npos);
  EXPECT_NE(error_of({{"window", "0"}}).find("--window"), std::string::npos);
  EXPECT_NE(error_of({{"kernel", "4"}}).find("odd"), std::string::npos);
  EXPECT_NE(error_of({{"tsp_layer", "16"}}).find("not below"), std::string::npos);
  EXPECT_NE(error_of({{"tsp_layer", "-3"}}).find("--tsp-layer"), std::string::npos);
  EXPECT_NE(error_of({{"pool", "min"}}).find("--pool"), std::string::npos);
  EXPECT_NE(error_of({{"kv_budget", "0"}}).find("--kv-budget"), std::string::npos);
  EXPECT_NE(error_of({{"filter_layer", "3"}}).find("does not take --filter-layer"),
            std::string::npos);
  const std::string why = error_of({{"retain_rate", "0.3"}, {"tsp_rate", "0.2"}});
  EXPECT_NE(why.find("above --tsp-rate"), std::string::npos) << why;
  EXPECT_EQ(error_of({{"retain_rate", "0.3"}, {"tsp_rate", "0.2"}, {"tsp_layer", "none"}}), "");
}

TEST(FastKVSelect, SmallPromptsKeepEverything) {
  // n <= C, or C < w + 1: nothing is dropped and nothing is scored.
  FastKVConfig cfg;
  std::vector<float> q(20 * 2 * 4, 0.5f), k(20 * 1 * 4, 0.25f);
  FastKVLayerResult r = fastkv_select(cfg, q.data(), k.data(), 20, 2, 1, 4, 0.1, true, 20);
  EXPECT_FALSE(r.dropped);
  EXPECT_FALSE(r.tsp.has_value());
  EXPECT_EQ(r.keep[0].size(), 20u);
  EXPECT_EQ(r.scoring_flops, 0);
}


// Constant mode follows the authors' update_kv, which returns before compression and TSP when a
// layer has fewer live tokens than C (q_len < max_capacity_prompt). Random q, k (H = 4, G = 2,
// d = 8), w = 8, T = tsp_len = 16.
struct QK {
  static constexpr int H = 4, G = 2, d = 8;
  std::vector<float> q, k;
  explicit QK(int n) : q(test::uniform(static_cast<size_t>(n) * H * d, 11)),
                       k(test::uniform(static_cast<size_t>(n) * G * d, 12)) {}
};

FastKVConfig constant_config(int budget, int tsp_len) {
  FastKVConfig cfg;
  cfg.kv_budget = budget;
  cfg.tsp_len = tsp_len;
  cfg.tsp_layer = 0;
  return cfg;
}

TEST(FastKVSelect, ConstantModeBelowBudgetNeitherCompressesNorPropagates) {
  const FastKVConfig cfg = constant_config(64, 16);
  const int n = 40;  // n < C = 64, n > T = 16
  QK x(n);
  FastKVLayerResult r = fastkv_select(cfg, x.q.data(), x.k.data(), n, QK::H, QK::G, QK::d, 0.1,
                                      /*is_tsp_layer=*/true, n);
  EXPECT_FALSE(r.dropped);
  EXPECT_FALSE(r.tsp.has_value()) << "n < kv_budget: the authors propagate every token";
  ASSERT_EQ(r.keep.size(), static_cast<size_t>(QK::G));
  for (const auto& h : r.keep) EXPECT_EQ(h, all_indices(n));
}

TEST(FastKVSelect, ConstantModeAtBudgetPropagatesWithoutDropping) {
  const FastKVConfig cfg = constant_config(64, 16);
  const int n = 64;  // n == C: nothing dropped from the cache, but TSP runs (n > T)
  QK x(n);
  FastKVLayerResult r = fastkv_select(cfg, x.q.data(), x.k.data(), n, QK::H, QK::G, QK::d, 0.1,
                                      true, n);
  EXPECT_FALSE(r.dropped);
  for (const auto& h : r.keep) EXPECT_EQ(h, all_indices(n));
  ASSERT_TRUE(r.tsp.has_value());
  EXPECT_EQ(r.tsp->size(), 16u);
  EXPECT_TRUE(std::is_sorted(r.tsp->begin(), r.tsp->end()));
  for (int j = n - cfg.window; j < n; ++j) {
    EXPECT_TRUE(std::binary_search(r.tsp->begin(), r.tsp->end(), j)) << "window token " << j;
  }
  // Above the budget both steps run.
  QK y(80);
  FastKVLayerResult r2 = fastkv_select(cfg, y.q.data(), y.k.data(), 80, QK::H, QK::G, QK::d, 0.1,
                                       true, 80);
  EXPECT_TRUE(r2.dropped);
  EXPECT_EQ(r2.keep[0].size(), 64u);
  ASSERT_TRUE(r2.tsp.has_value());
  EXPECT_EQ(r2.tsp->size(), 16u);
}

TEST(FastKVSelect, ProportionalModeStillPropagates) {
  FastKVConfig cfg;  // retain 0.1, tsp 0.2: C = int(n × 0.1) <= n always
  cfg.tsp_layer = 0;
  const int n = 100;
  QK x(n);
  FastKVLayerResult r = fastkv_select(cfg, x.q.data(), x.k.data(), n, QK::H, QK::G, QK::d, 0.1,
                                      true, n);
  EXPECT_TRUE(r.dropped);
  EXPECT_EQ(r.capacity, 10);
  ASSERT_TRUE(r.tsp.has_value());
  EXPECT_EQ(r.tsp->size(), 20u);
}

// The same rule through the method object the prefill runs (FastKVMethod::on_layer).
TEST(FastKVMethodDecision, ConstantModePropagatesOnlyFromTheBudgetUp) {
  auto p = make("fastkv", {{"kv_budget", "64"}, {"tsp_len", "16"}, {"tsp_layer", "0"}}, 2);
  auto decide = [&](int n) {
    QK x(n);
    std::vector<int32_t> pos = all_indices(n);
    p->begin(n, 2);
    LayerInput in{0, 2, n, n, QK::H, QK::G, QK::d, x.q.data(), x.k.data(), pos.data()};
    return p->on_layer(in);
  };
  LayerDecision below = decide(40);
  EXPECT_FALSE(below.propagate.has_value());
  EXPECT_TRUE(below.keep_all);
  EXPECT_EQ(below.scoring_flops, 0) << "nothing to score below the budget";
  LayerDecision at = decide(64);
  EXPECT_TRUE(at.keep_all);
  ASSERT_TRUE(at.propagate.has_value());
  EXPECT_EQ(at.propagate->size(), 16u);
  LayerDecision above = decide(80);
  EXPECT_FALSE(above.keep_all);
  ASSERT_TRUE(above.propagate.has_value());
  EXPECT_EQ(above.propagate->size(), 16u);
  // Proportional mode as before: n = 40, C = int(40 × 0.1) = 4 < w + 1 (nothing dropped),
  // T = int(40 × 0.2) = 8 tokens go on.
  auto prop = make("fastkv", {{"tsp_layer", "0"}, {"window", "4"}}, 2);
  QK x(40);
  std::vector<int32_t> pos = all_indices(40);
  prop->begin(40, 2);
  LayerInput in{0, 2, 40, 40, QK::H, QK::G, QK::d, x.q.data(), x.k.data(), pos.data()};
  LayerDecision d = prop->on_layer(in);
  ASSERT_TRUE(d.propagate.has_value());
  EXPECT_EQ(d.propagate->size(), 8u);
}

}  // namespace
}  // namespace fastkv
