#include "kernels/ops.h"
#include "kernels/parallel.h"
#include "kernels/vec.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

namespace fastkv::kernels {

void rmsnorm(const float* x, const float* weight, int n, int dim, float eps, float* out) {
#pragma omp parallel for if (worth_parallel(static_cast<int64_t>(n) * dim * 2))
  for (int i = 0; i < n; ++i) {
    const float* xi = x + static_cast<int64_t>(i) * dim;
    float* oi = out + static_cast<int64_t>(i) * dim;
    const double ss = dot(xi, xi, dim);  // vectorised: 16 partial sums, then combined
    float scale = static_cast<float>(1.0 / std::sqrt(ss / dim + eps));
    for (int j = 0; j < dim; ++j) oi[j] = xi[j] * scale * weight[j];
  }
}

void linear(const float* x, int n, const float* w, int in, int out, const float* bias, float* y) {
  if (n == 0) return;
  if (n == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, 0.0f, y, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 0.0f, y,
                out);
  }
  if (bias) {
    for (int i = 0; i < n; ++i) {
      float* yi = y + static_cast<int64_t>(i) * out;
      for (int j = 0; j < out; ++j) yi[j] += bias[j];
    }
  }
}

namespace {
// out[i] = mul(gate, up)[i] over count elements, in parallel chunks of 4096 (cost_per_element
// decides whether the work is worth the threads).
template <typename GatedMul>
void gated_chunks(const float* gate, const float* up, int64_t count, float* out,
                  int64_t cost_per_element, GatedMul mul) {
  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
#pragma omp parallel for if (worth_parallel(count * cost_per_element))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t i0 = c * kChunk;
    mul(gate + i0, up + i0, std::min(kChunk, count - i0), out + i0);
  }
}
}  // namespace

void swiglu(const float* gate, const float* up, int64_t count, float* out) {
  gated_chunks(gate, up, count, out, 8, silu_mul);
}

void geglu_tanh(const float* gate, const float* up, int64_t count, float* out) {
  gated_chunks(gate, up, count, out, 12, gelu_tanh_mul);
}

void add_inplace(float* x, const float* y, int64_t count) {
#pragma omp parallel for if (worth_parallel(count * 8))
  for (int64_t i = 0; i < count; ++i) x[i] += y[i];
}

void RopeTable::angles(int64_t pos, float* cs, float* sn) const {
  const int half = rope_dim / 2;
  // Angles in double: a float product of a large position and a small frequency loses digits.
  for (int i = 0; i < half; ++i) {
    double inv_freq = std::pow(theta, -2.0 * i / rope_dim);
    double angle = static_cast<double>(pos) * freq_scale * inv_freq;
    if (!factors.empty()) angle /= factors[i];
    cs[i] = static_cast<float>(std::cos(angle));
    sn[i] = static_cast<float>(std::sin(angle));
  }
}

void RopeTable::rotate(float* x, int n_heads, int head_dim, const float* cs, const float* sn) const {
  const int half = rope_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int i = 0; i < half; ++i) {
      int a = neox ? i : 2 * i;
      int b = neox ? i + half : 2 * i + 1;
      float x0 = v[a], x1 = v[b];
      v[a] = x0 * cs[i] - x1 * sn[i];
      v[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
}

void RopeTable::apply(float* x, int n_heads, int head_dim, int64_t pos) const {
  float cs[512], sn[512];
  angles(pos, cs, sn);
  rotate(x, n_heads, head_dim, cs, sn);
}

void RopeTable::apply(float* q, int hq, float* k, int hk, int head_dim, int64_t pos) const {
  float cs[512], sn[512];
  angles(pos, cs, sn);
  rotate(q, hq, head_dim, cs, sn);
  rotate(k, hk, head_dim, cs, sn);
}

void softmax(float* x, int count) {
  float m = *std::max_element(x, x + count);
  double sum = 0;
  for (int i = 0; i < count; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  float inv = static_cast<float>(1.0 / sum);
  for (int i = 0; i < count; ++i) x[i] *= inv;
}

}  // namespace fastkv::kernels
