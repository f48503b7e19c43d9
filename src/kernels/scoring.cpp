#include "kernels/scoring.h"
#include "kernels/parallel.h"
#include "kernels/vec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace fastkv::kernels {

namespace {

// For each query head h and each of the queries i = first..n-1 (r = i - first), the causal
// softmax over keys 0..i of q[i, h] · k[j, h/g] / sqrt(d), weighted by weights[r] (1 when
// weights is nullptr) and added into out[h, j] for j < out_len. out: [H, out_len], zeroed here.
void accumulate_recent_softmax(const float* q, const float* k, int n, int H, int G, int d,
                               int first, const float* weights, int out_len, float* out) {
  const int g = H / G;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::fill(out, out + static_cast<int64_t>(H) * out_len, 0.0f);
#pragma omp parallel for if (worth_parallel(static_cast<int64_t>(n) * H * (n - first) * d))
  for (int h = 0; h < H; ++h) {
    std::vector<float> s(n);  // one query's scores over the keys it sees
    const int kvh = h / g;
    float* oh = out + static_cast<int64_t>(h) * out_len;
    for (int i = first; i < n; ++i) {
      const float* qi = q + (static_cast<int64_t>(i) * H + h) * d;
      dot_rows(qi, k + static_cast<int64_t>(kvh) * d, static_cast<int64_t>(G) * d, i + 1, d, scale,
               s.data());
      const float sum = exp_shift_sum(s.data(), i + 1, max_of(s.data(), i + 1));
      const float wr = (weights ? weights[i - first] : 1.0f) / sum;
      axpy(wr, s.data(), oh, std::min(out_len, i + 1));
    }
  }
}

}  // namespace

void window_scores(const float* q, const float* k, int n, int H, int G, int d, int w, float* out) {
  accumulate_recent_softmax(q, k, n, H, G, d, n - w, nullptr, n - w, out);
}

void pool1d(const float* in, int len, int kernel, PoolType type, float* out) {
  const int half = kernel / 2;
  for (int j = 0; j < len; ++j) {
    const int lo = std::max(0, j - half), hi = std::min(len - 1, j + half);
    if (type == PoolType::kMax) {
      float m = in[lo];
      for (int t = lo + 1; t <= hi; ++t) m = std::max(m, in[t]);
      out[j] = m;
    } else {
      float s = 0;
      for (int t = lo; t <= hi; ++t) s += in[t];
      out[j] = s / static_cast<float>(kernel);
    }
  }
}

void grouped_window_scores(const float* q, const float* k, int n, int H, int G, int d, int w,
                           int kernel, PoolType pool, float* out) {
  const int before = n - w;
  const int g = H / G;
  std::vector<float> raw(static_cast<size_t>(H) * before), pooled(before);
  window_scores(q, k, n, H, G, d, w, raw.data());
  std::fill(out, out + static_cast<int64_t>(G) * before, 0.0f);
  for (int h = 0; h < H; ++h) {
    pool1d(raw.data() + static_cast<int64_t>(h) * before, before, kernel, pool, pooled.data());
    float* gs = out + static_cast<int64_t>(h / g) * before;
    for (int j = 0; j < before; ++j) gs[j] += pooled[j];
  }
}

std::vector<int32_t> topk(const float* values, int len, int k) {
  k = std::max(0, std::min(k, len));
  std::vector<int32_t> idx(len);
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  });
  idx.resize(k);
  return idx;
}

void last_query_dot_scores(const float* q, const float* k, int n, int H, int G, int d, float* out) {
  const int g = H / G;
  std::fill(out, out + n, 0.0f);
  for (int h = 0; h < H; ++h) {
    const float* qi = q + (static_cast<int64_t>(n - 1) * H + h) * d;
    const int kvh = h / g;
    for (int j = 0; j < n; ++j) {
      const float* kj = k + (static_cast<int64_t>(j) * G + kvh) * d;
      float dot = 0;
      for (int t = 0; t < d; ++t) dot += qi[t] * kj[t];
      out[j] += dot;
    }
  }
}

void recent_query_scores(const float* q, const float* k, int n, int H, int G, int d, int R,
                         const float* weights, float* out) {
  accumulate_recent_softmax(q, k, n, H, G, d, n - R, weights, n, out);
}

}  // namespace fastkv::kernels
