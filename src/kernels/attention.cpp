#include "kernels/attention.h"
#include "kernels/parallel.h"

#include <cblas.h>

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
  // Blocks of kQBlock queries of one head against tiles of kKBlock keys: S = Q·Kᵀ and O += P·V
  // are small GEMMs (OpenBLAS, single-threaded inside the parallel loop); the softmax runs
  // online across key tiles, so only a kQBlock × kKBlock score tile exists at a time.
  constexpr int kQBlock = 64, kKBlock = 256;
  const int g = H / G;
  const int64_t q_stride = static_cast<int64_t>(H) * d;
  const int64_t kv_stride = static_cast<int64_t>(G) * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int n_qblocks = (n + kQBlock - 1) / kQBlock;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (worth_parallel(static_cast<int64_t>(n) * n * H * d))
  for (int h = 0; h < H; ++h) {
    for (int qb = 0; qb < n_qblocks; ++qb) {
      const int i0 = qb * kQBlock, qn = std::min(kQBlock, n - i0);
      const float* qh = q + i0 * q_stride + static_cast<int64_t>(h) * d;
      const float* kh = k + static_cast<int64_t>(h / g) * d;
      const float* vh = v + static_cast<int64_t>(h / g) * d;
      float* oh = out + i0 * q_stride + static_cast<int64_t>(h) * d;
      std::vector<float> s(static_cast<size_t>(kQBlock) * kKBlock);
      std::vector<float> acc(static_cast<size_t>(kQBlock) * d, 0.0f);
      std::vector<float> m(kQBlock, -std::numeric_limits<float>::infinity()), l(kQBlock, 0.0f);
      const int keys = i0 + qn;  // keys visible to the last query of the block
      for (int j0 = 0; j0 < keys; j0 += kKBlock) {
        const int kn = std::min(kKBlock, keys - j0);
        // S[qn, kn] = Q · Kᵀ × scale
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, qn, kn, d, scale, qh, q_stride,
                    kh + j0 * kv_stride, kv_stride, 0.0f, s.data(), kKBlock);
        for (int r = 0; r < qn; ++r) {
          float* sr = s.data() + static_cast<int64_t>(r) * kKBlock;
          const int visible = std::min(kn, i0 + r + 1 - j0);  // causal: key j <= query i
          float tile_max = -std::numeric_limits<float>::infinity();
          for (int t = 0; t < visible; ++t) tile_max = std::max(tile_max, sr[t]);
          const float new_m = std::max(m[r], tile_max);
          const float corr = std::exp(m[r] - new_m);
          float sum = 0;
          for (int t = 0; t < visible; ++t) {
            sr[t] = std::exp(sr[t] - new_m);
            sum += sr[t];
          }
          for (int t = std::max(visible, 0); t < kn; ++t) sr[t] = 0.0f;
          l[r] = l[r] * corr + sum;
          m[r] = new_m;
          float* ar = acc.data() + static_cast<int64_t>(r) * d;
          for (int j = 0; j < d; ++j) ar[j] *= corr;
        }
        // acc[qn, d] += P[qn, kn] · V[kn, d]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, qn, d, kn, 1.0f, s.data(), kKBlock,
                    vh + j0 * kv_stride, kv_stride, 1.0f, acc.data(), d);
      }
      for (int r = 0; r < qn; ++r) {
        const float inv = 1.0f / l[r];
        for (int j = 0; j < d; ++j) oh[r * q_stride + j] = acc[static_cast<int64_t>(r) * d + j] * inv;
      }
    }
  }
}

void causal_attention_column_sums(const float* q, const float* k, int n, int H, int G, int d,
                                  float* colsum) {
  const int g = H / G;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::fill(colsum, colsum + static_cast<int64_t>(H) * n, 0.0f);
  // Heads are independent: each thread owns whole rows of colsum.
#pragma omp parallel for schedule(dynamic, 1) if (worth_parallel(static_cast<int64_t>(n) * n * H * d))
  for (int h = 0; h < H; ++h) {
    const int kvh = h / g;
    float* cs = colsum + static_cast<int64_t>(h) * n;
    std::vector<float> s(kTile);
    for (int i = 0; i < n; ++i) {
      const float* qi = q + (static_cast<int64_t>(i) * H + h) * d;
      // Pass 1: log-sum-exp of this query's scores over keys 0..i (online, in tiles).
      float m = -std::numeric_limits<float>::infinity(), l = 0;
      for (int t0 = 0; t0 <= i; t0 += kTile) {
        const int tn = std::min(kTile, i + 1 - t0);
        float tile_max = -std::numeric_limits<float>::infinity();
        for (int t = 0; t < tn; ++t) {
          const float* kj = k + (static_cast<int64_t>(t0 + t) * G + kvh) * d;
          float dot = 0;
          for (int j = 0; j < d; ++j) dot += qi[j] * kj[j];
          s[t] = dot * scale;
          tile_max = std::max(tile_max, s[t]);
        }
        const float new_m = std::max(m, tile_max);
        l *= std::exp(m - new_m);
        for (int t = 0; t < tn; ++t) l += std::exp(s[t] - new_m);
        m = new_m;
      }
      // Pass 2: add each key's probability.
      const float inv_l = 1.0f / l;
      for (int j = 0; j <= i; ++j) {
        const float* kj = k + (static_cast<int64_t>(j) * G + kvh) * d;
        float dot = 0;
        for (int t = 0; t < d; ++t) dot += qi[t] * kj[t];
        cs[j] += std::exp(dot * scale - m) * inv_l;
      }
    }
  }
}

}  // namespace fastkv::kernels
