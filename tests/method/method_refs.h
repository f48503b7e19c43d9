// Scalar reference implementations of the KV-compression methods, written directly from their
// definitions (docs/methods.md) in double precision, with naive loops (n × n is fine here):
// the tests compare the policies' selections against these, never against the kernels.
//
// Layouts as in the kernels: q [n, H, d], k [n, G, d], token-major.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

namespace fastkv::ref {

using Vec = std::vector<double>;
using Mat = std::vector<Vec>;
using Set = std::set<int32_t>;

inline double dot(const float* a, const float* b, int d) {
  double s = 0;
  for (int t = 0; t < d; ++t) s += static_cast<double>(a[t]) * b[t];
  return s;
}

// softmax_j(q[i, h] · k[j, h/g] / sqrt(d)) over j = 0..i (size i + 1).
inline Vec attention_row(const float* q, const float* k, int H, int G, int d, int i, int h) {
  const int kvh = h / (H / G);
  const float* qi = q + (static_cast<int64_t>(i) * H + h) * d;
  Vec s(i + 1);
  double mx = -std::numeric_limits<double>::infinity();
  for (int j = 0; j <= i; ++j) {
    s[j] = dot(qi, k + (static_cast<int64_t>(j) * G + kvh) * d, d) / std::sqrt(double(d));
    mx = std::max(mx, s[j]);
  }
  double sum = 0;
  for (double& x : s) sum += (x = std::exp(x - mx));
  for (double& x : s) x /= sum;
  return s;
}

// [H][n - w]: attention of the last w queries summed, for the keys before the window.
inline Mat window_scores(const float* q, const float* k, int n, int H, int G, int d, int w) {
  Mat out(H, Vec(n - w, 0.0));
  for (int h = 0; h < H; ++h) {
    for (int i = n - w; i < n; ++i) {
      Vec a = attention_row(q, k, H, G, d, i, h);
      for (int j = 0; j < n - w; ++j) out[h][j] += a[j];
    }
  }
  return out;
}

// Stride-1 pooling, odd kernel, zero padding: avg divides by kernel; max ignores padding.
inline Vec pool(const Vec& x, int kernel, bool is_max) {
  const int len = static_cast<int>(x.size()), half = kernel / 2;
  Vec out(len);
  for (int j = 0; j < len; ++j) {
    double m = -std::numeric_limits<double>::infinity(), s = 0;
    for (int t = std::max(0, j - half); t <= std::min(len - 1, j + half); ++t) {
      m = std::max(m, x[t]);
      s += x[t];
    }
    out[j] = is_max ? m : s / kernel;
  }
  return out;
}

// [H][n]: the attention probability each key receives, summed over all queries (causal).
inline Mat column_sums(const float* q, const float* k, int n, int H, int G, int d) {
  Mat out(H, Vec(n, 0.0));
  for (int h = 0; h < H; ++h) {
    for (int i = 0; i < n; ++i) {
      Vec a = attention_row(q, k, H, G, d, i, h);
      for (int j = 0; j <= i; ++j) out[h][j] += a[j];
    }
  }
  return out;
}

// Indices of the k largest of `x` among `candidates` (descending; ties: lower index first).
inline std::vector<int32_t> topk(const Vec& x, int k, const std::vector<int32_t>& candidates) {
  std::vector<int32_t> idx = candidates;
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
  idx.resize(std::min<size_t>(idx.size(), static_cast<size_t>(std::max(0, k))));
  return idx;
}

inline std::vector<int32_t> range(int lo, int hi) {
  std::vector<int32_t> v(std::max(0, hi - lo));
  std::iota(v.begin(), v.end(), lo);
  return v;
}

// `chosen` (a subset of `candidates`) is a valid top-|chosen| of `scores` over `candidates`:
// every chosen score >= every other candidate's, up to `tol` relative (ties at the boundary).
inline ::testing::AssertionResult valid_topk(const Set& chosen, const Vec& scores,
                                             const std::vector<int32_t>& candidates,
                                             double tol = 1e-4) {
  double min_in = std::numeric_limits<double>::infinity();
  double max_out = -std::numeric_limits<double>::infinity();
  Set cand(candidates.begin(), candidates.end());
  for (int32_t j : chosen) {
    if (!cand.count(j)) return ::testing::AssertionFailure() << j << " is not a candidate";
    min_in = std::min(min_in, scores[j]);
  }
  for (int32_t j : candidates) {
    if (!chosen.count(j)) max_out = std::max(max_out, scores[j]);
  }
  if (min_in >= max_out - tol * std::fabs(max_out)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "not a valid top-k: lowest chosen score " << min_in << " < highest other " << max_out;
}

// `ours` equals the reference selection `want` over the candidates, or (only where scores tie
// within 1e-4 relative at the boundary) is another valid top-k of the same size.
inline ::testing::AssertionResult same_or_tied(const Set& ours, const Set& want, const Vec& scores,
                                               const std::vector<int32_t>& candidates) {
  if (ours == want) return ::testing::AssertionSuccess();
  if (ours.size() != want.size()) {
    return ::testing::AssertionFailure()
           << "sizes differ: ours " << ours.size() << ", reference " << want.size();
  }
  return valid_topk(ours, scores, candidates);
}

// ---- per-method references --------------------------------------------------------------

struct HeadSelection {
  std::vector<Vec> scores;  // [heads][candidates' score space]
  std::vector<Set> keep;    // [heads] kept indices (window included)
  bool dropped = false;
  int capacity = 0;
};

// snapkv: per query head pooled window scores, top C - w + window.
inline HeadSelection snapkv(const float* q, const float* k, int n, int H, int G, int d, int C,
                            int w, int kernel, bool is_max) {
  HeadSelection r;
  r.dropped = n > C && C >= w + 1;
  r.capacity = r.dropped ? C : n;
  r.keep.assign(H, {});
  if (!r.dropped) {
    for (Set& s : r.keep)
      for (int j = 0; j < n; ++j) s.insert(j);
    return r;
  }
  Mat raw = window_scores(q, k, n, H, G, d, w);
  for (int h = 0; h < H; ++h) {
    r.scores.push_back(pool(raw[h], kernel, is_max));
    for (int32_t j : topk(r.scores[h], C - w, range(0, n - w))) r.keep[h].insert(j);
    for (int j = n - w; j < n; ++j) r.keep[h].insert(j);
  }
  return r;
}

// GQA-aware pooled window scores [G][n - w] (fastkv, adakv).
inline Mat group_window_scores(const float* q, const float* k, int n, int H, int G, int d, int w,
                               int kernel, bool is_max) {
  Mat raw = window_scores(q, k, n, H, G, d, w);
  Mat out(G, Vec(n - w, 0.0));
  for (int h = 0; h < H; ++h) {
    Vec p = pool(raw[h], kernel, is_max);
    for (int j = 0; j < n - w; ++j) out[h / (H / G)][j] += p[j];
  }
  return out;
}

// h2o: column sums summed per KV head; top C - w of the keys before the window + window.
inline HeadSelection h2o(const float* q, const float* k, int n, int H, int G, int d, int C, int w) {
  HeadSelection r;
  r.dropped = n > C && C >= w + 1;
  r.capacity = r.dropped ? C : n;
  r.keep.assign(G, {});
  if (!r.dropped) {
    for (Set& s : r.keep)
      for (int j = 0; j < n; ++j) s.insert(j);
    return r;
  }
  Mat cs = column_sums(q, k, n, H, G, d);
  r.scores.assign(G, Vec(n, 0.0));
  for (int h = 0; h < H; ++h) {
    for (int j = 0; j < n; ++j) r.scores[h / (H / G)][j] += cs[h][j];
  }
  for (int g = 0; g < G; ++g) {
    for (int32_t j : topk(r.scores[g], C - w, range(0, n - w))) r.keep[g].insert(j);
    for (int j = n - w; j < n; ++j) r.keep[g].insert(j);
  }
  return r;
}

// adakv: budget C × G; per-head safeguard s = min(int(alpha × C), C - w); the rest of the
// non-window budget by a layer-wide top-k (ties: lower head, then lower index); + window.
struct AdaKVSelection : HeadSelection {
  int safeguard = 0;
};
inline AdaKVSelection adakv(const float* q, const float* k, int n, int H, int G, int d, int C,
                            int w, int kernel, bool is_max, double alpha) {
  AdaKVSelection r;
  r.dropped = n > C && C >= w + 1;
  r.capacity = r.dropped ? C : n;
  r.keep.assign(G, {});
  if (!r.dropped) {
    for (Set& s : r.keep)
      for (int j = 0; j < n; ++j) s.insert(j);
    return r;
  }
  const int before = n - w;
  r.scores = group_window_scores(q, k, n, H, G, d, w, kernel, is_max);
  r.safeguard = std::min(static_cast<int>(alpha * C), C - w);
  struct Entry {
    double score;
    int head, idx;
  };
  std::vector<Entry> rest;
  for (int g = 0; g < G; ++g) {
    std::vector<int32_t> top = topk(r.scores[g], r.safeguard, range(0, before));
    Set mine(top.begin(), top.end());
    r.keep[g] = mine;
    for (int j = 0; j < before; ++j) {
      if (!mine.count(j)) rest.push_back({r.scores[g][j], g, j});
    }
  }
  std::stable_sort(rest.begin(), rest.end(),
                   [](const Entry& a, const Entry& b) { return a.score > b.score; });
  const size_t global = static_cast<size_t>(G) * (C - w - r.safeguard);
  for (size_t e = 0; e < global && e < rest.size(); ++e) r.keep[rest[e].head].insert(rest[e].idx);
  for (int g = 0; g < G; ++g) {
    for (int j = before; j < n; ++j) r.keep[g].insert(j);
  }
  return r;
}

// Checks an adakv selection `ours` ([G] sets, window included) is the reference's or another
// valid two-stage selection under ties (see docs/methods.md).
inline ::testing::AssertionResult adakv_valid(const std::vector<Set>& ours,
                                              const AdaKVSelection& want, int n, int w) {
  if (ours == want.keep) return ::testing::AssertionSuccess();
  const int G = static_cast<int>(want.keep.size()), before = n - w;
  size_t total = 0, want_total = 0;
  double t = std::numeric_limits<double>::infinity();   // lowest global pick
  double u = -std::numeric_limits<double>::infinity();  // highest entry not kept
  for (int g = 0; g < G; ++g) {
    Set top;
    for (int32_t j : ours[g]) {
      if (j < before) top.insert(j);
    }
    for (int j = before; j < n; ++j) {
      if (!ours[g].count(j))
        return ::testing::AssertionFailure() << "head " << g << " lacks window key " << j;
    }
    if (static_cast<int>(top.size()) < want.safeguard) {
      return ::testing::AssertionFailure() << "head " << g << " holds fewer than the safeguard";
    }
    auto ok = valid_topk(top, want.scores[g], range(0, before));
    if (!ok) return ok << " (head " << g << ")";
    total += ours[g].size();
    want_total += want.keep[g].size();
    for (int j = 0; j < before; ++j) {
      if (top.count(j)) {
        if (static_cast<int>(top.size()) > want.safeguard) t = std::min(t, want.scores[g][j]);
      } else {
        u = std::max(u, want.scores[g][j]);
      }
    }
  }
  if (total != want_total) {
    return ::testing::AssertionFailure() << "rows " << total << " != reference " << want_total;
  }
  if (t < u - 1e-4 * std::fabs(u)) {
    return ::testing::AssertionFailure()
           << "a global pick (" << t << ") is below an entry left out (" << u << ")";
  }
  return ::testing::AssertionSuccess();
}

// pyramidinfer at layer i of L: returns the kept (propagated) indices, the scores and the
// candidates (everything but the forced sinks and last token).
struct PyramidSelection {
  bool dropped = false;
  int target = 0;
  Vec scores;
  Set keep;
  std::vector<int32_t> candidates;
};
inline PyramidSelection pyramidinfer(const float* q, const float* k, int n, int H, int G, int d,
                                     int layer, int L, double recent_ratio, double decay) {
  PyramidSelection r;
  const double pi = std::acos(-1.0);
  const double rho = (1 - decay) * (std::cos(pi * layer / L) + 1) / 2 + decay;
  const int R = static_cast<int>(n * recent_ratio);
  const int target = static_cast<int>(n * rho);
  r.dropped = target < n && target >= 8 && R >= 1;
  r.target = r.dropped ? target : n;
  if (!r.dropped) {
    for (int j = 0; j < n; ++j) r.keep.insert(j);
    return r;
  }
  r.scores.assign(n, 0.0);
  double wsum = 0;
  for (int t = 0; t < R; ++t) {
    const double wt = R > 1 ? 1.0 + 0.2 * t / (R - 1) : 1.0;
    wsum += wt;
    const int i = n - R + t;
    for (int h = 0; h < H; ++h) {
      Vec a = attention_row(q, k, H, G, d, i, h);
      for (int j = 0; j <= i; ++j) r.scores[j] += wt * a[j];
    }
  }
  for (double& s : r.scores) s /= wsum * H;
  r.candidates = range(4, n - 1);
  for (int32_t j : topk(r.scores, target - 5, r.candidates)) r.keep.insert(j);
  for (int j = 0; j < 4; ++j) r.keep.insert(j);
  r.keep.insert(n - 1);
  return r;
}

// gemfilter: avg-pooled (kernel, zero padding counted) sum over heads of the raw last-query dot
// products; the top T sorted.
struct GemFilterSelection {
  Vec scores;
  Set selected;
};
inline GemFilterSelection gemfilter(const float* q, const float* k, int n, int H, int G, int d,
                                    int T, int kernel) {
  GemFilterSelection r;
  Vec raw(n, 0.0);
  for (int h = 0; h < H; ++h) {
    const float* ql = q + (static_cast<int64_t>(n - 1) * H + h) * d;
    for (int j = 0; j < n; ++j)
      raw[j] += dot(ql, k + (static_cast<int64_t>(j) * G + h / (H / G)) * d, d);
  }
  r.scores = pool(raw, kernel, false);
  for (int32_t j : topk(r.scores, T, range(0, n))) r.selected.insert(j);
  return r;
}

}  // namespace fastkv::ref
