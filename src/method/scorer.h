// Score-and-keep methods: a method scores the keys before the observation window, one row per
// cache head, and ScorerMethod does the rest (the budget, the window, the top-k, the
// LayerDecision), as a kvpress "press" supplies only score().
//
// At a layer with n live tokens, C = capacity(in) (BudgetConfig::capacity(n) unless a method
// changes it per layer), w = window:
//   nothing is dropped when n <= C or C < w + 1: every head keeps every token (cache_heads = G,
//     no scores computed unless the method asks for them anyway, e.g. FastKV's TSP layer);
//   else scores [cache_heads, stride] = score(in) (stride >= n - w; only the first n - w
//     entries of a row, the keys before the window, are ranked) and cache head h keeps
//       allocate(...) = the top (C - w) keys of row h + the w window keys   (the default;
//       AdaKV shares the layer's budget across heads instead).
// finish() may add to the decision afterwards (FastKV: token-selective propagation).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "method/budget.h"
#include "method/method.h"

namespace fastkv {

// What a method's score() returns.
struct KeyScores {
  int cache_heads = 0;        // rows: G (per KV head) or H (per query head)
  int stride = 0;             // row length (>= n - w)
  std::vector<float> scores;  // [cache_heads, stride], higher = keep
  int64_t flops = 0;          // FLOPs spent scoring (2 per multiply-add)
};

// Per cache head: the top (capacity - window) of the first n - window scores of its row, then
// the window keys n - window .. n - 1. Returns [cache_heads] kept live-token indices.
std::vector<std::vector<int32_t>> keep_top_then_window(const KeyScores& s, int n, int window,
                                                       int capacity);

// FastKV's GQA-aware window score (also AdaKV's): pool(window_scores) of each query head over
// the n - w keys before the window, summed over the g query heads of each KV head, on
// post-RoPE q [n, H, d] and k [n, G, d]. Returns [G, n - w].
KeyScores grouped_window_key_scores(const BudgetConfig& cfg, const float* q, const float* k, int n,
                                    int H, int G, int d);

class ScorerMethod : public CompressionMethod {
 public:
  ScorerMethod(std::string name, const BudgetConfig& budget)
      : name_(std::move(name)), budget_(budget) {}
  std::string name() const override { return name_; }
  LayerDecision on_layer(const LayerInput& in) override;
  // score() reads at most the observation window's queries (grouped_window_key_scores,
  // snapkv_scores; H2O none), so the rest may be overwritten.
  int queries_read(int, int n) const override { return std::min(n, budget_.window); }
  const BudgetConfig& budget() const { return budget_; }

 protected:
  // C for this layer; the default is budget().capacity(in.n).
  virtual int capacity(const LayerInput& in) const { return budget_.capacity(in.n); }
  // Whether this layer drops rows: n > C and C >= w + 1.
  bool drops(const LayerInput& in) const;
  // Scores of the keys before the window (called only when drops(in) or wants_scores(in)).
  virtual KeyScores score(const LayerInput& in) = 0;
  // Whether to score a layer that drops nothing (the scores then reach finish() only).
  virtual bool wants_scores(const LayerInput& in) const { return false; }
  // The kept rows of each cache head for capacity C; the default is keep_top_then_window.
  virtual std::vector<std::vector<int32_t>> allocate(const KeyScores& s, const LayerInput& in,
                                                     int capacity);
  // Adds to the decision after the keep step; `s` is null when nothing was scored.
  virtual void finish(const LayerInput& in, const KeyScores* s, LayerDecision& d) {}

 private:
  std::string name_;
  BudgetConfig budget_;
};

}  // namespace fastkv
