// Element-wise and matrix kernels of the f32 reference path.
//
// Row-major everywhere: a matrix "[n, k]" has n rows of k contiguous floats.
#pragma once

#include <cstdint>
#include <vector>

namespace fastkv::kernels {

// out[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * weight[:]   x, out: [n, dim]
void rmsnorm(const float* x, const float* weight, int n, int dim, float eps, float* out);

// Y[n, out] = X[n, in] · W[out, in]^T (+ bias[out] when bias != nullptr). f32, OpenBLAS.
void linear(const float* x, int n, const float* w, int in, int out, const float* bias, float* y);

// out[i] = silu(gate[i]) * up[i] for i < count; silu(x) = x / (1 + e^-x).
void swiglu(const float* gate, const float* up, int64_t count, float* out);
// out[i] = gelu(gate[i]) * up[i] for i < count, GELU's tanh approximation (Gemma's GeGLU):
//   gelu(x) = x/2 · (1 + tanh(sqrt(2/π) · (x + 0.044715 x³))).
void geglu_tanh(const float* gate, const float* up, int64_t count, float* out);

// x[i] += y[i]
void add_inplace(float* x, const float* y, int64_t count);

// Rotary embedding tables for the rotated pairs of one head, per position:
// the angle of pair i at position p is p * freq_scale * theta^(-2i/rope_dim) / factor[i].
struct RopeTable {
  int rope_dim = 0;          // rotated leading dims of a head (even)
  double theta = 10000;
  double freq_scale = 1;
  std::vector<float> factors;  // rope_dim/2 entries, or empty for all ones
  bool neox = false;         // pairs (i, i+rope_dim/2) instead of (2i, 2i+1)

  // Rotates `n_heads` heads of `head_dim` floats in place, stored contiguously at x, for a
  // token at position pos.
  void apply(float* x, int n_heads, int head_dim, int64_t pos) const;
  // The same for a token's queries (q: [hq, head_dim]) and keys (k: [hk, head_dim]) with the
  // angles computed once.
  void apply(float* q, int hq, float* k, int hk, int head_dim, int64_t pos) const;

 private:
  void angles(int64_t pos, float* cs, float* sn) const;
  void rotate(float* x, int n_heads, int head_dim, const float* cs, const float* sn) const;
};

// In-place softmax over count floats.
void softmax(float* x, int count);

}  // namespace fastkv::kernels
