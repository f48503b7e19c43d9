// Kernels for KV-compression scoring: observation-window attention scores, 1-D pooling along
// the key axis, and top-k. Scalar f32 reference implementations (the policies' exact path).
#pragma once

#include <cstdint>
#include <vector>

namespace fastkv::kernels {

// Window scores of the last w queries of every query head against all n keys:
//   A[h, r, j] = softmax_j(q[n-w+r, h] · k[j, h/g] / sqrt(d)), key j visible iff j <= n-w+r
//   out[h, j]  = sum_r A[h, r, j]      for j < n - w   (the keys before the window)
//   q: [n, H, d], k: [n, G, d], out: [H, n - w]. Costs w × n dot products per head, never
//   n × n. Requires n > w >= 1.
void window_scores(const float* q, const float* k, int n, int H, int G, int d, int w, float* out);

enum class PoolType { kMax, kAvg };

// Stride-1 pooling of `len` values with an odd kernel and zero padding of kernel/2 on each
// side; the output has the same length. kAvg divides by `kernel` (padding counted);
// kMax ignores padding (as max-pooling with implicit -inf padding does).
void pool1d(const float* in, int len, int kernel, PoolType type, float* out);

// GQA-aware pooled window scores (FastKV, AdaKV): each query head's window_scores row is pooled
// along the key axis, then the g = H/G heads of each KV head are summed. out: [G, n - w].
void grouped_window_scores(const float* q, const float* k, int n, int H, int G, int d, int w,
                           int kernel, PoolType pool, float* out);

// Indices of the k largest values (descending by value; equal values: lower index first).
std::vector<int32_t> topk(const float* values, int len, int k);

// GemFilter's filter score: the raw dot product of the last query (row n-1) of every query head
// with every key, summed over the query heads (no 1/sqrt(d) scale, no softmax):
//   out[j] = sum_h q[n-1, h] · k[j, h/g]      q: [n, H, d], k: [n, G, d], out: [n].
// Costs H × n dot products. Requires n >= 1.
void last_query_dot_scores(const float* q, const float* k, int n, int H, int G, int d, float* out);

// Weighted attention of the last R queries of every query head (PyramidInfer's recent queries)
// against all n keys, with causal masking:
//   A[h, r, j] = softmax_j(q[n-R+r, h] · k[j, h/g] / sqrt(d)), key j visible iff j <= n-R+r
//   out[h, j]  = sum_r weights[r] × A[h, r, j]      for every j < n (0 where no query sees j)
// q: [n, H, d], k: [n, G, d], weights: [R], out: [H, n]. Costs R × n dot products per head,
// never n × n. Requires 1 <= R <= n.
void recent_query_scores(const float* q, const float* k, int n, int H, int G, int d, int R,
                         const float* weights, float* out);

}  // namespace fastkv::kernels
