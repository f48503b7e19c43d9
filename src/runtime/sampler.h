// Token sampling: logit bias, repetition penalty, temperature, top-k, top-p, min-p, seeded RNG.
// temperature == 0 is greedy (argmax; ties go to the lowest id).
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace fastkv {

struct SamplingParams {
  float temperature = 0.0f;    // 0 = greedy; must be >= 0
  int top_k = 40;              // 0 = off; must be >= 0
  float top_p = 0.95f;         // in (0, 1]; 1 = off
  float min_p = 0.05f;         // in [0, 1); 0 = off
  float repeat_penalty = 1.0f; // > 0; 1 = off
  int repeat_last_n = 64;      // tokens of history the penalty looks at; >= 0
  uint64_t seed = 0xFA57C0DEull;
  // (token id, bias) added to that token's logit before everything else; a bias <= -100 bans
  // the token (its logit becomes -inf), as OpenAI's logit_bias. Ids must be in the vocabulary.
  std::vector<std::pair<int32_t, float>> logit_bias;

  // Throws fastkv::Error with the flag name (e.g. "--top-p must be in (0, 1], got 1.5").
  void validate() const;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p);
  // Picks the next token from raw logits [V]; `history` is prompt + generated so far.
  int32_t sample(const std::vector<float>& logits, const std::vector<int32_t>& history);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

int32_t argmax(const std::vector<float>& logits);

// `logits` [V] with the bias applied (sampling's first step). Throws fastkv::Error for an id
// outside the vocabulary or when every token is banned.
std::vector<float> apply_logit_bias(const std::vector<float>& logits,
                                    const std::vector<std::pair<int32_t, float>>& bias);

// The log-probability of a generated token and of the most likely alternatives, from the
// log-softmax of the logits after logit_bias (before penalties, temperature and truncation).
struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;                             // -inf for a banned token
  std::vector<std::pair<int32_t, float>> top;    // [n_top] (id, logprob), most likely first
};
// `biased` [V]: logits after apply_logit_bias. n_top >= 0 alternatives (ties: lower id first).
TokenLogprob token_logprob(const std::vector<float>& biased, int32_t token, int n_top);

}  // namespace fastkv
