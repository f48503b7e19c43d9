// End-to-end FastKV goldens (../shared/golden/fastkv-e2e/ and $FASTKV_E2E_GOLDENS): a float64
// forward calling the authors' FastKVCluster.update_kv per layer, gathering after the TSP
// layer, decoding at N + t. fastkv's f32 path must give the same propagated set, the same kept
// positions per layer and KV head, logits within 1e-3 × max|golden| at the first token and at
// every decode step, and the same greedy tokens wherever the golden top-2 margin exceeds that
// tolerance. The same for the uncompressed run (logits_full / generated_full).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "io/gguf.h"
#include "model/model.h"
#include "method/fastkv.h"
#include "test_util.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> e2e_files() {
  std::vector<std::string> dirs = {test::shared_path("golden/fastkv-e2e")};
  for (const std::string& d : test::env_path_list("FASTKV_E2E_GOLDENS")) dirs.push_back(d);
  std::vector<std::string> out;
  for (const std::string& d : dirs) {
    if (!fs::is_directory(d)) continue;
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.path().extension() == ".gguf") out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

double decimal_rate(double stored) { return std::round(stored * 1e6) / 1e6; }

// Runs prefill + teacher-forced decode with `policy` and checks logits and greedy tokens.
void check_generation(const Model& model, CompressionMethod& policy, const std::vector<int32_t>& tokens,
                      const std::vector<float>& golden_logits,
                      const std::vector<int32_t>& generated, KVCache& cache,
                      PrefillStats* stats_out, const std::string& what) {
  const int V = model.config().n_vocab;
  const size_t steps = golden_logits.size() / V;
  ASSERT_GE(steps, generated.size());
  PrefillOutput out = model.prefill(tokens, policy, cache);
  if (stats_out) *stats_out = out.stats;
  std::vector<float> logits = out.logits;
  int64_t pos = static_cast<int64_t>(tokens.size());
  for (size_t s = 0; s < steps; ++s) {
    const float* gl = golden_logits.data() + s * V;
    double max_g = 0, max_diff = 0;
    for (int t = 0; t < V; ++t) {
      max_g = std::max(max_g, std::fabs(static_cast<double>(gl[t])));
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(gl[t]) - logits[t]));
    }
    EXPECT_LE(max_diff, 1e-3 * max_g) << what << " step " << s;
    if (s < generated.size()) {
      const int top1 = static_cast<int>(std::max_element(gl, gl + V) - gl);
      EXPECT_EQ(top1, generated[s]) << what << ": golden logits and tokens disagree";
      float second = -INFINITY;
      for (int t = 0; t < V; ++t) {
        if (t != top1) second = std::max(second, gl[t]);
      }
      if (gl[top1] - second > 1e-3 * max_g) {
        EXPECT_EQ(std::max_element(logits.begin(), logits.end()) - logits.begin(), generated[s])
            << what << " greedy token at step " << s;
      }
      logits = model.decode(generated[s], pos++, cache);  // teacher-forced at N + t
    }
  }
}

class FastKVEndToEnd : public ::testing::TestWithParam<std::string> {};

TEST_P(FastKVEndToEnd, MatchesReference) {
  const gguf::File g = gguf::File::open(GetParam());
  const std::string model_path = test::find_model(g.get_string("golden.model"));
  ASSERT_FALSE(model_path.empty()) << "model " << g.get_string("golden.model") << " not found";
  auto model = Model::load(model_path);
  const ModelConfig& c = model->config();
  ASSERT_EQ(g.get_string("golden.mode"), "proportional");

  MethodOptions opts = {
      {"tsp_layer", std::to_string(g.get_int("golden.tsp_layer"))},
      {"tsp_rate", std::to_string(decimal_rate(g.get_float("golden.tsp_rate")))},
      {"retain_rate", std::to_string(decimal_rate(g.get_float("golden.retain_rate")))},
      {"window", std::to_string(g.get_int("golden.window"))},
      {"kernel", std::to_string(g.get_int("golden.kernel"))},
      {"pool", g.get_string("golden.pooling")},
  };
  auto policy = MethodRegistry::instance().create("fastkv", opts, c.n_layer);
  const std::vector<int32_t> tokens = g.read_i32("tokens");

  KVCache cache;
  PrefillStats st;
  check_generation(*model, *policy, tokens, g.read_f32("logits"), g.read_i32("generated"), cache,
                   &st, "fastkv");

  // Propagated set = original positions of the live tokens after the TSP layer.
  const std::vector<int32_t> tsp = g.read_i32("tsp");
  EXPECT_EQ(st.final_positions, tsp);
  // Kept positions per layer and KV head (the prompt rows; decode appended more since).
  for (int l = 0; l < c.n_layer; ++l) {
    const gguf::TensorInfo& t = g.tensor("kept." + std::to_string(l));
    const int C = static_cast<int>(t.ne[0]);
    ASSERT_EQ(t.ne[1], c.n_head_kv);
    const std::vector<int32_t> kept = g.read_i32("kept." + std::to_string(l));
    const LayerCache& lc = cache.layer(l);
    ASSERT_EQ(lc.n_heads(), c.n_head_kv);
    for (int h = 0; h < c.n_head_kv; ++h) {
      std::set<int32_t> golden(kept.begin() + static_cast<size_t>(h) * C,
                               kept.begin() + static_cast<size_t>(h + 1) * C);
      std::set<int32_t> ours;
      for (int32_t p : lc.heads[h].pos) {
        if (p < static_cast<int32_t>(tokens.size())) ours.insert(p);
      }
      EXPECT_EQ(ours, golden) << "layer " << l << " head " << h;
    }
  }

  FullMethod full;
  KVCache full_cache;
  check_generation(*model, full, tokens, g.read_f32("logits_full"), g.read_i32("generated_full"),
                   full_cache, nullptr, "full");
}

INSTANTIATE_TEST_SUITE_P(Files, FastKVEndToEnd, ::testing::ValuesIn(e2e_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = fs::path(info.param).stem().string();
                           for (char& ch : s) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return s;
                         });

TEST(FastKVEndToEndSet, FilesArePresent) { EXPECT_GE(e2e_files().size(), 3u); }

}  // namespace
}  // namespace fastkv
