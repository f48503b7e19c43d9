// The KV-compression methods besides fastkv (snapkv, streamingllm, h2o, gemfilter,
// pyramidinfer, adakv): config validation; each policy's decision against the scalar
// reference of tests/method/method_refs.h on random Q/K; the same inside the model (a recording
// decorator captures every layer's q/k and the cache is checked against the reference);
// decoding on each method's cache, the KV bytes it reports, and "retain 1 = full".
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "common/error.h"
#include "kernels/attention.h"
#include "method_refs.h"
#include "model/model.h"
#include "method/adakv.h"
#include "method/gemfilter.h"
#include "method/h2o.h"
#include "method/pyramidinfer.h"
#include "method/snapkv.h"
#include "method/streamingllm.h"
#include "runtime/session.h"
#include "test_util.h"

namespace fastkv {
namespace {

std::unique_ptr<CompressionMethod> make(const std::string& method, const MethodOptions& opts, int L) {
  return MethodRegistry::instance().create(method, opts, L);
}

std::string error_of(const std::string& method, const MethodOptions& opts, int L = 16) {
  try {
    make(method, opts, L);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// ---- configs ----------------------------------------------------------------------------

TEST(MethodRegistry, ListsEveryMethod) {
  const std::vector<std::string> names = MethodRegistry::instance().names();
  for (const char* m :
       {"full", "fastkv", "snapkv", "streamingllm", "h2o", "gemfilter", "pyramidinfer", "adakv"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), m), names.end()) << m;
    EXPECT_NE(make(m, {}, 32), nullptr) << m;
  }
  EXPECT_TRUE(has(error_of("snapkvv", {}), "unknown method 'snapkvv'"));
}

TEST(MethodConfig, DefaultsAreThePapers) {
  const SnapKVConfig s = SnapKVConfig::from_options({});
  EXPECT_DOUBLE_EQ(s.retain_rate, 0.1);
  EXPECT_EQ(s.kv_budget, 0);
  EXPECT_EQ(s.window, 8);
  EXPECT_EQ(s.kernel, 7);
  EXPECT_EQ(s.pool, kernels::PoolType::kMax);
  EXPECT_EQ(H2OConfig::from_options({}).window, 8);
  EXPECT_DOUBLE_EQ(AdaKVConfig::from_options({}).floor_alpha, 0.2);
  EXPECT_EQ(AdaKVConfig::from_options({}).kernel, 7);
  const PyramidInferConfig p = PyramidInferConfig::from_options({});
  EXPECT_DOUBLE_EQ(p.recent_ratio, 0.2);
  EXPECT_DOUBLE_EQ(p.decay, 0.7);
  EXPECT_DOUBLE_EQ(p.rho(0, 32), 1.0);
  EXPECT_NEAR(p.rho(16, 32), 0.85, 1e-12);
  const GemFilterConfig g = GemFilterConfig::from_options({}, 32);
  EXPECT_EQ(g.filter_layer, 13);  // the paper's layer for 32-layer models
  EXPECT_EQ(g.kernel, 5);
  EXPECT_DOUBLE_EQ(g.retain_rate, 0.1);
  // round(13 × L / 32), at most L - 1
  EXPECT_EQ(GemFilterConfig::default_filter_layer(30), 12);  // SmolLM2-135M
  EXPECT_EQ(GemFilterConfig::default_filter_layer(5), 2);    // stories260K
  EXPECT_EQ(GemFilterConfig::default_filter_layer(4), 2);
  EXPECT_EQ(GemFilterConfig::default_filter_layer(3), 1);
  EXPECT_EQ(GemFilterConfig::default_filter_layer(1), 0);
}

TEST(MethodConfig, RejectsBadValuesNamingTheFlag) {
  for (const char* m : {"snapkv", "streamingllm", "h2o", "gemfilter", "adakv"}) {
    EXPECT_TRUE(has(error_of(m, {{"retain_rate", "0"}}), "--retain-rate")) << m;
    EXPECT_TRUE(has(error_of(m, {{"retain_rate", "1.5"}}), "(0, 1]")) << m;
    EXPECT_TRUE(has(error_of(m, {{"retain_rate", "x"}}), "must be a number")) << m;
    EXPECT_TRUE(has(error_of(m, {{"kv_budget", "0"}}), "--kv-budget")) << m;
    EXPECT_TRUE(has(error_of(m, {{"tsp_rate", "0.2"}}), "does not take --tsp-rate")) << m;
    EXPECT_EQ(error_of(m, {{"retain_rate", "1"}, {"kv_budget", "64"}}), "") << m;
  }
  for (const char* m : {"snapkv", "h2o", "adakv"}) {
    EXPECT_TRUE(has(error_of(m, {{"window", "0"}}), "--window")) << m;
  }
  for (const char* m : {"snapkv", "adakv"}) {
    EXPECT_TRUE(has(error_of(m, {{"kernel", "4"}}), "odd")) << m;
    EXPECT_TRUE(has(error_of(m, {{"pool", "min"}}), "--pool")) << m;
    EXPECT_EQ(error_of(m, {{"pool", "avg"}, {"kernel", "5"}}), "") << m;
  }
  EXPECT_TRUE(has(error_of("streamingllm", {{"window", "8"}}), "does not take --window"));
  EXPECT_TRUE(has(error_of("h2o", {{"kernel", "7"}}), "does not take --kernel"));
  EXPECT_TRUE(has(error_of("gemfilter", {{"kernel", "4"}}), "--kernel"));
  EXPECT_TRUE(has(error_of("gemfilter", {{"filter_layer", "16"}}), "not below"));
  EXPECT_TRUE(has(error_of("gemfilter", {{"filter_layer", "-1"}}), "--filter-layer"));
  EXPECT_TRUE(has(error_of("gemfilter", {{"window", "8"}}), "does not take --window"));
  EXPECT_EQ(error_of("gemfilter", {{"filter_layer", "15"}}), "");
  EXPECT_TRUE(has(error_of("adakv", {{"floor_alpha", "1.5"}}), "--floor-alpha"));
  EXPECT_TRUE(has(error_of("adakv", {{"floor_alpha", "-0.1"}}), "--floor-alpha"));
  EXPECT_EQ(error_of("adakv", {{"floor_alpha", "0"}}), "");
  EXPECT_TRUE(has(error_of("pyramidinfer", {{"decay", "0"}}), "--decay"));
  EXPECT_TRUE(has(error_of("pyramidinfer", {{"decay", "1.1"}}), "--decay"));
  EXPECT_TRUE(has(error_of("pyramidinfer", {{"recent_ratio", "0"}}), "--recent-ratio"));
  EXPECT_TRUE(
      has(error_of("pyramidinfer", {{"retain_rate", "0.1"}}), "does not take --retain-rate"));
  EXPECT_TRUE(has(error_of("snapkv", {{"floor_alpha", "0.2"}}), "does not take --floor-alpha"));
}

// ---- random Q/K against the scalar references -----------------------------------------

struct RandomQK {
  int n, H, G, d;
  std::vector<float> q, k;
};

// Gaussian q/k with a few "needle" keys aligned with the last queries of their group, so the
// selections have clear winners as well as a crowd of near-equal ones.
RandomQK random_qk(int n, int H, int G, int d, uint32_t seed) {
  RandomQK x{n, H, G, d, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  x.q.resize(static_cast<size_t>(n) * H * d);
  x.k.resize(static_cast<size_t>(n) * G * d);
  for (float& v : x.q) v = nd(rng);
  for (float& v : x.k) v = nd(rng);
  const int g = H / G;
  for (int needle = 0; needle < (n > 20 ? 6 : 0); ++needle) {
    const int j = static_cast<int>(rng() % (n - 10));
    const int kvh = static_cast<int>(rng() % G);
    for (int t = 0; t < d; ++t) {
      x.k[(static_cast<size_t>(j) * G + kvh) * d + t] =
          0.6f * x.q[(static_cast<size_t>(n - 1) * H + kvh * g) * d + t];
    }
  }
  return x;
}

LayerInput input_of(const RandomQK& x, int layer = 0, int L = 1) {
  LayerInput in;
  in.layer = layer;
  in.n_layer = L;
  in.n_prompt = x.n;
  in.n = x.n;
  in.n_head = x.H;
  in.n_head_kv = x.G;
  in.head_dim = x.d;
  in.q = x.q.data();
  in.k = x.k.data();
  return in;
}

std::vector<ref::Set> keep_sets(const LayerDecision& dec, int n) {
  std::vector<ref::Set> out(dec.cache_heads);
  for (int h = 0; h < dec.cache_heads; ++h) {
    if (dec.keep_all) {
      for (int j = 0; j < n; ++j) out[h].insert(j);
    } else {
      out[h].insert(dec.keep[h].begin(), dec.keep[h].end());
      EXPECT_EQ(out[h].size(), dec.keep[h].size()) << "duplicate rows, head " << h;
    }
  }
  return out;
}

// Reference head selections with the window split off: ours vs want, per head.
void expect_head_selection(const std::vector<ref::Set>& ours, const ref::HeadSelection& want, int n,
                           int w, const std::string& what) {
  ASSERT_EQ(ours.size(), want.keep.size()) << what;
  for (size_t h = 0; h < ours.size(); ++h) {
    if (!want.dropped) {
      EXPECT_EQ(ours[h], want.keep[h]) << what << " head " << h;
      continue;
    }
    ref::Set ours_top, want_top;
    for (int j = n - w; j < n; ++j) EXPECT_TRUE(ours[h].count(j)) << what << " window " << j;
    for (int32_t j : ours[h]) {
      if (j < n - w) ours_top.insert(j);
    }
    for (int32_t j : want.keep[h]) {
      if (j < n - w) want_top.insert(j);
    }
    EXPECT_TRUE(ref::same_or_tied(ours_top, want_top, want.scores[h], ref::range(0, n - w)))
        << what << " head " << h;
  }
}

struct Shape {
  int n, H, G, d;
};
const Shape kShapes[] = {{150, 8, 2, 16}, {97, 4, 4, 8}, {200, 8, 1, 16}, {64, 6, 3, 8}};

TEST(H2OReference, MatchesScalarReference) {
  uint32_t seed = 1;
  for (const Shape& s : kShapes) {
    const RandomQK x = random_qk(s.n, s.H, s.G, s.d, seed++);
    std::vector<float> colsum(static_cast<size_t>(s.H) * s.n);
    kernels::causal_attention_column_sums(x.q.data(), x.k.data(), s.n, s.H, s.G, s.d,
                                          colsum.data());
    for (const MethodOptions& opts :
         std::vector<MethodOptions>{{},
                                    {{"retain_rate", "0.3"}},
                                    {{"kv_budget", "20"}, {"window", "4"}},
                                    {{"retain_rate", "0.05"}},
                                    {{"retain_rate", "1"}}}) {
      const H2OConfig cfg = H2OConfig::from_options(opts);
      H2OMethod p(cfg);
      LayerInput in = input_of(x);
      const int C = cfg.capacity(in.n);
      EXPECT_EQ(p.wants_attention_column_sums(0, in.n), in.n > C && C >= cfg.window + 1);
      in.attn_colsum = colsum.data();
      const LayerDecision dec = p.on_layer(in);
      EXPECT_EQ(dec.cache_heads, s.G);
      const ref::HeadSelection want =
          ref::h2o(x.q.data(), x.k.data(), s.n, s.H, s.G, s.d, cfg.capacity(s.n), cfg.window);
      EXPECT_EQ(dec.keep_all, !want.dropped);
      expect_head_selection(keep_sets(dec, s.n), want, s.n, cfg.window,
                            "h2o n=" + std::to_string(s.n));
    }
  }
}

TEST(SnapKVReference, MatchesScalarReferencePerQueryHead) {
  uint32_t seed = 11;
  for (const Shape& s : kShapes) {
    const RandomQK x = random_qk(s.n, s.H, s.G, s.d, seed++);
    for (const MethodOptions& opts : std::vector<MethodOptions>{
             {}, {{"retain_rate", "0.3"}, {"pool", "avg"}}, {{"kv_budget", "24"}}}) {
      const SnapKVConfig cfg = SnapKVConfig::from_options(opts);
      SnapKVMethod p(cfg);
      const LayerDecision dec = p.on_layer(input_of(x));
      const ref::HeadSelection want =
          ref::snapkv(x.q.data(), x.k.data(), s.n, s.H, s.G, s.d, cfg.capacity(s.n), cfg.window,
                      cfg.kernel, cfg.pool == kernels::PoolType::kMax);
      if (!want.dropped) {
        EXPECT_TRUE(dec.keep_all);
        EXPECT_EQ(dec.cache_heads, s.G) << "nothing dropped: the plain per-KV-head cache";
        continue;
      }
      EXPECT_EQ(dec.cache_heads, s.H) << "one cache head per query head";
      expect_head_selection(keep_sets(dec, s.n), want, s.n, cfg.window, "snapkv");
    }
  }
}

TEST(AdaKVReference, MatchesScalarReference) {
  uint32_t seed = 21;
  for (const Shape& s : kShapes) {
    const RandomQK x = random_qk(s.n, s.H, s.G, s.d, seed++);
    for (const MethodOptions& opts : std::vector<MethodOptions>{
             {},
             {{"retain_rate", "0.3"}},
             {{"retain_rate", "0.2"}, {"floor_alpha", "0"}},
             {{"retain_rate", "0.2"}, {"floor_alpha", "1"}, {"pool", "avg"}},
             {{"kv_budget", "30"}, {"window", "4"}, {"floor_alpha", "0.5"}}}) {
      const AdaKVConfig cfg = AdaKVConfig::from_options(opts);
      AdaKVMethod p(cfg);
      const LayerDecision dec = p.on_layer(input_of(x));
      const ref::AdaKVSelection want =
          ref::adakv(x.q.data(), x.k.data(), s.n, s.H, s.G, s.d, cfg.capacity(s.n), cfg.window,
                     cfg.kernel, cfg.pool == kernels::PoolType::kMax, cfg.floor_alpha);
      EXPECT_EQ(dec.cache_heads, s.G);
      ASSERT_EQ(dec.keep_all, !want.dropped);
      const std::vector<ref::Set> ours = keep_sets(dec, s.n);
      EXPECT_TRUE(ref::adakv_valid(ours, want, s.n, cfg.window)) << "n=" << s.n;
      if (want.dropped) {
        size_t rows = 0;
        for (const ref::Set& h : ours) rows += h.size();
        EXPECT_EQ(rows, static_cast<size_t>(cfg.capacity(s.n)) * s.G) << "budget B = C × G";
      }
    }
  }
}

TEST(AdaKVReference, HeadsGetDifferentBudgets) {
  // KV head 0's window queries look at five planted keys only (its other keys are near zero,
  // so the pooled scores there are low and flat); KV head 1's are spread out. The layer-wide
  // top-k then gives head 1 more of the shared budget than head 0.
  RandomQK x = random_qk(200, 8, 2, 16, 77);
  const int n = 200, H = 8, G = 2, d = 16;
  for (int j = 0; j < n - 8; ++j) {
    for (int t = 0; t < d; ++t) x.k[(static_cast<size_t>(j) * G + 0) * d + t] *= 0.05f;
  }
  for (int j : {20, 60, 100, 140, 180}) {
    for (int t = 0; t < d; ++t) {
      float m = 0;
      for (int i = n - 8; i < n; ++i) {
        for (int h = 0; h < 4; ++h) m += x.q[(static_cast<size_t>(i) * H + h) * d + t];
      }
      x.k[(static_cast<size_t>(j) * G + 0) * d + t] = m / 8.0f;
    }
  }
  const AdaKVConfig cfg = AdaKVConfig::from_options({{"retain_rate", "0.2"}});
  AdaKVMethod p(cfg);
  const LayerDecision dec = p.on_layer(input_of(x));
  ASSERT_FALSE(dec.keep_all);
  ASSERT_EQ(dec.keep.size(), 2u);
  EXPECT_LT(dec.keep[0].size(), dec.keep[1].size());
  EXPECT_GE(dec.keep[0].size(), static_cast<size_t>(cfg.safeguard(40) + cfg.window));
  EXPECT_EQ(dec.keep[0].size() + dec.keep[1].size(), 2u * 40);
  const ref::AdaKVSelection want =
      ref::adakv(x.q.data(), x.k.data(), n, H, G, d, 40, 8, 7, true, cfg.floor_alpha);
  EXPECT_TRUE(ref::adakv_valid(keep_sets(dec, n), want, n, 8));
}

TEST(PyramidInferReference, MatchesScalarReference) {
  uint32_t seed = 31;
  for (const Shape& s : kShapes) {
    const RandomQK x = random_qk(s.n, s.H, s.G, s.d, seed++);
    for (const MethodOptions& opts :
         std::vector<MethodOptions>{{},
                                    {{"decay", "0.3"}},
                                    {{"recent_ratio", "0.5"}, {"decay", "0.5"}},
                                    {{"decay", "1"}}}) {
      const PyramidInferConfig cfg = PyramidInferConfig::from_options(opts);
      PyramidInferMethod p(cfg);
      const int L = 8;
      for (int layer = 0; layer < L; ++layer) {
        const LayerDecision dec = p.on_layer(input_of(x, layer, L));
        EXPECT_TRUE(dec.keep_all) << "the cache keeps every live token";
        EXPECT_EQ(dec.cache_heads, s.G);
        if (layer == L - 1) {
          EXPECT_FALSE(dec.propagate.has_value()) << "nothing after the last layer";
          continue;
        }
        const ref::PyramidSelection want = ref::pyramidinfer(
            x.q.data(), x.k.data(), s.n, s.H, s.G, s.d, layer, L, cfg.recent_ratio, cfg.decay);
        const std::string what = "layer " + std::to_string(layer) + " n=" + std::to_string(s.n);
        if (!want.dropped) {
          EXPECT_FALSE(dec.propagate.has_value()) << what;
          continue;
        }
        ASSERT_TRUE(dec.propagate.has_value()) << what;
        const std::vector<int32_t>& prop = *dec.propagate;
        EXPECT_TRUE(std::is_sorted(prop.begin(), prop.end())) << what;
        ASSERT_EQ(static_cast<int>(prop.size()), want.target) << what;
        ref::Set ours(prop.begin(), prop.end()), ours_c, want_c;
        for (int j = 0; j < 4; ++j) EXPECT_TRUE(ours.count(j)) << what << " sink " << j;
        EXPECT_TRUE(ours.count(s.n - 1)) << what << " last token";
        for (int32_t j : ours) {
          if (j >= 4 && j < s.n - 1) ours_c.insert(j);
        }
        for (int32_t j : want.keep) {
          if (j >= 4 && j < s.n - 1) want_c.insert(j);
        }
        EXPECT_TRUE(ref::same_or_tied(ours_c, want_c, want.scores, want.candidates)) << what;
      }
    }
  }
}

TEST(PyramidInferReference, DegenerateSizesKeepEverything) {
  PyramidInferMethod p(PyramidInferConfig::from_options({{"decay", "0.1"}}));
  const RandomQK tiny = random_qk(9, 2, 1, 4, 5);  // int(9 × ρ) < 8 at deep layers
  const LayerDecision dec = p.on_layer(input_of(tiny, 3, 4));
  EXPECT_FALSE(dec.propagate.has_value());
  const RandomQK small = random_qk(4, 2, 1, 4, 6);  // R = int(4 × 0.2) = 0
  EXPECT_FALSE(p.on_layer(input_of(small, 1, 4)).propagate.has_value());
}

TEST(GemFilterReference, MatchesScalarReference) {
  uint32_t seed = 41;
  for (const Shape& s : kShapes) {
    const RandomQK x = random_qk(s.n, s.H, s.G, s.d, seed++);
    GemFilterConfig cfg = GemFilterConfig::from_options({{"retain_rate", "0.2"}}, 4);
    GemFilterMethod p(cfg);
    for (int layer = 0; layer < 4; ++layer) {
      LayerDecision dec = p.on_layer(input_of(x, layer, 4));
      EXPECT_TRUE(dec.keep_all);
      EXPECT_EQ(dec.restart.has_value(), layer == cfg.filter_layer) << layer;
      if (!dec.restart) continue;
      const ref::GemFilterSelection want = ref::gemfilter(x.q.data(), x.k.data(), s.n, s.H, s.G,
                                                          s.d, static_cast<int>(s.n * 0.2), 5);
      EXPECT_TRUE(std::is_sorted(dec.restart->begin(), dec.restart->end()));
      const ref::Set ours(dec.restart->begin(), dec.restart->end());
      EXPECT_TRUE(ref::same_or_tied(ours, want.selected, want.scores, ref::range(0, s.n)));
      // The second pass keeps everything and never restarts again.
      LayerInput in = input_of(x, layer, 4);
      in.pass = 1;
      EXPECT_FALSE(p.on_layer(in).restart.has_value());
    }
  }
}

TEST(StreamingLLMReference, SinksPlusRecent) {
  BudgetConfig cfg;
  cfg.retain_rate = 0.1;
  const std::vector<int32_t> keep = streamingllm_select(cfg, 300);
  ASSERT_EQ(keep.size(), 30u);
  for (int j = 0; j < 4; ++j) EXPECT_EQ(keep[j], j);
  for (int j = 4; j < 30; ++j) EXPECT_EQ(keep[j], 300 - 26 + (j - 4));
  EXPECT_EQ(streamingllm_select(cfg, 40).size(), 40u);  // C = 4 < sinks + 1: keep everything
  cfg.kv_budget = 5;
  EXPECT_EQ(streamingllm_select(cfg, 40), (std::vector<int32_t>{0, 1, 2, 3, 39}));
}

// ---- inside the model -------------------------------------------------------------------

// What a policy saw at one layer (copied) and what it decided.
struct LayerRecord {
  int layer = 0, pass = 0, n = 0, H = 0, G = 0, d = 0;
  std::vector<float> q, k;
  std::vector<int32_t> pos;
  LayerDecision decision;
};

// Forwards everything to `inner` and records every LayerInput / LayerDecision.
class Recorder : public CompressionMethod {
 public:
  explicit Recorder(std::unique_ptr<CompressionMethod> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  void begin(int n_prompt, int n_layer) override {
    records.clear();
    inner_->begin(n_prompt, n_layer);
  }
  bool wants_attention_column_sums(int layer, int n) const override {
    return inner_->wants_attention_column_sums(layer, n);
  }
  LayerDecision on_layer(const LayerInput& in) override {
    LayerRecord r;
    r.layer = in.layer;
    r.pass = in.pass;
    r.n = in.n;
    r.H = in.n_head;
    r.G = in.n_head_kv;
    r.d = in.head_dim;
    r.q.assign(in.q, in.q + static_cast<size_t>(in.n) * in.n_head * in.head_dim);
    r.k.assign(in.k, in.k + static_cast<size_t>(in.n) * in.n_head_kv * in.head_dim);
    r.pos.assign(in.pos, in.pos + in.n);
    LayerDecision d = inner_->on_layer(in);
    r.decision = d;
    records.push_back(std::move(r));
    return d;
  }
  std::vector<LayerRecord> records;

 private:
  std::unique_ptr<CompressionMethod> inner_;
};

// A prompt of n token ids spread over the vocabulary (deterministic), starting with BOS 1.
std::vector<int32_t> prompt_tokens(int n, int vocab) {
  std::vector<int32_t> t(n);
  t[0] = 1;
  for (int i = 1; i < n; ++i) t[i] = 3 + static_cast<int32_t>((i * 7919LL) % (vocab - 3));
  return t;
}

// Models, loaded once per process.
const Model& shared_model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Model>> models;
  auto& m = models[name];
  if (!m) m = Model::load(test::shared_path("models/" + name));
  return *m;
}

// Cache positions of one head, mapped back to live-token indices of the record.
ref::Set cached_indices(const HeadCache& hc, const LayerRecord& r) {
  std::map<int32_t, int32_t> index_of;
  for (int j = 0; j < r.n; ++j) index_of[r.pos[j]] = j;
  ref::Set out;
  for (int32_t p : hc.pos) {
    auto it = index_of.find(p);
    EXPECT_NE(it, index_of.end()) << "cached position " << p << " was not live";
    if (it != index_of.end()) out.insert(it->second);
  }
  EXPECT_EQ(out.size(), hc.pos.size()) << "a position cached twice";
  return out;
}

std::vector<ref::Set> cache_sets(const LayerCache& lc, const LayerRecord& r) {
  std::vector<ref::Set> out;
  for (const HeadCache& hc : lc.heads) out.push_back(cached_indices(hc, r));
  return out;
}

class MethodInModel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { model_ = &shared_model(GetParam()); }
  std::vector<int32_t> prompt() const {
    return prompt_tokens(GetParam() == "stories260K.gguf" ? 300 : 400, model_->config().n_vocab);
  }
  // Prefill with a recorded `method`; returns the records of the (last) pass.
  std::vector<LayerRecord> run(const std::string& method, const MethodOptions& opts, KVCache& cache,
                               PrefillStats* stats = nullptr) {
    Recorder rec(make(method, opts, model_->config().n_layer));
    PrefillOutput out = model_->prefill(prompt(), rec, cache);
    if (stats) *stats = out.stats;
    return rec.records;
  }
  const Model* model_ = nullptr;
};

TEST_P(MethodInModel, H2OCacheMatchesReference) {
  const MethodOptions opts = {{"retain_rate", "0.2"}};
  const H2OConfig cfg = H2OConfig::from_options(opts);
  KVCache cache;
  const std::vector<LayerRecord> recs = run("h2o", opts, cache);
  ASSERT_EQ(static_cast<int>(recs.size()), model_->config().n_layer);
  for (const LayerRecord& r : recs) {
    const ref::HeadSelection want =
        ref::h2o(r.q.data(), r.k.data(), r.n, r.H, r.G, r.d, cfg.capacity(r.n), cfg.window);
    ASSERT_TRUE(want.dropped);
    ASSERT_EQ(cache.layer(r.layer).n_heads(), r.G);
    expect_head_selection(cache_sets(cache.layer(r.layer), r), want, r.n, cfg.window,
                          "h2o layer " + std::to_string(r.layer));
  }
}

TEST_P(MethodInModel, AdaKVCacheMatchesReference) {
  const MethodOptions opts = {{"retain_rate", "0.2"}};
  const AdaKVConfig cfg = AdaKVConfig::from_options(opts);
  KVCache cache;
  const std::vector<LayerRecord> recs = run("adakv", opts, cache);
  ASSERT_EQ(static_cast<int>(recs.size()), model_->config().n_layer);
  bool uneven = false;
  for (const LayerRecord& r : recs) {
    const ref::AdaKVSelection want =
        ref::adakv(r.q.data(), r.k.data(), r.n, r.H, r.G, r.d, cfg.capacity(r.n), cfg.window,
                   cfg.kernel, true, cfg.floor_alpha);
    ASSERT_TRUE(want.dropped);
    const LayerCache& lc = cache.layer(r.layer);
    ASSERT_EQ(lc.n_heads(), r.G);
    EXPECT_TRUE(ref::adakv_valid(cache_sets(lc, r), want, r.n, cfg.window)) << "layer " << r.layer;
    EXPECT_EQ(lc.rows(), static_cast<int64_t>(cfg.capacity(r.n)) * r.G);
    for (const HeadCache& hc : lc.heads) uneven = uneven || hc.len() != lc.heads[0].len();
  }
  EXPECT_TRUE(uneven) << "expected at least one layer with per-head budgets that differ";
}

TEST_P(MethodInModel, SnapKVCachesPerQueryHead) {
  const MethodOptions opts = {{"retain_rate", "0.2"}};
  const SnapKVConfig cfg = SnapKVConfig::from_options(opts);
  KVCache cache;
  PrefillStats st;
  const std::vector<LayerRecord> recs = run("snapkv", opts, cache, &st);
  const ModelConfig& c = model_->config();
  ASSERT_EQ(static_cast<int>(recs.size()), c.n_layer);
  for (const LayerRecord& r : recs) {
    const ref::HeadSelection want = ref::snapkv(r.q.data(), r.k.data(), r.n, r.H, r.G, r.d,
                                                cfg.capacity(r.n), cfg.window, cfg.kernel, true);
    ASSERT_TRUE(want.dropped);
    const LayerCache& lc = cache.layer(r.layer);
    ASSERT_EQ(lc.n_heads(), r.H) << "one cache head per query head";
    expect_head_selection(cache_sets(lc, r), want, r.n, cfg.window,
                          "snapkv layer " + std::to_string(r.layer));
    // Cache head h holds rows of KV head h / g.
    const int g = r.H / r.G;
    for (int h = 0; h < r.H; ++h) {
      const HeadCache& hc = lc.heads[h];
      std::map<int32_t, int32_t> index_of;
      for (int j = 0; j < r.n; ++j) index_of[r.pos[j]] = j;
      const int32_t j = index_of.at(hc.pos[0]);
      EXPECT_TRUE(std::equal(hc.k.begin(), hc.k.begin() + r.d,
                             r.k.begin() + (static_cast<size_t>(j) * r.G + h / g) * r.d));
    }
  }
  // g times the GQA-aware cache (fastkv without TSP) at the same rate.
  KVCache fk;
  auto fastkv = make("fastkv", {{"tsp_layer", "none"}, {"retain_rate", "0.2"}}, c.n_layer);
  PrefillStats fst = model_->prefill(prompt(), *fastkv, fk).stats;
  for (int l = 0; l < c.n_layer; ++l) {
    EXPECT_EQ(st.kept_rows[l], fst.kept_rows[l] * c.group_size()) << l;
  }
}

TEST_P(MethodInModel, StreamingLLMCacheIsSinksPlusRecent) {
  KVCache cache;
  const std::vector<LayerRecord> recs = run("streamingllm", {{"retain_rate", "0.2"}}, cache);
  for (const LayerRecord& r : recs) {
    const int C = static_cast<int>(r.n * 0.2);
    ref::Set want;
    for (int j = 0; j < 4; ++j) want.insert(j);
    for (int j = r.n - (C - 4); j < r.n; ++j) want.insert(j);
    for (const ref::Set& s : cache_sets(cache.layer(r.layer), r)) EXPECT_EQ(s, want);
  }
}

TEST_P(MethodInModel, PyramidInferShrinksLiveSetAsReference) {
  const ModelConfig& c = model_->config();
  const MethodOptions opts = {{"decay", "0.4"}};
  const PyramidInferConfig cfg = PyramidInferConfig::from_options(opts);
  KVCache cache;
  PrefillStats st;
  const std::vector<LayerRecord> recs = run("pyramidinfer", opts, cache, &st);
  ASSERT_EQ(static_cast<int>(recs.size()), c.n_layer);
  EXPECT_EQ(recs[0].n, static_cast<int>(prompt().size()));
  for (const LayerRecord& r : recs) {
    // The cache holds every token that reached the layer.
    for (const ref::Set& s : cache_sets(cache.layer(r.layer), r)) {
      EXPECT_EQ(static_cast<int>(s.size()), r.n) << "layer " << r.layer;
    }
    if (r.layer + 1 == c.n_layer) break;
    const ref::PyramidSelection want =
        ref::pyramidinfer(r.q.data(), r.k.data(), r.n, r.H, r.G, r.d, r.layer, c.n_layer,
                          cfg.recent_ratio, cfg.decay);
    const LayerRecord& next = recs[r.layer + 1];
    ASSERT_EQ(next.n, want.target) << "layer " << r.layer;
    if (!want.dropped) continue;
    // The next layer's live positions, as indices of this layer's live set.
    std::map<int32_t, int32_t> index_of;
    for (int j = 0; j < r.n; ++j) index_of[r.pos[j]] = j;
    ref::Set ours_c, want_c;
    for (int32_t p : next.pos) {
      const int32_t j = index_of.at(p);
      if (j >= 4 && j < r.n - 1) ours_c.insert(j);
    }
    for (int32_t j : want.keep) {
      if (j >= 4 && j < r.n - 1) want_c.insert(j);
    }
    EXPECT_TRUE(ref::same_or_tied(ours_c, want_c, want.scores, want.candidates))
        << "layer " << r.layer;
    EXPECT_EQ(next.pos.back(), r.pos.back()) << "the last prompt token goes on";
  }
  EXPECT_LT(st.live_tokens.back(), st.live_tokens.front());
  EXPECT_EQ(st.final_positions.back(), static_cast<int32_t>(prompt().size()) - 1);
}

TEST_P(MethodInModel, GemFilterRestartsOnTheSelectedTokens) {
  const ModelConfig& c = model_->config();
  const MethodOptions opts = {{"retain_rate", "0.2"}};
  const GemFilterConfig cfg = GemFilterConfig::from_options(opts, c.n_layer);
  const std::vector<int32_t> pr = prompt();
  const int N = static_cast<int>(pr.size()), T = static_cast<int>(N * 0.2);
  Recorder rec(make("gemfilter", opts, c.n_layer));
  KVCache cache;
  PrefillOutput out = model_->prefill(pr, rec, cache);
  // Pass 0: layers 0..filter_layer over all N tokens; pass 1: every layer over T tokens.
  ASSERT_EQ(static_cast<int>(rec.records.size()), cfg.filter_layer + 1 + c.n_layer);
  const LayerRecord& f = rec.records[cfg.filter_layer];
  ASSERT_EQ(f.pass, 0);
  ASSERT_EQ(f.n, N);
  ASSERT_TRUE(f.decision.restart.has_value());
  const ref::GemFilterSelection want =
      ref::gemfilter(f.q.data(), f.k.data(), f.n, f.H, f.G, f.d, T, 5);
  const ref::Set ours(f.decision.restart->begin(), f.decision.restart->end());
  EXPECT_TRUE(ref::same_or_tied(ours, want.selected, want.scores, ref::range(0, N)));
  for (int l = 0; l < c.n_layer; ++l) {
    const LayerRecord& r = rec.records[cfg.filter_layer + 1 + l];
    EXPECT_EQ(r.pass, 1);
    EXPECT_EQ(r.n, T);
    EXPECT_EQ(r.pos, ref::range(0, T)) << "positions restart at 0";
    for (const HeadCache& hc : cache.layer(l).heads) EXPECT_EQ(hc.pos, ref::range(0, T));
  }
  EXPECT_EQ(out.stats.passes, 2);
  EXPECT_EQ(out.stats.next_position, T);
  // The second pass is the full model on the selected tokens alone.
  std::vector<int32_t> chosen;
  for (int32_t j : *f.decision.restart) chosen.push_back(pr[j]);
  FullMethod full;
  KVCache fc;
  EXPECT_EQ(model_->prefill(chosen, full, fc).logits, out.logits);
}

INSTANTIATE_TEST_SUITE_P(Models, MethodInModel,
                         ::testing::Values("stories260K.gguf", "tiny-llama-gqa.gguf"),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string s = i.param.substr(0, i.param.find('.'));
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

// ---- decode, KV bytes, retain 1 = full, for every method --------------------------------

// Full-KV reference runs are computed once per model for all methods.

struct MethodCase {
  std::string model, method;
  MethodOptions opts;      // a compressing configuration
  MethodOptions lossless;  // the configuration that must equal full
};

std::string case_name(const ::testing::TestParamInfo<MethodCase>& i) {
  std::string s = i.param.method + "_" + i.param.model.substr(0, i.param.model.find('.'));
  std::replace(s.begin(), s.end(), '-', '_');
  return s;
}

std::vector<MethodCase> method_cases() {
  std::vector<MethodCase> out;
  for (const char* model : {"stories260K.gguf", "tiny-llama-gqa.gguf"}) {
    out.push_back({model, "snapkv", {}, {{"retain_rate", "1"}}});
    out.push_back({model, "streamingllm", {}, {{"retain_rate", "1"}}});
    out.push_back({model, "h2o", {}, {{"retain_rate", "1"}}});
    out.push_back({model, "gemfilter", {}, {{"retain_rate", "1"}}});
    out.push_back({model, "pyramidinfer", {}, {{"decay", "1"}}});
    out.push_back({model, "adakv", {}, {{"retain_rate", "1"}}});
  }
  return out;
}

struct GreedyRun {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;  // after prefill, then after each decode step
};

GreedyRun greedy(const Model& m, CompressionMethod& p, const std::vector<int32_t>& prompt, int steps) {
  KVCache cache;
  PrefillOutput out = m.prefill(prompt, p, cache);
  GreedyRun r;
  r.logits.push_back(out.logits);
  int64_t pos = out.stats.next_position;
  for (int s = 0; s < steps; ++s) {
    const std::vector<float>& l = r.logits.back();
    r.tokens.push_back(static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin()));
    r.logits.push_back(m.decode(r.tokens.back(), pos++, cache));
  }
  return r;
}

class EveryMethod : public ::testing::TestWithParam<MethodCase> {
 protected:
  void SetUp() override { model_ = &shared_model(GetParam().model); }
  std::vector<int32_t> prompt() const { return prompt_tokens(300, model_->config().n_vocab); }
  const GreedyRun& full_run() const {
    static std::map<std::string, GreedyRun> runs;
    auto it = runs.find(GetParam().model);
    if (it == runs.end()) {
      FullMethod full;
      it = runs.emplace(GetParam().model, greedy(*model_, full, prompt(), kSteps)).first;
    }
    return it->second;
  }
  static constexpr int kSteps = 8;
  const Model* model_ = nullptr;
};

int64_t expected_bytes(const KVCache& cache) {
  int64_t b = 0;
  for (int l = 0; l < cache.n_layer(); ++l) {
    const LayerCache& lc = cache.layer(l);
    b += lc.rows() * (2LL * lc.head_dim * 4 + 4);
  }
  return b;
}

TEST_P(EveryMethod, DecodesOnItsCacheAtTheRightPositions) {
  const MethodCase& mc = GetParam();
  const ModelConfig& c = model_->config();
  const std::vector<int32_t> pr = prompt();
  const int64_t N = static_cast<int64_t>(pr.size());
  Session s(*model_, make(mc.method, mc.opts, c.n_layer));
  std::vector<float> logits = s.prefill(pr);
  const int64_t start = mc.method == "gemfilter" ? static_cast<int64_t>(N * 0.1) : N;
  EXPECT_EQ(s.next_position(), start);
  EXPECT_EQ(s.last_prefill().next_position, start);
  // KV bytes: every row held costs K and V (d floats each) plus its position.
  EXPECT_EQ(s.cache().bytes(), expected_bytes(s.cache()));
  Session full(*model_, make("full", {}, c.n_layer));
  full.prefill(pr);
  EXPECT_LT(s.cache().bytes(), full.cache().bytes()) << "the method compresses";
  EXPECT_EQ(full.cache().bytes(), expected_bytes(full.cache()));
  for (int t = 0; t < 4; ++t) {
    const int32_t next =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    logits = s.decode(next);
    for (float x : logits) ASSERT_TRUE(std::isfinite(x)) << "step " << t;
    for (int l = 0; l < c.n_layer; ++l) {
      for (const HeadCache& hc : s.cache().layer(l).heads) {
        ASSERT_EQ(hc.pos.back(), start + t) << "layer " << l << " step " << t;
      }
    }
    EXPECT_EQ(s.cache().bytes(), expected_bytes(s.cache()));
  }
}

TEST_P(EveryMethod, LosslessSettingEqualsFullGeneration) {
  const MethodCase& mc = GetParam();
  auto p = make(mc.method, mc.lossless, model_->config().n_layer);
  const GreedyRun got = greedy(*model_, *p, prompt(), kSteps);
  const GreedyRun& want = full_run();
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.logits, want.logits);  // bit for bit
}

INSTANTIATE_TEST_SUITE_P(Methods, EveryMethod, ::testing::ValuesIn(method_cases()), case_name);

}  // namespace
}  // namespace fastkv
