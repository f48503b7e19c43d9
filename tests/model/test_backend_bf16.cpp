// The bf16 oneDNN backend against the f32 reference path.
//
// Tolerance: bf16 keeps 8 significand bits, so rounding x and w each costs up to 2^-9 relative
// and a product up to about 2^-8; summed over K terms the error is at most 2^-8 × sum_i |x_i w_i|
// (f32 accumulation adds far less). We allow 2^-7 × sum_i |x_i w_i|, twice that worst case.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "kernels/gemm_onednn.h"
#include "kernels/linear.h"
#include "model/model.h"
#include "method/fastkv.h"
#include "test_util.h"

namespace fastkv {
namespace {

TEST(Bf16Linear, MatchesF32WithinBf16Rounding) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto [n, in, out] : {std::tuple{1, 64, 48}, std::tuple{7, 576, 192}, std::tuple{300, 128, 352}}) {
    std::vector<float> w(static_cast<size_t>(in) * out), x(static_cast<size_t>(n) * in),
        bias(out);
    for (float& v : w) v = nd(rng);
    for (float& v : x) v = nd(rng);
    for (float& v : bias) v = nd(rng);
    kernels::Linear ref(w, in, out, bias, kernels::Backend::kF32);
    kernels::Linear fast(w, in, out, bias, kernels::Backend::kBf16);
    std::vector<float> y_ref(static_cast<size_t>(n) * out), y(static_cast<size_t>(n) * out);
    ref.forward(x.data(), n, y_ref.data());
    fast.forward(x.data(), n, y.data());
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < out; ++j) {
        double l1 = 0;
        for (int t = 0; t < in; ++t) l1 += std::fabs(x[i * in + t] * w[static_cast<size_t>(j) * in + t]);
        ASSERT_NEAR(y[i * out + j], y_ref[i * out + j], l1 / 128.0)
            << "n=" << n << " in=" << in << " out=" << out << " at " << i << "," << j;
      }
    }
    // A second call with the same row count reuses the cached primitive and gives the same bits.
    std::vector<float> y2(y.size());
    fast.forward(x.data(), n, y2.data());
    EXPECT_EQ(y, y2);
  }
}

TEST(Bf16Model, LogitsFollowTheF32Path) {
  // Real weights: the bf16 path must keep the f32 path's greedy choice where it is clear, and
  // stay within 5% of the logit scale (bf16 rounding through 5 layers).
  const std::string path = test::shared_path("models/stories260K.gguf");
  auto ref = Model::load(path);
  LoadOptions lo;
  lo.backend = kernels::Backend::kBf16;
  auto fast = Model::load(path, lo);
  std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 285, 389, 261, 290, 1114 % 512};
  FullMethod p1, p2;
  KVCache c1, c2;
  std::vector<float> a = ref->prefill(tokens, p1, c1).logits;
  std::vector<float> b = fast->prefill(tokens, p2, c2).logits;
  float max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(a[i]));
    max_diff = std::max(max_diff, std::fabs(a[i] - b[i]));
  }
  EXPECT_LE(max_diff, 0.05f * max_ref);
  std::vector<float> sorted = a;
  std::sort(sorted.rbegin(), sorted.rend());
  if (sorted[0] - sorted[1] > 0.1f * max_ref) {
    EXPECT_EQ(std::max_element(a.begin(), a.end()) - a.begin(),
              std::max_element(b.begin(), b.end()) - b.begin());
  }
}

// How far FastKV's selection on the fast path agrees with the f32 path's on real weights and
// natural text (the first tokens of a Paul Graham essay from ../shared/data), with the paper's
// defaults (TSP at floor(L/2) - 1, 20% propagated, 10% cached, window 8, max-pool 7): the cache
// positions kept per layer and KV head, and the TSP propagated set. A = the f32 path's set,
// B = the bf16 path's; overlap = |A ∩ B| / |A| (|A| = |B|: capacities depend only on the
// live-token count, which both paths share). Both sets include the w = 8 window tokens that
// every head keeps.
//
// bf16 rounding moves the scores by a fraction of a percent (see golden_logits.cpp), so only keys
// whose scores nearly tie at the top-k boundary may swap. Measured (AMX machine):
//   SmolLM2-135M, 1200 tokens, 30 layers × 3 KV heads × 120 rows:
//     bf16 GEMMs only:              total 0.9907, worst layer 0.9722 (10 of 360 rows differ),
//                                   worst head 0.950, TSP set 0.9917 (238 of 240);
//     + bf16 attention and KV cache: total 0.9941, worst layer 0.9806, worst head 0.950,
//                                   TSP set 0.9958;
//   stories260K, 400 tokens, 5 layers × 4 KV heads × 40 rows: every set identical (1.0).
// Bounds: total ≥ 0.95 and TSP set ≥ 0.95 (5× the largest measured loss), every layer ≥ 0.90
// (3.6× the loss of the worst measured layer). A systematic error scrambles far more: a racy
// intermediate version of the fast path measured 0.89 total here, varying from run to run.
// The random-weight tiny models are not used: their near-uniform attention leaves much of the
// ranking to rounding noise even on a correct backend (tiny-llama-gqa 0.953 total with a layer
// at 0.908, tiny-qwen2-gqa 0.976 with a layer at 0.946), too close to any useful bound.
struct OverlapCase {
  const char* model;  // looked up with test::find_model
  int n_tokens;       // prompt length (stories260K was trained at 512)
};

class Bf16FastKV : public ::testing::TestWithParam<OverlapCase> {};

TEST_P(Bf16FastKV, KeptSetsOverlapTheF32Path) {
  const OverlapCase& tc = GetParam();
  const std::string path = test::find_model(tc.model);
  if (path.empty()) {
    GTEST_SKIP() << tc.model << " not found in ../shared/models, $FASTKV_MODEL_PATH or models/ "
                 << "(scripts/fetch-models.sh fetches SmolLM2)";
  }
  auto ref = Model::load(path);
  LoadOptions lo;
  lo.backend = kernels::Backend::kBf16;
  auto fast = Model::load(path, lo);
  const ModelConfig& c = ref->config();

  const std::string essay = test::shared_path("data/PaulGrahamEssays/addiction.txt");
  std::ifstream in(essay);
  ASSERT_TRUE(in) << "missing " << essay;
  std::stringstream text;
  text << in.rdbuf();
  std::vector<int32_t> tokens = ref->require_tokenizer().encode(text.str(), true, false);
  ASSERT_GE(tokens.size(), static_cast<size_t>(tc.n_tokens));
  tokens.resize(tc.n_tokens);

  auto p_ref = MethodRegistry::instance().create("fastkv", {}, c.n_layer);
  auto p_fast = MethodRegistry::instance().create("fastkv", {}, c.n_layer);
  KVCache c_ref, c_fast;
  const PrefillStats s_ref = ref->prefill(tokens, *p_ref, c_ref).stats;
  const PrefillStats s_fast = fast->prefill(tokens, *p_fast, c_fast).stats;

  // |a ∩ b| for sets of positions.
  auto common = [](const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
    const std::set<int32_t> sb(b.begin(), b.end());
    int64_t n = 0;
    for (int32_t p : std::set<int32_t>(a.begin(), a.end())) n += static_cast<int64_t>(sb.count(p));
    return n;
  };

  // TSP must have dropped tokens, or the comparison below says nothing about it.
  ASSERT_LT(s_ref.final_positions.size(), tokens.size());
  ASSERT_EQ(s_ref.final_positions.size(), s_fast.final_positions.size());
  const double tsp_overlap =
      static_cast<double>(common(s_ref.final_positions, s_fast.final_positions)) /
      static_cast<double>(s_ref.final_positions.size());
  std::printf("%s, %d tokens: TSP set %zu tokens, overlap %.4f\n", tc.model, tc.n_tokens,
              s_ref.final_positions.size(), tsp_overlap);
  EXPECT_GE(tsp_overlap, 0.95);

  int64_t total_common = 0, total = 0;
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerCache& a = c_ref.layer(l);
    const LayerCache& b = c_fast.layer(l);
    ASSERT_EQ(a.n_heads(), c.n_head_kv);
    ASSERT_EQ(b.n_heads(), c.n_head_kv);
    int64_t layer_common = 0, layer_rows = 0;
    std::printf("layer %2d:", l);
    for (int h = 0; h < c.n_head_kv; ++h) {
      ASSERT_EQ(a.len(h), b.len(h)) << "layer " << l << " head " << h;
      // Compression must have dropped rows, or the overlap is trivially 1.
      ASSERT_LT(a.len(h), s_ref.live_tokens[l]) << "layer " << l << " head " << h;
      const int64_t ch = common(a.positions(h), b.positions(h));
      std::printf(" h%d %.3f", h, static_cast<double>(ch) / static_cast<double>(a.len(h)));
      layer_common += ch;
      layer_rows += a.len(h);
    }
    const double layer_overlap =
        static_cast<double>(layer_common) / static_cast<double>(layer_rows);
    std::printf("  | layer %.4f (%lld rows)\n", layer_overlap, static_cast<long long>(layer_rows));
    EXPECT_GE(layer_overlap, 0.90) << "layer " << l;
    total_common += layer_common;
    total += layer_rows;
  }
  const double total_overlap = static_cast<double>(total_common) / static_cast<double>(total);
  std::printf("total kept-set overlap %.4f (%lld rows)\n", total_overlap,
              static_cast<long long>(total));
  EXPECT_GE(total_overlap, 0.95);
}

INSTANTIATE_TEST_SUITE_P(Models, Bf16FastKV,
                         ::testing::Values(OverlapCase{"SmolLM2-135M-Instruct.Q4_1.gguf", 1200},
                                           OverlapCase{"stories260K.gguf", 400}),
                         [](const ::testing::TestParamInfo<OverlapCase>& info) {
                           return info.param.model[0] == 'S' ? std::string("SmolLM2")
                                                             : std::string("stories260K");
                         });

}  // namespace
}  // namespace fastkv
