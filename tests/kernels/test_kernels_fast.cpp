// The fast kernels against plain references: the vectorised primitives (src/kernels/vec.h),
// the tiled f32 attention, the bf16 oneDNN attention of the fast path and the decode kernel.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "common/bf16.h"
#include "kernels/attention.h"
#include "kernels/vec.h"
#include "test_util.h"

namespace fastkv {
namespace {

using test::uniform;

TEST(VecKernels, ExpApproxIsWithin4e7RelativeOfLibm) {
  double worst = 0;
  for (double x = -87; x <= 88; x += 0.0137) {
    const double ref = std::exp(x);
    const double got = kernels::exp_approx(static_cast<float>(x));
    worst = std::max(worst, std::abs(got - std::exp(static_cast<double>(static_cast<float>(x)))) / ref);
  }
  EXPECT_LT(worst, 4e-7) << "relative error of exp_approx";
  EXPECT_EQ(kernels::exp_approx(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(kernels::exp_approx(-100.0f), 0.0f);
  EXPECT_EQ(kernels::exp_approx(0.0f), 1.0f);
  EXPECT_TRUE(std::isfinite(kernels::exp_approx(1000.0f)));
}

TEST(VecKernels, ReductionsAndElementwiseMatchScalarLoops) {
  for (int n : {0, 1, 15, 16, 17, 100, 1027}) {
    std::vector<float> a = uniform(n, 1 + n), b = uniform(n, 2 + n);
    double dot = 0;
    float mx = -std::numeric_limits<float>::infinity();
    for (int i = 0; i < n; ++i) {
      dot += static_cast<double>(a[i]) * b[i];
      mx = std::max(mx, a[i]);
    }
    EXPECT_NEAR(kernels::dot(a.data(), b.data(), n), dot, 1e-5 * (1 + n)) << n;
    EXPECT_EQ(kernels::max_of(a.data(), n), mx) << n;

    std::vector<float> y = b;
    kernels::axpy(0.5f, a.data(), y.data(), n);
    for (int i = 0; i < n; ++i) EXPECT_FLOAT_EQ(y[i], b[i] + 0.5f * a[i]);

    std::vector<float> e = a;
    const float m = n ? mx : 0.0f;
    double sum = 0;
    const float got_sum = kernels::exp_shift_sum(e.data(), n, m);
    for (int i = 0; i < n; ++i) {
      const double ref = std::exp(static_cast<double>(a[i]) - m);
      EXPECT_NEAR(e[i], ref, 1e-6 * ref);
      sum += ref;
    }
    EXPECT_NEAR(got_sum, sum, 1e-5 * (1 + sum));

    std::vector<uint16_t> eb(n);
    const float got_sum_bf16 = kernels::exp_shift_sum_to_bf16(a.data(), n, m, eb.data());
    EXPECT_NEAR(got_sum_bf16, sum, 1e-5 * (1 + sum));
    for (int i = 0; i < n; ++i) EXPECT_EQ(eb[i], f32_to_bf16(e[i])) << i;

    std::vector<float> g = uniform(n, 3 + n, -20, 20), out(n);
    kernels::silu_mul(g.data(), b.data(), n, out.data());
    for (int i = 0; i < n; ++i) {
      const double ref = g[i] / (1 + std::exp(-static_cast<double>(g[i]))) * b[i];
      EXPECT_NEAR(out[i], ref, 1e-5 * (1 + std::abs(ref)));
    }

    std::vector<uint16_t> bf(n);
    kernels::to_bf16(a.data(), 1.0f, bf.data(), n);
    for (int i = 0; i < n; ++i) EXPECT_EQ(bf[i], f32_to_bf16(a[i])) << i;
  }
}

// Causal attention in double: out[i, h] = softmax_j<=i(q[i,h]·k[j,h/g]/sqrt(d)) · v[j, h/g].
std::vector<double> reference_attention(const std::vector<float>& q, const std::vector<float>& k,
                                        const std::vector<float>& v, int n, int H, int G, int d) {
  const int g = H / G;
  std::vector<double> out(static_cast<size_t>(n) * H * d, 0.0);
  std::vector<double> s(n);
  for (int i = 0; i < n; ++i) {
    for (int h = 0; h < H; ++h) {
      const float* qi = &q[(static_cast<size_t>(i) * H + h) * d];
      double mx = -1e300, sum = 0;
      for (int j = 0; j <= i; ++j) {
        const float* kj = &k[(static_cast<size_t>(j) * G + h / g) * d];
        double dot = 0;
        for (int t = 0; t < d; ++t) dot += static_cast<double>(qi[t]) * kj[t];
        s[j] = dot / std::sqrt(static_cast<double>(d));
        mx = std::max(mx, s[j]);
      }
      for (int j = 0; j <= i; ++j) sum += (s[j] = std::exp(s[j] - mx));
      double* oi = &out[(static_cast<size_t>(i) * H + h) * d];
      for (int j = 0; j <= i; ++j) {
        const float* vj = &v[(static_cast<size_t>(j) * G + h / g) * d];
        for (int t = 0; t < d; ++t) oi[t] += s[j] / sum * vj[t];
      }
    }
  }
  return out;
}

struct Shape {
  int n, H, G, d;
};

class AttentionKernels : public ::testing::TestWithParam<Shape> {};

// Shapes cross the block edges of the kernels: single token, partial query blocks (64) and
// key tiles (64/128/256), no GQA (g = 1) up to g = 16 (above the AVX-512 decode kernel's 8, so
// the generic decode path runs too), head_dim 32 (generic decode), 64, 128 and 256 (Gemma 3).
INSTANTIATE_TEST_SUITE_P(Shapes, AttentionKernels,
                         ::testing::Values(Shape{1, 4, 1, 64}, Shape{70, 8, 2, 64},
                                           Shape{300, 4, 4, 128}, Shape{600, 8, 2, 64},
                                           Shape{129, 6, 3, 64}, Shape{50, 16, 1, 64},
                                           Shape{90, 4, 2, 32}, Shape{200, 4, 1, 256}));

TEST_P(AttentionKernels, F32TilesMatchTheDoubleReference) {
  const Shape s = GetParam();
  auto q = uniform(static_cast<size_t>(s.n) * s.H * s.d, 11, -2, 2);
  auto k = uniform(static_cast<size_t>(s.n) * s.G * s.d, 12, -2, 2);
  auto v = uniform(static_cast<size_t>(s.n) * s.G * s.d, 13);
  std::vector<float> out(q.size());
  kernels::causal_attention(q.data(), k.data(), v.data(), s.n, s.H, s.G, s.d, out.data());
  auto ref = reference_attention(q, k, v, s.n, s.H, s.G, s.d);
  double worst = 0;
  for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::abs(out[i] - ref[i]));
  EXPECT_LT(worst, 2e-5);
}

// bf16 keeps 8 significand bits: q, k, p and v are each rounded with relative error <= 2^-9.
// With |v| <= 1 the output (a convex combination of v rows) moves by at most ~2^-8 from the
// rounding of p and v, and a score error of |q||k|/sqrt(d) · 2^-8 shifts the probabilities by
// about that much in relative terms; measured worst cases here are 2-5e-3, the bound is 2e-2.
TEST_P(AttentionKernels, Bf16TilesMatchTheDoubleReferenceWithinBf16Rounding) {
  const Shape s = GetParam();
  auto q = uniform(static_cast<size_t>(s.n) * s.H * s.d, 21, -2, 2);
  auto k = uniform(static_cast<size_t>(s.n) * s.G * s.d, 22, -2, 2);
  auto v = uniform(static_cast<size_t>(s.n) * s.G * s.d, 23);
  std::vector<float> out(q.size(), std::numeric_limits<float>::quiet_NaN());
  kernels::causal_attention_bf16(q.data(), k.data(), v.data(), s.n, s.H, s.G, s.d, out.data());
  auto ref = reference_attention(q, k, v, s.n, s.H, s.G, s.d);
  double worst = 0, sum = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_TRUE(std::isfinite(out[i])) << "output " << i << " not written";
    const double e = std::abs(out[i] - ref[i]);
    worst = std::max(worst, e);
    sum += e;
  }
  std::printf("bf16 attention n=%d H=%d G=%d d=%d: max |err| %.2e, mean %.2e (%s)\n", s.n, s.H,
              s.G, s.d, worst, sum / out.size(),
              kernels::causal_attention_bf16_impl(s.H, s.G, s.d).c_str());
  EXPECT_LT(worst, 2e-2);
  EXPECT_LT(sum / out.size(), 4e-3);
}

TEST_P(AttentionKernels, DecodeRowsMatchTheLastTokenOfTheReference) {
  // attend_rows over all n rows equals the causal attention output of the last token.
  const Shape s = GetParam();
  const int g = s.H / s.G;
  auto q = uniform(static_cast<size_t>(s.n) * s.H * s.d, 31, -2, 2);
  auto k = uniform(static_cast<size_t>(s.n) * s.G * s.d, 32, -2, 2);
  auto v = uniform(static_cast<size_t>(s.n) * s.G * s.d, 33);
  auto ref = reference_attention(q, k, v, s.n, s.H, s.G, s.d);
  for (int kvh = 0; kvh < s.G; ++kvh) {
    std::vector<float> out(static_cast<size_t>(g) * s.d);
    const float* qg = &q[((static_cast<size_t>(s.n) - 1) * s.H + kvh * g) * s.d];
    kernels::attend_rows(qg, g, &k[static_cast<size_t>(kvh) * s.d], &v[static_cast<size_t>(kvh) * s.d],
                         s.n, static_cast<int64_t>(s.G) * s.d, s.d, out.data());
    for (int hh = 0; hh < g; ++hh) {
      for (int t = 0; t < s.d; ++t) {
        const double r = ref[((static_cast<size_t>(s.n) - 1) * s.H + kvh * g + hh) * s.d + t];
        EXPECT_NEAR(out[static_cast<size_t>(hh) * s.d + t], r, 2e-5);
      }
    }
  }
}

TEST_P(AttentionKernels, DecodeOverBf16RowsMatchesTheReferenceOnRoundedRows) {
  // The fast path's cache holds bf16 rows: attend_rows over them equals the reference on the
  // same rows rounded to bf16 (only the rounding of K and V differs from the f32 cache).
  const Shape s = GetParam();
  const int g = s.H / s.G;
  auto q = uniform(static_cast<size_t>(s.n) * s.H * s.d, 41, -2, 2);
  auto k = uniform(static_cast<size_t>(s.n) * s.G * s.d, 42, -2, 2);
  auto v = uniform(static_cast<size_t>(s.n) * s.G * s.d, 43);
  std::vector<uint16_t> kb(k.size()), vb(v.size());
  kernels::to_bf16(k.data(), 1.0f, kb.data(), static_cast<int64_t>(k.size()));
  kernels::to_bf16(v.data(), 1.0f, vb.data(), static_cast<int64_t>(v.size()));
  auto widen = [](const std::vector<uint16_t>& b) {
    std::vector<float> f(b.size());
    for (size_t i = 0; i < b.size(); ++i) {
      const uint32_t bits = static_cast<uint32_t>(b[i]) << 16;
      std::memcpy(&f[i], &bits, sizeof(float));
    }
    return f;
  };
  auto ref = reference_attention(q, widen(kb), widen(vb), s.n, s.H, s.G, s.d);
  for (int kvh = 0; kvh < s.G; ++kvh) {
    std::vector<float> out(static_cast<size_t>(g) * s.d);
    const float* qg = &q[((static_cast<size_t>(s.n) - 1) * s.H + kvh * g) * s.d];
    kernels::attend_rows(qg, g, &kb[static_cast<size_t>(kvh) * s.d], &vb[static_cast<size_t>(kvh) * s.d],
                         s.n, static_cast<int64_t>(s.G) * s.d, s.d, out.data());
    for (int hh = 0; hh < g; ++hh) {
      for (int t = 0; t < s.d; ++t) {
        const double r = ref[((static_cast<size_t>(s.n) - 1) * s.H + kvh * g + hh) * s.d + t];
        EXPECT_NEAR(out[static_cast<size_t>(hh) * s.d + t], r, 2e-5);
      }
    }
  }
}

}  // namespace
}  // namespace fastkv
