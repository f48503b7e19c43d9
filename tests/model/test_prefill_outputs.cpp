// What a prefill hands back besides logits (model/model.h): the final normed hidden states of
// the last tokens (TSP calibration) and the FLOP model (Model::prefill_flops) that calibration
// and `fastkv bench` predict speedups with, checked against the engine's own FLOP counters.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "cache/kv_cache.h"
#include "common/error.h"
#include "method/fastkv.h"
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

}  // namespace
}  // namespace fastkv
