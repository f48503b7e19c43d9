// FastKV and its baselines on a hybrid model (docs/fastkv.md, "Hybrid models"): the tiny random
// Gemma 3 of tests/golden/arch (6 layers, layers 0-4 local with a 16-token window, layer 5
// global; made by scripts/golden/tiny_model.cpp, checked against llama.cpp in
// golden_arch_logits).
//   - a local layer's cache holds exactly the live tokens whose original positions the last
//     prompt token sees, for every method; global layers hold what the method chose;
//   - FastKV's TSP runs after the first global layer at or after its TSP layer;
//   - after TSP, a local layer attends by original position: its cached positions are the
//     propagated ones inside the window, not the last `window` live rows (on a copy of the
//     model with attention.sliding_window_pattern = 3: layers 2 and 5 global, so local layers
//     3 and 4 come after TSP);
//   - decode through a local layer's bounded cache gives the logits of a prefill of the same
//     tokens (the rows it drops are the ones no query can see);
//   - the FLOP counters count the band.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "method/method_list.h"
#include "model/model.h"
#include "test_util.h"

namespace fastkv {
namespace {

std::string tiny_gemma3() {
  return std::string(FASTKV_SOURCE_DIR) + "/tests/golden/arch/tiny-gemma3.F16.gguf";
}

// n tokens of the 512-token vocabulary, fixed.
std::vector<int32_t> prompt(int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = 1 + (i * 37 + 11) % 500;
  return t;
}

// A copy of the tiny Gemma 3 with attention.sliding_window_pattern = 3 added (layer l local
// when l % 3 < 2), written to a temporary folder.
std::string tiny_gemma3_pattern3() {
  const gguf::File src = gguf::File::open(tiny_gemma3());
  gguf::Writer w;
  for (const auto& [key, value] : src.metadata()) w.set(key, value);
  w.set_u32("gemma3.attention.sliding_window_pattern", 3);
  for (const gguf::TensorInfo& t : src.tensors()) {
    w.add_raw(t.name, t.type, t.ne, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  const std::string path = test::temp_dir() + "/tiny-gemma3-pattern3.gguf";
  w.write(path);
  return path;
}

std::unique_ptr<CompressionMethod> policy(const std::string& spec, int n_layer) {
  std::vector<MethodSpec> specs = parse_method_list(spec);
  resolve_methods(specs, {}, n_layer, nullptr);
  return create_policy(specs.at(0), n_layer);
}

class HybridWindow : public ::testing::Test {
 protected:
  void SetUp() override {
    m_ = Model::load(tiny_gemma3());
    const ModelConfig& c = m_->config();
    ASSERT_EQ(c.arch, "gemma3");
    ASSERT_EQ(c.sliding_window, 16);
    ASSERT_EQ(c.n_layer, 6);
    for (int l = 0; l < 6; ++l) ASSERT_EQ(c.layers[l].local(), l != 5) << l;
  }
  std::unique_ptr<Model> m_;
};

// For every method: each local layer's cache holds, in every head, the positions of the live
// tokens at that layer with pos > last - 16; the global layer holds what the method kept.
TEST_F(HybridWindow, LocalLayersKeepTheirWindowForEveryMethod) {
  const int N = 120, w = 16;
  const std::vector<int32_t> tokens = prompt(N);
  for (const std::string spec :
       {"full", "fastkv:tsp_layer=5:tsp_rate=0.3:retain_rate=0.2", "snapkv:retain_rate=0.2",
        "streamingllm:retain_rate=0.2", "h2o:retain_rate=0.2", "adakv:retain_rate=0.2"}) {
    auto p = policy(spec, m_->config().n_layer);
    KVCache cache;
    const PrefillOutput out = m_->prefill(tokens, *p, cache);
    // The live positions at each layer: 0..N-1, then each propagation's set.
    std::vector<int32_t> live(N);
    std::iota(live.begin(), live.end(), 0);
    size_t next_prop = 0;
    for (int l = 0; l < 6; ++l) {
      const LayerCache& lc = cache.layer(l);
      if (l != 5) {
        std::vector<int32_t> want;
        for (int32_t q : live) {
          if (q > live.back() - w) want.push_back(q);
        }
        ASSERT_EQ(lc.n_heads(), m_->config().n_head_kv) << spec << " layer " << l;
        for (int h = 0; h < lc.n_heads(); ++h) {
          std::vector<int32_t> got = lc.positions(h);
          std::sort(got.begin(), got.end());
          EXPECT_EQ(got, want) << spec << " layer " << l << " head " << h;
        }
      } else if (std::string(spec) == "full") {
        EXPECT_EQ(lc.rows(), static_cast<int64_t>(N) * m_->config().n_head_kv);
      } else {
        // The method compressed the global layer (retain 0.2 of the prompt).
        EXPECT_LT(lc.rows(), static_cast<int64_t>(live.size()) * lc.n_heads()) << spec;
      }
      while (next_prop < out.stats.propagations.size() &&
             out.stats.propagations[next_prop].layer == l) {
        live = out.stats.propagations[next_prop].positions;
        ++next_prop;
      }
    }
    if (spec.rfind("fastkv", 0) == 0) {
      ASSERT_EQ(out.stats.propagations.size(), 1u) << "TSP after layer 5";
      EXPECT_EQ(out.stats.propagations[0].layer, 5);
      EXPECT_EQ(out.stats.propagations[0].positions.size(), static_cast<size_t>(N * 3 / 10));
    }
  }
}

// TSP at a local layer is deferred to the next global layer: with the default pattern the
// only global layer is the last one, so asking for TSP after layer 0 propagates after layer 5.
TEST_F(HybridWindow, TspRunsAfterTheFirstGlobalLayerAtOrAfterTheTspLayer) {
  auto p = policy("fastkv:tsp_layer=0:tsp_rate=0.2:retain_rate=0.1", 6);
  KVCache cache;
  const PrefillOutput out = m_->prefill(prompt(200), *p, cache);
  ASSERT_EQ(out.stats.propagations.size(), 1u);
  EXPECT_EQ(out.stats.propagations[0].layer, 5);
  for (int l = 0; l < 6; ++l) EXPECT_EQ(out.stats.live_tokens[l], 200) << l;
}

// No scoring work on local layers: H2O's attention column sums (the O(n²) pass) run only on the
// global layer, and a scoring method reports only the global layer's window scores.
TEST_F(HybridWindow, LocalLayersSpendNothingOnScoring) {
  const int N = 100;
  const LayerConfig& g = m_->config().layers[5];
  KVCache cache;
  auto h2o = policy("h2o:retain_rate=0.2", 6);
  const PrefillOutput out = m_->prefill(prompt(N), *h2o, cache);
  // the global layer's column sums (plus H2O's own O(H·n) score sums); all six layers' would be
  // six times as much
  const double colsum = 4.0 * g.n_head * g.head_dim * (N * (N + 1) / 2.0);
  EXPECT_GE(out.stats.scoring_flops, colsum);
  EXPECT_LT(out.stats.scoring_flops, 1.01 * colsum);
  auto snap = policy("snapkv:retain_rate=0.2", 6);
  const PrefillOutput one = m_->prefill(prompt(N), *snap, cache);
  // window scores of the last 8 queries of every head against the n - 8 earlier keys, one layer
  EXPECT_GT(one.stats.scoring_flops, 0.0);
  EXPECT_LE(one.stats.scoring_flops, 2.0 * 2 * g.n_head * g.head_dim * 8.0 * N);
}

// GemFilter's filter layer moves past local layers the same way: asking for layer 1 restarts
// the prefill from the selection of layer 5, the first global layer.
TEST_F(HybridWindow, GemFilterFiltersAtTheFirstGlobalLayerAtOrAfterItsLayer) {
  auto p = policy("gemfilter:filter_layer=1:retain_rate=0.2", 6);
  KVCache cache;
  const PrefillOutput out = m_->prefill(prompt(200), *p, cache);
  ASSERT_EQ(out.stats.propagations.size(), 1u);
  EXPECT_TRUE(out.stats.propagations[0].restart);
  EXPECT_EQ(out.stats.propagations[0].layer, 5);
  EXPECT_EQ(out.stats.passes, 2);
}

// After TSP the live tokens are spread over the prompt: a local layer's cache is the propagated
// tokens inside the window by original position, fewer than 16 rows, never the last 16 live
// rows (which would reach back far beyond the window).
TEST(HybridWindowPattern3, AfterTspTheWindowIsByOriginalPosition) {
  const std::unique_ptr<Model> m = Model::load(tiny_gemma3_pattern3());
  for (int l = 0; l < 6; ++l) ASSERT_EQ(m->config().layers[l].local(), l % 3 < 2) << l;
  const int N = 200;
  auto p = policy("fastkv:tsp_layer=1:tsp_rate=0.2:retain_rate=0.1", 6);
  KVCache cache;
  const PrefillOutput out = m->prefill(prompt(N), *p, cache);
  ASSERT_EQ(out.stats.propagations.size(), 1u);
  EXPECT_EQ(out.stats.propagations[0].layer, 2) << "layer 1 is local: TSP moves to layer 2";
  const std::vector<int32_t>& live = out.stats.propagations[0].positions;
  ASSERT_EQ(live.size(), 40u);
  ASSERT_EQ(live.back(), N - 1);
  int inside = 0;
  for (int32_t q : live) inside += q > N - 1 - 16;
  ASSERT_LT(inside, 16) << "the selection kept the whole window: the test would say nothing";
  for (int l : {3, 4}) {
    for (int h = 0; h < cache.layer(l).n_heads(); ++h) {
      EXPECT_EQ(cache.layer(l).len(h), inside) << "layer " << l;
      for (int32_t q : cache.layer(l).positions(h)) EXPECT_GT(q, N - 1 - 16);
    }
  }
  // The global layer after TSP keeps int(40 × 0.1 / 0.2) = 20 rows per KV head.
  for (int h = 0; h < cache.layer(5).n_heads(); ++h) EXPECT_EQ(cache.layer(5).len(h), 20);
}

// Decode through the local layers' bounded caches: logits of token t decoded after the prompt
// equal those of a full prefill of prompt + decoded tokens (same f32 path), and the local
// caches never exceed window + 64 rows while the global layer grows with every token.
TEST_F(HybridWindow, DecodeWithBoundedLocalCachesMatchesPrefill) {
  const int N = 20, steps = 100;
  std::vector<int32_t> tokens = prompt(N + steps);
  FullMethod full;
  KVCache cache;
  std::vector<float> logits =
      m_->prefill(std::vector<int32_t>(tokens.begin(), tokens.begin() + N), full, cache).logits;
  int64_t max_local = 0;
  for (int t = 0; t < steps; ++t) {
    logits = m_->decode(tokens[N + t], N + t, cache);
    for (int l = 0; l < 5; ++l) max_local = std::max(max_local, cache.layer(l).len(0));
  }
  EXPECT_LE(max_local, 16 + 64);
  EXPECT_GT(max_local, 16);  // rows are dropped in batches, not every token
  EXPECT_EQ(cache.layer(5).len(0), N + steps);
  for (int l = 0; l < 5; ++l) EXPECT_LT(cache.layer(l).len(0), N + steps);
  KVCache ref_cache;
  const std::vector<float> ref = m_->prefill(tokens, full, ref_cache).logits;
  ASSERT_EQ(ref.size(), logits.size());
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(ref[i])));
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(ref[i]) - logits[i]));
  }
  // f32 on both sides, different summation orders only.
  EXPECT_LE(max_diff, 1e-4 * max_ref) << "max diff " << max_diff << " of " << max_ref;
}

// The engine's attention FLOPs count the band: a local layer of a full prefill pairs token i
// with min(i + 1, 16) keys; the last (global) layer attends only the last token's query, to all
// N keys (nothing reads the others' output). Model::prefill_flops (bench's model) agrees for a
// full prefill.
TEST_F(HybridWindow, FlopCountersCountTheBand) {
  const int N = 100, w = 16;
  FullMethod full;
  KVCache cache;
  const PrefillOutput out = m_->prefill(prompt(N), full, cache);
  const LayerConfig& lc = m_->config().layers[0];
  ASSERT_TRUE(lc.local());
  ASSERT_FALSE(m_->config().layers[5].local());
  const double per_pair = 4.0 * lc.n_head * lc.head_dim;
  const double band = w * (w + 1) / 2.0 + static_cast<double>(N - w) * w;
  EXPECT_DOUBLE_EQ(out.stats.attention_flops, per_pair * (5 * band + N));
  EXPECT_DOUBLE_EQ(m_->full_prefill_flops(N),
                   out.stats.linear_flops + out.stats.attention_flops);
}

}  // namespace
}  // namespace fastkv
