#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "common/error.h"

namespace fastkv {

void SamplingParams::validate() const {
  if (!(temperature >= 0) || !std::isfinite(temperature)) {
    fail("--temp must be a finite number >= 0, got ", temperature);
  }
  if (top_k < 0) fail("--top-k must be >= 0, got ", top_k);
  if (!(top_p > 0 && top_p <= 1)) fail("--top-p must be in (0, 1], got ", top_p);
  if (!(min_p >= 0 && min_p < 1)) fail("--min-p must be in [0, 1), got ", min_p);
  if (!(repeat_penalty > 0) || !std::isfinite(repeat_penalty)) {
    fail("--repeat-penalty must be a finite number > 0, got ", repeat_penalty);
  }
  if (repeat_last_n < 0) fail("--repeat-last-n must be >= 0, got ", repeat_last_n);
}

Sampler::Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) { p.validate(); }

int32_t argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::vector<float> apply_logit_bias(const std::vector<float>& raw,
                                    const std::vector<std::pair<int32_t, float>>& bias) {
  std::vector<float> logits = raw;
  if (bias.empty()) return logits;
  const int V = static_cast<int>(logits.size());
  for (const auto& [id, b] : bias) {
    if (id < 0 || id >= V) fail("logit_bias: token id ", id, " is outside the vocabulary of ", V);
    logits[id] = b <= -100.0f ? -std::numeric_limits<float>::infinity() : logits[id] + b;
  }
  if (*std::max_element(logits.begin(), logits.end()) == -std::numeric_limits<float>::infinity()) {
    fail("logit_bias bans every token of the vocabulary");
  }
  return logits;
}

TokenLogprob token_logprob(const std::vector<float>& biased, int32_t token, int n_top) {
  const int V = static_cast<int>(biased.size());
  if (token < 0 || token >= V) fail("token ", token, " is outside the vocabulary of ", V);
  // log p_i = x_i - (max + log sum_j exp(x_j - max))
  const float mx = *std::max_element(biased.begin(), biased.end());
  double sum = 0;
  for (float x : biased) sum += std::exp(static_cast<double>(x) - mx);
  const double lse = mx + std::log(sum);
  auto lp = [&](int32_t i) { return static_cast<float>(biased[i] - lse); };
  TokenLogprob out;
  out.token = token;
  out.logprob = lp(token);
  const int k = std::clamp(n_top, 0, V);
  if (k > 0) {
    std::vector<int32_t> idx(V);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
      return biased[a] > biased[b] || (biased[a] == biased[b] && a < b);
    });
    for (int i = 0; i < k; ++i) out.top.emplace_back(idx[i], lp(idx[i]));
  }
  return out;
}

int32_t Sampler::sample(const std::vector<float>& raw, const std::vector<int32_t>& history) {
  std::vector<float> logits = apply_logit_bias(raw, p_.logit_bias);
  const int V = static_cast<int>(logits.size());
  if (p_.repeat_penalty != 1.0f && p_.repeat_last_n > 0) {
    std::unordered_set<int32_t> seen;
    const size_t from = history.size() > static_cast<size_t>(p_.repeat_last_n)
                            ? history.size() - p_.repeat_last_n
                            : 0;
    for (size_t i = from; i < history.size(); ++i) {
      int32_t t = history[i];
      if (t < 0 || t >= V || !seen.insert(t).second) continue;
      logits[t] = logits[t] > 0 ? logits[t] / p_.repeat_penalty : logits[t] * p_.repeat_penalty;
    }
  }
  if (p_.temperature == 0.0f) return argmax(logits);

  // Candidates sorted by logit, descending (ties: lower id first).
  std::vector<int32_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  const int k = p_.top_k > 0 ? std::min(p_.top_k, V) : V;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  idx.resize(k);
  // Softmax at temperature T over the top-k.
  std::vector<double> prob(k);
  const double mx = logits[idx[0]];
  double sum = 0;
  for (int i = 0; i < k; ++i) {
    prob[i] = std::exp((logits[idx[i]] - mx) / p_.temperature);
    sum += prob[i];
  }
  for (double& pr : prob) pr /= sum;
  // top-p: smallest prefix whose mass reaches top_p.
  int keep = k;
  if (p_.top_p < 1.0f) {
    double acc = 0;
    for (int i = 0; i < k; ++i) {
      acc += prob[i];
      if (acc >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  // min-p: drop tokens below min_p × the top probability.
  if (p_.min_p > 0) {
    int i = 1;
    while (i < keep && prob[i] >= p_.min_p * prob[0]) ++i;
    keep = i;
  }
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double total = 0;
  for (int i = 0; i < keep; ++i) total += prob[i];
  double r = u(rng_) * total;
  for (int i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r <= 0) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace fastkv
