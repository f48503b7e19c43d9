// Attention kernels of the f32 reference path. No n × n matrix is ever formed: keys are
// visited in tiles with an online (running max / running sum) softmax.
#pragma once

#include <cstdint>
#include <string>

namespace fastkv::kernels {

// One query group against `len` key/value rows.
//   q:   [g, d]    the g query heads that share this KV head (contiguous)
//   k,v: len rows of d floats, row r at k + r * stride (stride >= d)
//   out: [g, d]    softmax(q · kᵀ / sqrt(d)) · v for each of the g heads
void attend_rows(const float* q, int g, const float* k, const float* v, int64_t len,
                 int64_t stride, int d, float* out);
// The same over bf16 K/V rows (the fast path's cache).
void attend_rows(const float* q, int g, const uint16_t* k, const uint16_t* v, int64_t len,
                 int64_t stride, int d, float* out);

// Causal self-attention over n live tokens sorted by position (token i sees tokens 0..i).
//   q:   [n, H, d]   post-RoPE queries
//   k,v: [n, G, d]   post-RoPE keys, values (H % G == 0; query head h uses KV head h / (H/G))
//   out: [n, H, d]
void causal_attention(const float* q, const float* k, const float* v, int n, int H, int G, int d,
                      float* out);

// The same with bf16 tiles: Q·Kᵀ and P·V as oneDNN bf16 matmuls (AMX where present), softmax
// in f32 (src/kernels/attention_bf16.cpp). Inputs and output as for causal_attention.
void causal_attention_bf16(const float* q, const float* k, const float* v, int n, int H, int G,
                           int d, float* out);
// oneDNN's implementation names of the two tile matmuls, e.g. "brg:avx512_core_amx_bf16 / ...".
std::string causal_attention_bf16_impl(int H, int G, int d);

// The attention probability each key receives, summed over all queries that see it:
//   colsum[h, j] = sum_{i >= j} softmax_j'(q[i, h] · k[j', h/g] / sqrt(d))[j]
// (H2O's heavy-hitter score). A second tiled pass over the keys, using each query's
// log-sum-exp, so no n × n matrix is formed. q: [n, H, d], k: [n, G, d], colsum: [H, n].
void causal_attention_column_sums(const float* q, const float* k, int n, int H, int G, int d,
                                  float* colsum);

}  // namespace fastkv::kernels
