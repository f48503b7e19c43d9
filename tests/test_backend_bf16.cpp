// The bf16 oneDNN backend against the f32 reference path.
//
// Tolerance: bf16 keeps 8 significand bits, so rounding x and w each costs up to 2^-9 relative
// and a product up to about 2^-8; summed over K terms the error is at most 2^-8 × sum_i |x_i w_i|
// (f32 accumulation adds far less). We allow 2^-7 × sum_i |x_i w_i|, twice that worst case.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/gemm_onednn.h"
#include "kernels/linear.h"
#include "model/model.h"
#include "test_util.h"

namespace fastkv {
namespace {

TEST(Bf16Linear, MatchesF32WithinBf16Rounding) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto [n, in, out] : {std::tuple{1, 64, 48}, std::tuple{7, 576, 192}, std::tuple{300, 128, 352}}) {
    std::vector<float> w(static_cast<size_t>(in) * out), x(static_cast<size_t>(n) * in),
        bias(out);
    for (float& v : w) v = nd(rng);
    for (float& v : x) v = nd(rng);
    for (float& v : bias) v = nd(rng);
    kernels::Linear ref(w, in, out, bias, kernels::Backend::kF32);
    kernels::Linear fast(w, in, out, bias, kernels::Backend::kBf16);
    std::vector<float> y_ref(static_cast<size_t>(n) * out), y(static_cast<size_t>(n) * out);
    ref.forward(x.data(), n, y_ref.data());
    fast.forward(x.data(), n, y.data());
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < out; ++j) {
        double l1 = 0;
        for (int t = 0; t < in; ++t) l1 += std::fabs(x[i * in + t] * w[static_cast<size_t>(j) * in + t]);
        ASSERT_NEAR(y[i * out + j], y_ref[i * out + j], l1 / 128.0)
            << "n=" << n << " in=" << in << " out=" << out << " at " << i << "," << j;
      }
    }
    // A second call with the same row count reuses the cached primitive and gives the same bits.
    std::vector<float> y2(y.size());
    fast.forward(x.data(), n, y2.data());
    EXPECT_EQ(y, y2);
  }
}

TEST(Bf16Model, LogitsFollowTheF32Path) {
  // Real weights: the bf16 path must keep the f32 path's greedy choice where it is clear, and
  // stay within 5% of the logit scale (bf16 rounding through 5 layers).
  const std::string path = test::shared_path("models/stories260K.gguf");
  auto ref = Model::load(path);
  LoadOptions lo;
  lo.backend = kernels::Backend::kBf16;
  auto fast = Model::load(path, lo);
  std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 285, 389, 261, 290, 1114 % 512};
  FullPolicy p1, p2;
  KVCache c1, c2;
  std::vector<float> a = ref->prefill(tokens, p1, c1).logits;
  std::vector<float> b = fast->prefill(tokens, p2, c2).logits;
  float max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(a[i]));
    max_diff = std::max(max_diff, std::fabs(a[i] - b[i]));
  }
  EXPECT_LE(max_diff, 0.05f * max_ref);
  std::vector<float> sorted = a;
  std::sort(sorted.rbegin(), sorted.rend());
  if (sorted[0] - sorted[1] > 0.1f * max_ref) {
    EXPECT_EQ(std::max_element(a.begin(), a.end()) - a.begin(),
              std::max_element(b.begin(), b.end()) - b.begin());
  }
}

}  // namespace
}  // namespace fastkv
