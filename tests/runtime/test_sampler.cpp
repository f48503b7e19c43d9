// Sampler: greedy, seeded temperature sampling, top-k, top-p, min-p, repetition penalty and
// parameter validation (src/runtime/sampler.h).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "runtime/sampler.h"

namespace fastkv {
namespace {

// Every filter off: plain softmax sampling at temperature 1.
SamplingParams plain(uint64_t seed = 1) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = seed;
  return p;
}

// Logits whose softmax at temperature 1 is exactly `probs` (up to rounding).
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::map<int32_t, int> histogram(const SamplingParams& p, const std::vector<float>& logits,
                                 int draws) {
  Sampler s(p);
  std::map<int32_t, int> h;
  for (int i = 0; i < draws; ++i) ++h[s.sample(logits, {})];
  return h;
}

std::set<int32_t> keys(const std::map<int32_t, int>& h) {
  std::set<int32_t> k;
  for (const auto& [id, n] : h) k.insert(id);
  return k;
}

TEST(Sampler, GreedyIsArgmaxWithTiesToLowestId) {
  SamplingParams p;  // defaults: temperature 0
  ASSERT_EQ(p.temperature, 0.0f);
  Sampler s(p);
  EXPECT_EQ(s.sample({0.1f, 2.0f, -1.0f, 1.5f}, {}), 1);
  EXPECT_EQ(s.sample({1.0f, 3.0f, 2.0f, 3.0f}, {}), 1);  // tie between 1 and 3
  EXPECT_EQ(s.sample({5.0f, 5.0f, 5.0f}, {}), 0);
  EXPECT_EQ(s.sample({-3.0f, -2.0f, -2.0f}, {}), 1);
  EXPECT_EQ(argmax({0.0f, 7.0f, 7.0f, 1.0f}), 1);
  // Greedy ignores top-k / top-p / min-p and the RNG: the same answer every time.
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample({0.5f, 0.25f, 0.75f, 0.7f}, {}), 2);
}

TEST(Sampler, TemperatureSamplingIsReproducibleForASeed) {
  const std::vector<float> logits = {0.1f, 0.4f, 0.3f, 0.0f, 0.2f, 0.35f, 0.15f, 0.05f};
  for (float temp : {0.7f, 1.0f, 1.5f}) {
    SamplingParams p = plain(1234);
    p.temperature = temp;
    Sampler a(p), b(p);
    std::vector<int32_t> da, db;
    for (int i = 0; i < 500; ++i) {
      da.push_back(a.sample(logits, {}));
      db.push_back(b.sample(logits, {}));
    }
    EXPECT_EQ(da, db) << "temperature " << temp;
    // Sampling, not greedy: several ids occur.
    EXPECT_GE(std::set<int32_t>(da.begin(), da.end()).size(), 4u) << "temperature " << temp;

    SamplingParams q = p;
    q.seed = 98765;
    Sampler c(q);
    std::vector<int32_t> dc;
    for (int i = 0; i < 500; ++i) dc.push_back(c.sample(logits, {}));
    EXPECT_NE(da, dc) << "a different seed gave the same 500 draws at temperature " << temp;
  }
}

TEST(Sampler, TemperatureShapesTheDistribution) {
  // p = {0.6, 0.3, 0.1}: at T=1 the frequencies follow p; a low temperature concentrates on 0.
  const std::vector<float> logits = logits_of({0.6, 0.3, 0.1});
  const int n = 20000;
  auto h = histogram(plain(7), logits, n);
  EXPECT_NEAR(h[0] / double(n), 0.6, 0.02);
  EXPECT_NEAR(h[1] / double(n), 0.3, 0.02);
  EXPECT_NEAR(h[2] / double(n), 0.1, 0.02);
  SamplingParams cold = plain(7);
  cold.temperature = 0.1f;  // 0.6^10 : 0.3^10 -> id 0 almost always
  auto hc = histogram(cold, logits, 2000);
  EXPECT_GE(hc[0], 1990);
}

TEST(Sampler, TopK1IsGreedyAtAnyTemperature) {
  std::vector<float> logits = {0.3f, 1.2f, 1.1f, -0.5f, 1.2f, 0.9f};  // tie 1 / 4 -> 1
  for (float temp : {0.1f, 0.8f, 1.0f, 3.0f, 100.0f}) {
    SamplingParams p = plain(42);
    p.temperature = temp;
    p.top_k = 1;
    Sampler s(p);
    for (int i = 0; i < 200; ++i) ASSERT_EQ(s.sample(logits, {}), 1) << "temperature " << temp;
  }
}

TEST(Sampler, TopKKeepsOnlyTheKBest) {
  // Flat-ish distribution over 8 ids; top-k = 3 allows exactly the three largest logits.
  const std::vector<float> logits = {0.0f, 0.5f, 0.1f, 0.45f, 0.2f, 0.4f, 0.3f, 0.05f};
  SamplingParams p = plain(3);
  p.temperature = 2.0f;
  p.top_k = 3;
  auto h = histogram(p, logits, 3000);
  EXPECT_EQ(keys(h), (std::set<int32_t>{1, 3, 5}));
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  // Probabilities by id (shuffled so that sorting matters):
  //   id 3: 0.5, id 0: 0.3, id 4: 0.1, id 1: 0.05, id 2: 0.05
  const std::vector<float> logits = logits_of({0.3, 0.05, 0.05, 0.5, 0.1});
  struct Case {
    float top_p;
    std::set<int32_t> allowed;
  };
  const Case cases[] = {
      {0.3f, {3}},           // 0.5 already reaches 0.3
      {0.5f - 1e-4f, {3}},   // just below the top token's mass
      {0.75f, {3, 0}},       // 0.5 < 0.75 <= 0.8
      {0.85f, {3, 0, 4}},    // 0.8 < 0.85 <= 0.9
      // 0.9 < 0.92 <= 0.95: ids 1 and 2 tie at 0.05 and ties sort by id, so 1 is in, 2 out.
      {0.92f, {3, 0, 4, 1}},
  };
  for (const Case& c : cases) {
    SamplingParams p = plain(11);
    p.top_p = c.top_p;
    auto h = histogram(p, logits, 4000);
    EXPECT_EQ(keys(h), c.allowed) << "top_p " << c.top_p;  // only allowed ids, each of them
  }
  // top_p = 1 is off: every id occurs.
  auto all = histogram(plain(11), logits, 4000);
  EXPECT_EQ(keys(all), (std::set<int32_t>{0, 1, 2, 3, 4}));
}

TEST(Sampler, TopPRenormalisesOverTheKeptPrefix) {
  // Keeping {3, 0} (0.5, 0.3) the draws split 5:3.
  const std::vector<float> logits = logits_of({0.3, 0.05, 0.05, 0.5, 0.1});
  SamplingParams p = plain(5);
  p.top_p = 0.75f;
  const int n = 16000;
  auto h = histogram(p, logits, n);
  EXPECT_NEAR(h[3] / double(n), 0.625, 0.02);
  EXPECT_NEAR(h[0] / double(n), 0.375, 0.02);
}

TEST(Sampler, MinPCutsTokensBelowMinPTimesTheMaxProb) {
  // id: 0     1     2     3     4
  //     0.06  0.4   0.2   0.3   0.04
  const std::vector<float> logits = logits_of({0.06, 0.4, 0.2, 0.3, 0.04});
  struct Case {
    float min_p;
    std::set<int32_t> allowed;
  };
  const Case cases[] = {
      {0.05f, {0, 1, 2, 3, 4}},  // threshold 0.02: nothing cut
      {0.125f, {0, 1, 2, 3}},    // threshold 0.05: 0.04 cut
      {0.2f, {1, 2, 3}},         // threshold 0.08: 0.06 and 0.04 cut
      {0.6f, {1, 3}},            // threshold 0.24: 0.2 cut too
      {0.9f, {1}},               // threshold 0.36: only the top token
  };
  for (const Case& c : cases) {
    SamplingParams p = plain(17);
    p.min_p = c.min_p;
    auto h = histogram(p, logits, 4000);
    EXPECT_EQ(keys(h), c.allowed) << "min_p " << c.min_p;
  }
}

// Repetition penalty, observed through greedy choices.
int32_t greedy(const std::vector<float>& logits, const std::vector<int32_t>& history,
               float penalty, int last_n) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repeat_penalty = penalty;
  p.repeat_last_n = last_n;
  return Sampler(p).sample(logits, history);
}

TEST(Sampler, RepeatPenaltyDividesPositiveLogits) {
  const std::vector<float> logits = {2.0f, 1.8f, -1.0f, -1.1f};
  EXPECT_EQ(greedy(logits, {}, 1.5f, 64), 0);
  EXPECT_EQ(greedy(logits, {0}, 1.0f, 64), 0);  // penalty 1 is off
  EXPECT_EQ(greedy(logits, {0}, 1.5f, 64), 1);  // 2.0 / 1.5 = 1.33 < 1.8
  EXPECT_EQ(greedy(logits, {0}, 1.05f, 64), 0); // 2.0 / 1.05 = 1.90 > 1.8
  EXPECT_EQ(greedy(logits, {0}, 0.5f, 64), 0);  // < 1 favours repeats: 4.0
  EXPECT_EQ(greedy({1.8f, 2.0f}, {0}, 0.5f, 64), 0);  // 1.8 / 0.5 = 3.6 > 2.0
}

TEST(Sampler, RepeatPenaltyMultipliesNegativeLogits) {
  // All negative: dividing -1.0 by 1.5 would make it larger (-0.67) and keep it the argmax;
  // multiplying makes it -1.5 < -1.2, so the choice flips.
  const std::vector<float> logits = {-1.0f, -1.2f, -5.0f};
  EXPECT_EQ(greedy(logits, {}, 1.5f, 64), 0);
  EXPECT_EQ(greedy(logits, {0}, 1.5f, 64), 1);
  EXPECT_EQ(greedy(logits, {0}, 1.1f, 64), 0);  // -1.1 > -1.2
  EXPECT_EQ(greedy(logits, {2}, 1.5f, 64), 0);  // penalising a loser changes nothing
}

TEST(Sampler, RepeatPenaltyAppliesOncePerToken) {
  // Token 0 three times in the history: 2.0 / 1.2 = 1.67 > 1.5 (once); 2.0 / 1.2^3 = 1.16 would
  // flip the choice.
  EXPECT_EQ(greedy({2.0f, 1.5f}, {0, 0, 0}, 1.2f, 64), 0);
}

TEST(Sampler, RepeatPenaltyLooksAtTheLastNTokensOnly) {
  const std::vector<float> logits = {2.0f, 1.8f, 0.0f, -3.0f};
  const std::vector<int32_t> history = {0, 3, 3, 3};
  EXPECT_EQ(greedy(logits, history, 2.0f, 3), 0);   // token 0 is 4 tokens back
  EXPECT_EQ(greedy(logits, history, 2.0f, 4), 1);   // now inside the window
  EXPECT_EQ(greedy(logits, history, 2.0f, 100), 1); // window longer than the history
  EXPECT_EQ(greedy(logits, history, 2.0f, 0), 0);   // last_n = 0 is off
  EXPECT_EQ(greedy(logits, {0, 2}, 2.0f, 1), 0);
  EXPECT_EQ(greedy(logits, {2, 0}, 2.0f, 1), 1);
}

TEST(Sampler, RepeatPenaltyAppliesBeforeTemperatureSampling) {
  // With top-k = 1 at temperature 1 the sample is the argmax of the penalised logits.
  SamplingParams p = plain(9);
  p.top_k = 1;
  p.repeat_penalty = 1.5f;
  Sampler s(p);
  EXPECT_EQ(s.sample({2.0f, 1.8f}, {0}), 1);
  EXPECT_EQ(s.sample({2.0f, 1.8f}, {1}), 0);
}

TEST(Sampler, HistoryIdsOutsideTheVocabularyAreIgnored) {
  EXPECT_EQ(greedy({2.0f, 1.8f}, {-1, 7, 1000}, 1.5f, 64), 0);
}

void expect_invalid(const SamplingParams& p, const std::string& flag) {
  try {
    p.validate();
    ADD_FAILURE() << "validate() accepted an invalid " << flag;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(flag), std::string::npos)
        << "message '" << e.what() << "' does not name " << flag;
  }
  // The sampler validates too.
  EXPECT_THROW(Sampler{p}, Error) << flag;
}

TEST(Sampler, LogitBiasShiftsAndBans) {
  SamplingParams p;  // greedy
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.5f};
  p.logit_bias = {{1, -100.0f}};  // ban the argmax: the next best wins
  EXPECT_EQ(Sampler(p).sample(logits, {}), 3);
  p.logit_bias = {{2, 3.5f}};  // -1 + 3.5 = 2.5 > 2.0
  EXPECT_EQ(Sampler(p).sample(logits, {}), 2);
  p.logit_bias = {{2, 2.5f}};  // 1.5 < 2.0
  EXPECT_EQ(Sampler(p).sample(logits, {}), 1);
  // A banned token is never drawn at any temperature.
  SamplingParams t = plain(7);
  t.logit_bias = {{0, -100.0f}, {1, -100.0f}};
  auto h = histogram(t, logits_of({0.45, 0.45, 0.05, 0.05}), 2000);
  EXPECT_EQ(keys(h), (std::set<int32_t>{2, 3}));
  // Ids outside the vocabulary and a vocabulary with every token banned are errors.
  p.logit_bias = {{4, 1.0f}};
  EXPECT_THROW(Sampler(p).sample(logits, {}), Error);
  p.logit_bias = {{0, -100.0f}, {1, -100.0f}, {2, -100.0f}, {3, -100.0f}};
  EXPECT_THROW(Sampler(p).sample(logits, {}), Error);
}

TEST(Sampler, TokenLogprobIsTheLogSoftmaxWithItsTopAlternatives) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, -4.0f};
  double z = 0;
  for (float x : logits) z += std::exp(x);
  TokenLogprob lp = token_logprob(logits, 2, 3);
  EXPECT_EQ(lp.token, 2);
  EXPECT_NEAR(lp.logprob, 2.0 - std::log(z), 1e-5);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].first, 1);  // tie between 1 and 3: lower id first
  EXPECT_EQ(lp.top[1].first, 3);
  EXPECT_EQ(lp.top[2].first, 2);
  EXPECT_NEAR(lp.top[0].second, 3.0 - std::log(z), 1e-5);
  EXPECT_NEAR(lp.top[2].second, lp.logprob, 1e-6);
  EXPECT_TRUE(token_logprob(logits, 0, 0).top.empty());
  EXPECT_EQ(token_logprob(logits, 0, 99).top.size(), logits.size());
  // Probabilities over the vocabulary sum to one.
  double sum = 0;
  for (int32_t t = 0; t < 5; ++t) sum += std::exp(token_logprob(logits, t, 0).logprob);
  EXPECT_NEAR(sum, 1.0, 1e-5);
  // After a ban the banned token has -inf and the others share its mass.
  std::vector<float> biased = apply_logit_bias(logits, {{1, -100.0f}});
  EXPECT_EQ(token_logprob(biased, 1, 0).logprob, -std::numeric_limits<float>::infinity());
  EXPECT_NEAR(token_logprob(biased, 3, 0).logprob, 3.0 - std::log(z - std::exp(3.0)), 1e-5);
  EXPECT_THROW(token_logprob(logits, 5, 0), Error);
}

TEST(SamplingParams, DefaultsAndBoundaryValuesAreValid) {
  EXPECT_NO_THROW(SamplingParams{}.validate());
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.repeat_last_n = 0;
  EXPECT_NO_THROW(p.validate());
  p.top_p = 1e-6f;
  p.min_p = 0.999f;
  p.repeat_penalty = 1e-3f;
  p.temperature = 1e3f;
  EXPECT_NO_THROW(p.validate());
}

TEST(SamplingParams, InvalidValuesNameTheFlag) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (float t : {-1.0f, -1e-6f, nan, inf}) {
    SamplingParams p;
    p.temperature = t;
    expect_invalid(p, "--temp");
  }
  {
    SamplingParams p;
    p.top_k = -1;
    expect_invalid(p, "--top-k");
  }
  for (float v : {0.0f, -0.5f, 1.5f, 1.0001f, nan}) {
    SamplingParams p;
    p.top_p = v;
    expect_invalid(p, "--top-p");
  }
  for (float v : {1.0f, 1.5f, -0.1f, nan}) {
    SamplingParams p;
    p.min_p = v;
    expect_invalid(p, "--min-p");
  }
  for (float v : {0.0f, -1.0f, nan, inf}) {
    SamplingParams p;
    p.repeat_penalty = v;
    expect_invalid(p, "--repeat-penalty");
  }
  {
    SamplingParams p;
    p.repeat_last_n = -1;
    expect_invalid(p, "--repeat-last-n");
  }
}

TEST(SamplingParams, MessageQuotesTheBadValue) {
  SamplingParams p;
  p.top_p = 1.5f;
  try {
    p.validate();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1.5"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fastkv
