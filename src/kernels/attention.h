// Attention kernels of the f32 reference path. No n × n matrix is ever formed: keys are
// visited in tiles with an online (running max / running sum) softmax.
#pragma once

#include <cstdint>

namespace fastkv::kernels {

// One query group against `len` key/value rows.
//   q:   [g, d]    the g query heads that share this KV head (contiguous)
//   k,v: len rows of d floats, row r at k + r * stride (stride >= d)
//   out: [g, d]    softmax(q · kᵀ / sqrt(d)) · v for each of the g heads
void attend_rows(const float* q, int g, const float* k, const float* v, int64_t len,
                 int64_t stride, int d, float* out);

// Causal self-attention over n live tokens sorted by position (token i sees tokens 0..i).
//   q:   [n, H, d]   post-RoPE queries
//   k,v: [n, G, d]   post-RoPE keys, values (H % G == 0; query head h uses KV head h / (H/G))
//   out: [n, H, d]
void causal_attention(const float* q, const float* k, const float* v, int n, int H, int G, int d,
                      float* out);

// The attention probability each key receives, summed over all queries that see it:
//   colsum[h, j] = sum_{i >= j} softmax_j'(q[i, h] · k[j', h/g] / sqrt(d))[j]
// (H2O's heavy-hitter score). A second tiled pass over the keys, using each query's
// log-sum-exp, so no n × n matrix is formed. q: [n, H, d], k: [n, G, d], colsum: [H, n].
void causal_attention_column_sums(const float* q, const float* k, int n, int H, int G, int d,
                                  float* colsum);

}  // namespace fastkv::kernels
