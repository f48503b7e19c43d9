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

// Indices of the k largest values (descending by value; equal values: lower index first).
std::vector<int32_t> topk(const float* values, int len, int k);

}  // namespace fastkv::kernels
