#include "kernels/attention.h"
#include "kernels/parallel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace fastkv::kernels {
namespace {
constexpr int kTile = 128;    // keys per tile
constexpr int kMaxGroup = 64; // query heads per KV head handled at once
}  // namespace

void attend_rows(const float* q, int g, const float* k, const float* v, int64_t len,
                 int64_t stride, int d, float* out) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  float m[kMaxGroup], l[kMaxGroup];
  float s[kTile];
  for (int h = 0; h < g; ++h) {
    m[h] = -std::numeric_limits<float>::infinity();
    l[h] = 0;
    std::fill(out + static_cast<int64_t>(h) * d, out + static_cast<int64_t>(h + 1) * d, 0.0f);
  }
  for (int64_t t0 = 0; t0 < len; t0 += kTile) {
    const int tn = static_cast<int>(std::min<int64_t>(kTile, len - t0));
    for (int h = 0; h < g; ++h) {
      const float* qh = q + static_cast<int64_t>(h) * d;
      float* oh = out + static_cast<int64_t>(h) * d;
      float tile_max = -std::numeric_limits<float>::infinity();
      for (int t = 0; t < tn; ++t) {
        const float* kr = k + (t0 + t) * stride;
        float dot = 0;
        for (int j = 0; j < d; ++j) dot += qh[j] * kr[j];
        s[t] = dot * scale;
        tile_max = std::max(tile_max, s[t]);
      }
      const float new_m = std::max(m[h], tile_max);
      const float correction = std::exp(m[h] - new_m);  // 0 on the first tile
      l[h] *= correction;
      for (int j = 0; j < d; ++j) oh[j] *= correction;
      for (int t = 0; t < tn; ++t) {
        const float p = std::exp(s[t] - new_m);
        l[h] += p;
        const float* vr = v + (t0 + t) * stride;
        for (int j = 0; j < d; ++j) oh[j] += p * vr[j];
      }
      m[h] = new_m;
    }
  }
  for (int h = 0; h < g; ++h) {
    const float inv = l[h] > 0 ? 1.0f / l[h] : 0.0f;
    float* oh = out + static_cast<int64_t>(h) * d;
    for (int j = 0; j < d; ++j) oh[j] *= inv;
  }
}

void causal_attention(const float* q, const float* k, const float* v, int n, int H, int G, int d,
                      float* out) {
  const int g = H / G;
  const int64_t q_stride = static_cast<int64_t>(H) * d;
  const int64_t kv_stride = static_cast<int64_t>(G) * d;
#pragma omp parallel for collapse(2) schedule(dynamic, 4) if (worth_parallel(static_cast<int64_t>(n) * n * H * d))
  for (int i = 0; i < n; ++i) {
    for (int kvh = 0; kvh < G; ++kvh) {
      attend_rows(q + i * q_stride + static_cast<int64_t>(kvh) * g * d, g,
                  k + static_cast<int64_t>(kvh) * d, v + static_cast<int64_t>(kvh) * d, i + 1,
                  kv_stride, d, out + i * q_stride + static_cast<int64_t>(kvh) * g * d);
    }
  }
}

}  // namespace fastkv::kernels
