// OneDnnLinear's primitive cache: bounded to kMaxCachedRowCounts row counts (a server sees a
// new prompt length with almost every request), and results stay right when row counts are
// evicted and built again.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "kernels/gemm_onednn.h"

namespace fastkv::kernels {
namespace {

TEST(OneDnnLinearCache, HoldsAtMostTheBoundAndStaysCorrectAcrossEvictions) {
  const int in = 40, out = 24;
  Rng rng(11);
  std::vector<float> w(static_cast<size_t>(out) * in), bias(out);
  for (float& v : w) v = static_cast<float>(rng.uniform01() * 2 - 1);
  for (float& v : bias) v = static_cast<float>(rng.uniform01() - 0.5);
  const OneDnnLinear lin(w.data(), in, out, bias.data());
  const int max_rows = static_cast<int>(OneDnnLinear::kMaxCachedRowCounts) + 9;
  std::vector<float> x(static_cast<size_t>(max_rows) * in);
  for (float& v : x) v = static_cast<float>(rng.uniform01() * 2 - 1);

  // y for n rows, checked against a double reference: bf16 inputs and weights (8 significand
  // bits each) over 40 products of magnitude <= 1 give |error| well under 0.05.
  auto run = [&](int n) {
    std::vector<float> y(static_cast<size_t>(n) * out);
    lin.forward(x.data(), n, y.data());
    for (int i = 0; i < n; ++i) {
      for (int o = 0; o < out; ++o) {
        double ref = bias[o];
        for (int k = 0; k < in; ++k) ref += static_cast<double>(x[i * in + k]) * w[o * in + k];
        EXPECT_NEAR(y[i * out + o], ref, 0.05) << "n " << n << " row " << i << " out " << o;
      }
    }
    return y;
  };
  const std::vector<float> first = run(1);
  for (int n = 2; n <= max_rows; ++n) {
    run(n);
    EXPECT_LE(lin.cached_row_counts(), static_cast<int>(OneDnnLinear::kMaxCachedRowCounts));
  }
  EXPECT_EQ(lin.cached_row_counts(), static_cast<int>(OneDnnLinear::kMaxCachedRowCounts));
  // n = 1 was the least recently used: evicted, built again, same numbers.
  EXPECT_EQ(run(1), first);
  EXPECT_EQ(lin.cached_row_counts(), static_cast<int>(OneDnnLinear::kMaxCachedRowCounts));
}

}  // namespace
}  // namespace fastkv::kernels
