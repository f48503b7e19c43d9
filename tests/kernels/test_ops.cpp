// The element-wise kernels of src/kernels/ops.h against double-precision scalar references
// written from their formulas, on odd sizes (no vector width or chunk divides them):
//   rmsnorm: out = x / sqrt(mean(x²) + eps) · w
//   RoPE:    pair (a, b) of a head at position p, pair index i < rope_dim/2, rotated by
//            θ_i = p · freq_scale · theta^(-2i/rope_dim) / factor_i, where (a, b) = (2i, 2i+1)
//            (adjacent, GGUF llama) or (i, i + rope_dim/2) (NeoX, GGUF qwen2); dims past
//            rope_dim are left alone
//   swiglu:  out = gate / (1 + e^-gate) · up
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/ops.h"
#include "test_util.h"

namespace fastkv {
namespace {

using test::uniform;

TEST(Ops, RmsnormMatchesTheDoubleReference) {
  for (int n : {1, 3, 5}) {
    for (int dim : {1, 7, 33, 129, 1001}) {
      const float eps = 1e-5f;
      std::vector<float> x = uniform(static_cast<size_t>(n) * dim, n * 100 + dim, -3, 3);
      std::vector<float> w = uniform(dim, dim, 0.5f, 1.5f);
      std::vector<float> out(x.size());
      kernels::rmsnorm(x.data(), w.data(), n, dim, eps, out.data());
      for (int i = 0; i < n; ++i) {
        double ss = 0;
        for (int j = 0; j < dim; ++j) ss += static_cast<double>(x[i * dim + j]) * x[i * dim + j];
        const double scale = 1.0 / std::sqrt(ss / dim + eps);
        for (int j = 0; j < dim; ++j) {
          const double ref = x[i * dim + j] * scale * w[j];
          EXPECT_NEAR(out[i * dim + j], ref, 2e-6 * (1 + std::abs(ref))) << n << " " << dim;
        }
      }
      // In place (the model norms Q/K heads that way) gives the same.
      std::vector<float> inplace = x;
      kernels::rmsnorm(inplace.data(), w.data(), n, dim, eps, inplace.data());
      EXPECT_EQ(inplace, out);
    }
  }
}

// The double reference of RoPE for one token's heads x [n_heads, head_dim].
std::vector<double> rope_reference(const std::vector<float>& x, int n_heads, int head_dim,
                                   int rope_dim, double theta, double freq_scale,
                                   const std::vector<float>& factors, bool neox, int64_t pos) {
  std::vector<double> out(x.begin(), x.end());
  const int half = rope_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    for (int i = 0; i < half; ++i) {
      double angle = static_cast<double>(pos) * freq_scale * std::pow(theta, -2.0 * i / rope_dim);
      if (!factors.empty()) angle /= factors[i];
      const int a = h * head_dim + (neox ? i : 2 * i);
      const int b = h * head_dim + (neox ? i + half : 2 * i + 1);
      out[a] = x[a] * std::cos(angle) - x[b] * std::sin(angle);
      out[b] = x[a] * std::sin(angle) + x[b] * std::cos(angle);
    }
  }
  return out;
}

struct RopeCase {
  bool neox;
  int head_dim, rope_dim;
  double freq_scale;
  bool factors;
};

class Rope : public ::testing::TestWithParam<RopeCase> {};

INSTANTIATE_TEST_SUITE_P(Styles, Rope,
                         ::testing::Values(RopeCase{false, 64, 64, 1, false},
                                           RopeCase{true, 64, 64, 1, false},
                                           RopeCase{false, 18, 10, 0.25, true},  // partial
                                           RopeCase{true, 18, 10, 0.25, true},
                                           RopeCase{false, 128, 128, 1, true},
                                           RopeCase{true, 130, 66, 0.5, false}));

TEST_P(Rope, BothStylesMatchTheDoubleReference) {
  const RopeCase c = GetParam();
  kernels::RopeTable rope;
  rope.rope_dim = c.rope_dim;
  rope.theta = 500000;
  rope.freq_scale = c.freq_scale;
  if (c.factors) rope.factors = uniform(c.rope_dim / 2, 7, 1, 8);
  rope.neox = c.neox;
  const int hq = 3, hk = 1;  // odd head counts
  for (int64_t pos : {0, 1, 17, 4097, 131071}) {
    std::vector<float> q = uniform(static_cast<size_t>(hq) * c.head_dim, 1 + pos, -2, 2);
    std::vector<float> k = uniform(static_cast<size_t>(hk) * c.head_dim, 2 + pos, -2, 2);
    const auto q_ref = rope_reference(q, hq, c.head_dim, c.rope_dim, rope.theta, c.freq_scale,
                                      rope.factors, c.neox, pos);
    const auto k_ref = rope_reference(k, hk, c.head_dim, c.rope_dim, rope.theta, c.freq_scale,
                                      rope.factors, c.neox, pos);
    std::vector<float> q2 = q;
    rope.apply(q.data(), hq, k.data(), hk, c.head_dim, pos);
    rope.apply(q2.data(), hq, c.head_dim, pos);
    EXPECT_EQ(q, q2) << "the two apply() overloads differ at position " << pos;
    for (size_t i = 0; i < q.size(); ++i) EXPECT_NEAR(q[i], q_ref[i], 2e-6) << "q " << i << " @" << pos;
    for (size_t i = 0; i < k.size(); ++i) EXPECT_NEAR(k[i], k_ref[i], 2e-6) << "k " << i << " @" << pos;
  }
}

TEST(Ops, RopeStylesRotateDifferentPairs) {
  // The same input under the two styles differs (a test that swapped them would notice), and
  // position 0 is the identity in both.
  kernels::RopeTable a, b;
  a.rope_dim = b.rope_dim = 8;
  b.neox = true;
  std::vector<float> x = uniform(8, 3), xa = x, xb = x, x0 = x;
  a.apply(xa.data(), 1, 8, 5);
  b.apply(xb.data(), 1, 8, 5);
  EXPECT_NE(xa, xb);
  a.apply(x0.data(), 1, 8, 0);
  EXPECT_EQ(x0, x);
}

TEST(Ops, SwigluMatchesTheDoubleReference) {
  for (int64_t count : {1, 7, 4095, 4097, 12289}) {  // across the kernel's 4096-element chunks
    std::vector<float> gate = uniform(count, count, -12, 12), up = uniform(count, count + 1);
    std::vector<float> out(count);
    kernels::swiglu(gate.data(), up.data(), count, out.data());
    for (int64_t i = 0; i < count; ++i) {
      const double g = gate[i];
      const double ref = g / (1 + std::exp(-g)) * up[i];
      EXPECT_NEAR(out[i], ref, 1e-6 * (1 + std::abs(ref))) << count << " " << i;
    }
    // In place in gate, as the model calls it.
    kernels::swiglu(gate.data(), up.data(), count, gate.data());
    EXPECT_EQ(gate, out);
  }
}

}  // namespace
}  // namespace fastkv
