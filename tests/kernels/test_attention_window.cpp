// The window argument of causal_attention, causal_attention_bf16 and attend_rows against a
// double-precision scalar reference: key j is visible to query i only when j is causal (j <= i
// in prefill) and
//   pos(i) - pos(j) < window
// on original positions (gaps as after TSP). A window of 0 is "no window" (what Llama
// passes): bit-identical to the call without one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
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

// softmax(q · kᵀ / sqrt(d)) · v of one query head over the visible rows (row r at k + r*stride);
// zeros when none is visible.
std::vector<double> reference_row(const float* q, const float* k, const float* v, int64_t len,
                                  int64_t stride, int d, const std::vector<bool>& visible) {
  std::vector<double> s(len), out(d, 0.0);
  double mx = -1e300, sum = 0;
  for (int64_t j = 0; j < len; ++j) {
    if (!visible[j]) continue;
    double dot = 0;
    for (int t = 0; t < d; ++t) dot += static_cast<double>(q[t]) * k[j * stride + t];
    s[j] = dot / std::sqrt(static_cast<double>(d));
    mx = std::max(mx, s[j]);
  }
  for (int64_t j = 0; j < len; ++j) {
    if (visible[j]) sum += (s[j] = std::exp(s[j] - mx));
  }
  for (int64_t j = 0; j < len; ++j) {
    if (!visible[j]) continue;
    for (int t = 0; t < d; ++t) out[t] += s[j] / sum * v[j * stride + t];
  }
  return out;
}

// Ascending positions with gaps of 1..3 (tokens dropped by TSP).
std::vector<int32_t> gapped_positions(int n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<int32_t> pos(n);
  int32_t p = 0;
  for (int i = 0; i < n; ++i) pos[i] = (p += 1 + static_cast<int32_t>(gen() % 3)) - 1;
  return pos;
}

struct WindowCase {
  int n, H, G, d, window;
};

class WindowedPrefill : public ::testing::TestWithParam<WindowCase> {};

// Across the kernel's 64-query blocks and 256-key tiles; windows smaller than a tile, larger
// than a tile, and larger than the whole prompt.
INSTANTIATE_TEST_SUITE_P(Shapes, WindowedPrefill,
                         ::testing::Values(WindowCase{1, 2, 1, 16, 4}, WindowCase{70, 4, 2, 32, 9},
                                           WindowCase{300, 4, 4, 64, 50},
                                           WindowCase{600, 8, 2, 64, 700},
                                           WindowCase{333, 6, 3, 32, 5000},
                                           WindowCase{700, 4, 1, 256, 100}));

TEST_P(WindowedPrefill, CausalAttentionMasksKeysOutsideTheWindow) {
  const WindowCase c = GetParam();
  const int g = c.H / c.G;
  auto q = uniform(static_cast<size_t>(c.n) * c.H * c.d, 1, -2, 2);
  auto k = uniform(static_cast<size_t>(c.n) * c.G * c.d, 2, -2, 2);
  auto v = uniform(static_cast<size_t>(c.n) * c.G * c.d, 3);
  const std::vector<int32_t> pos = gapped_positions(c.n, c.n);
  kernels::Window w;
  w.size = c.window;
  w.key_pos = pos.data();
  std::vector<float> out(q.size());
  kernels::causal_attention(q.data(), k.data(), v.data(), c.n, c.H, c.G, c.d, out.data(), w);
  double worst = 0;
  int masked = 0;
  for (int i = 0; i < c.n; ++i) {
    std::vector<bool> visible(c.n, false);
    for (int j = 0; j <= i; ++j) {
      visible[j] = pos[i] - pos[j] < c.window;
      masked += !visible[j];
    }
    for (int h = 0; h < c.H; ++h) {
      const auto ref = reference_row(&q[(static_cast<size_t>(i) * c.H + h) * c.d],
                                     &k[static_cast<size_t>(h / g) * c.d],
                                     &v[static_cast<size_t>(h / g) * c.d], c.n,
                                     static_cast<int64_t>(c.G) * c.d, c.d, visible);
      for (int t = 0; t < c.d; ++t) {
        worst = std::max(worst, std::abs(out[(static_cast<size_t>(i) * c.H + h) * c.d + t] - ref[t]));
      }
    }
  }
  EXPECT_LT(worst, 2e-5);
  // A window at least as long as the prompt masks nothing: the result is the unwindowed one.
  if (masked == 0) {
    std::vector<float> plain(q.size());
    kernels::causal_attention(q.data(), k.data(), v.data(), c.n, c.H, c.G, c.d, plain.data());
    EXPECT_EQ(out, plain);
  }
}

// The bf16 tile kernel (the fast path's prefill) with the same windows: within bf16 rounding of
// the double reference (the bounds of AttentionKernels.Bf16TilesMatchTheDoubleReference...),
// and the key tiles wholly before a query block's band are skipped, not computed and masked
// (NaN keys there, which any product would spread, leave the block's output unchanged).
TEST_P(WindowedPrefill, Bf16TilesMaskKeysOutsideTheWindowAndSkipTilesBeforeTheBand) {
  const WindowCase c = GetParam();
  const int g = c.H / c.G;
  auto q = uniform(static_cast<size_t>(c.n) * c.H * c.d, 41, -2, 2);
  auto k = uniform(static_cast<size_t>(c.n) * c.G * c.d, 42, -2, 2);
  auto v = uniform(static_cast<size_t>(c.n) * c.G * c.d, 43);
  const std::vector<int32_t> pos = gapped_positions(c.n, c.n + 1);
  kernels::Window w;
  w.size = c.window;
  w.key_pos = pos.data();
  std::vector<float> out(q.size(), std::numeric_limits<float>::quiet_NaN());
  kernels::causal_attention_bf16(q.data(), k.data(), v.data(), c.n, c.H, c.G, c.d, out.data(), w);
  double worst = 0, sum = 0;
  for (int i = 0; i < c.n; ++i) {
    std::vector<bool> visible(c.n, false);
    for (int j = 0; j <= i; ++j) visible[j] = pos[i] - pos[j] < c.window;
    for (int h = 0; h < c.H; ++h) {
      const auto ref = reference_row(&q[(static_cast<size_t>(i) * c.H + h) * c.d],
                                     &k[static_cast<size_t>(h / g) * c.d],
                                     &v[static_cast<size_t>(h / g) * c.d], c.n,
                                     static_cast<int64_t>(c.G) * c.d, c.d, visible);
      for (int t = 0; t < c.d; ++t) {
        const float o = out[(static_cast<size_t>(i) * c.H + h) * c.d + t];
        ASSERT_TRUE(std::isfinite(o)) << "token " << i << " head " << h;
        worst = std::max(worst, std::abs(o - ref[t]));
        sum += std::abs(o - ref[t]);
      }
    }
  }
  EXPECT_LT(worst, 2e-2);
  EXPECT_LT(sum / out.size(), 4e-3);

  // The last 64-query block's band starts at key f (its first token's first visible key): the
  // 256-key tiles wholly before f are skipped. Poisoned with NaN they leave that block's rows
  // bit for bit as they were.
  constexpr int kKeys = 256, kQueries = 64;
  const int last0 = (c.n - 1) / kQueries * kQueries;
  int f = 0;
  while (pos[last0] - pos[f] >= c.window) ++f;
  const int skipped = f / kKeys * kKeys;  // keys in whole tiles before the last block's band
  if (skipped == 0) return;  // this shape has no tile wholly outside the band
  auto kp = k, vp = v;
  for (size_t x = 0; x < static_cast<size_t>(skipped) * c.G * c.d; ++x) {
    kp[x] = std::numeric_limits<float>::quiet_NaN();
    vp[x] = std::numeric_limits<float>::quiet_NaN();
  }
  std::vector<float> poisoned(q.size(), 0.0f);
  kernels::causal_attention_bf16(q.data(), kp.data(), vp.data(), c.n, c.H, c.G, c.d,
                                 poisoned.data(), w);
  for (size_t x = static_cast<size_t>(last0) * c.H * c.d; x < out.size(); ++x) {
    ASSERT_EQ(poisoned[x], out[x]) << "the last block read a key tile before its band";
  }
}

TEST(WindowedPrefill, NoWindowIsBitIdenticalToTheCallWithoutOne) {
  const int n = 300, H = 4, G = 2, d = 64;
  auto q = uniform(static_cast<size_t>(n) * H * d, 4, -2, 2);
  auto k = uniform(static_cast<size_t>(n) * G * d, 5, -2, 2);
  auto v = uniform(static_cast<size_t>(n) * G * d, 6);
  const std::vector<int32_t> pos = gapped_positions(n, 9);
  kernels::Window none;
  none.key_pos = pos.data();  // size 0: positions are ignored
  std::vector<float> a(q.size()), b(q.size()), windowed(q.size());
  kernels::causal_attention(q.data(), k.data(), v.data(), n, H, G, d, a.data());
  kernels::causal_attention(q.data(), k.data(), v.data(), n, H, G, d, b.data(), none);
  EXPECT_EQ(a, b);
  kernels::Window w;
  w.size = 20;
  w.key_pos = pos.data();
  kernels::causal_attention(q.data(), k.data(), v.data(), n, H, G, d, windowed.data(), w);
  EXPECT_NE(a, windowed) << "a window of 20 over 300 tokens must change something";
}

// Decode: g query heads against cache rows whose positions are in no particular order.
template <typename Row>
void check_attend_rows(int g, int d, int64_t len, int window, int64_t query_pos, uint32_t seed) {
  auto q = uniform(static_cast<size_t>(g) * d, seed, -2, 2);
  auto k = uniform(static_cast<size_t>(len) * d, seed + 1, -2, 2);
  auto v = uniform(static_cast<size_t>(len) * d, seed + 2);
  std::vector<int32_t> pos(len);
  std::mt19937 gen(seed);
  for (auto& p : pos) p = static_cast<int32_t>(gen() % (query_pos + 1));
  std::vector<Row> kr(k.size()), vr(v.size());
  if constexpr (std::is_same_v<Row, uint16_t>) {
    kernels::to_bf16(k.data(), 1.0f, kr.data(), static_cast<int64_t>(k.size()));
    kernels::to_bf16(v.data(), 1.0f, vr.data(), static_cast<int64_t>(v.size()));
    for (size_t i = 0; i < k.size(); ++i) {  // the reference sees the rounded rows
      k[i] = bf16_to_f32(kr[i]);
      v[i] = bf16_to_f32(vr[i]);
    }
  } else {
    kr = k;
    vr = v;
  }
  kernels::Window w;
  w.size = window;
  w.key_pos = pos.data();
  w.query_pos = query_pos;
  std::vector<float> out(static_cast<size_t>(g) * d, -7.0f);
  kernels::attend_rows(q.data(), g, kr.data(), vr.data(), len, d, d, out.data(), w);
  std::vector<bool> visible(len);
  for (int64_t j = 0; j < len; ++j) visible[j] = query_pos - pos[j] < window;
  for (int h = 0; h < g; ++h) {
    const auto ref = reference_row(&q[static_cast<size_t>(h) * d], k.data(), v.data(), len, d, d,
                                   visible);
    for (int t = 0; t < d; ++t) {
      EXPECT_NEAR(out[static_cast<size_t>(h) * d + t], ref[t], 2e-5)
          << "g " << g << " d " << d << " len " << len << " window " << window << " head " << h;
    }
  }
}

TEST(WindowedDecode, AttendRowsMasksRowsOutsideTheWindow) {
  // d 64, 128 and 256 (Gemma 3) with g <= 8 are the shapes of the AVX-512 bf16 decode kernel,
  // windowed or not (its 64-row tiles with no visible row are skipped); g 12 and d 32 take the
  // generic path; len crosses the 64- and 128-row tiles; window 1 sees only rows at the query's
  // own position.
  for (int g : {1, 4, 8, 12}) {
    for (int d : {32, 64, 128, 256}) {
      for (int window : {1, 10, 200}) {
        check_attend_rows<float>(g, d, 300, window, 400, 10 * g + d + window);
        check_attend_rows<uint16_t>(g, d, 300, window, 400, 10 * g + d + window);
      }
    }
  }
}

TEST(WindowedDecode, NoVisibleRowGivesZeros) {
  // f32 and bf16 rows; d 16 (generic kernels) and 256 (the AVX-512 bf16 decode kernel)
  const int g = 2, len = 5;
  for (int d : {16, 256}) {
    auto q = uniform(static_cast<size_t>(g) * d, 1), k = uniform(len * d, 2),
         v = uniform(len * d, 3);
    std::vector<uint16_t> kb(k.size()), vb(v.size());
    kernels::to_bf16(k.data(), 1.0f, kb.data(), static_cast<int64_t>(k.size()));
    kernels::to_bf16(v.data(), 1.0f, vb.data(), static_cast<int64_t>(v.size()));
    const std::vector<int32_t> pos = {0, 1, 2, 3, 4};
    kernels::Window w;
    w.size = 3;
    w.key_pos = pos.data();
    w.query_pos = 100;
    std::vector<float> out(static_cast<size_t>(g) * d, -7.0f);
    kernels::attend_rows(q.data(), g, k.data(), v.data(), len, d, d, out.data(), w);
    for (float x : out) EXPECT_EQ(x, 0.0f) << "f32, d " << d;
    std::fill(out.begin(), out.end(), -7.0f);
    kernels::attend_rows(q.data(), g, kb.data(), vb.data(), len, d, d, out.data(), w);
    for (float x : out) EXPECT_EQ(x, 0.0f) << "bf16, d " << d;
  }
}

TEST(WindowedDecode, NoWindowIsBitIdenticalToTheCallWithoutOne) {
  const int g = 4, d = 64;
  const int64_t len = 333;
  auto q = uniform(static_cast<size_t>(g) * d, 7, -2, 2);
  auto k = uniform(len * d, 8, -2, 2), v = uniform(len * d, 9);
  std::vector<uint16_t> kb(k.size()), vb(v.size());
  kernels::to_bf16(k.data(), 1.0f, kb.data(), static_cast<int64_t>(k.size()));
  kernels::to_bf16(v.data(), 1.0f, vb.data(), static_cast<int64_t>(v.size()));
  std::vector<float> a(static_cast<size_t>(g) * d), b(a.size());
  kernels::attend_rows(q.data(), g, k.data(), v.data(), len, d, d, a.data());
  kernels::attend_rows(q.data(), g, k.data(), v.data(), len, d, d, b.data(), kernels::Window{});
  EXPECT_EQ(a, b);
  kernels::attend_rows(q.data(), g, kb.data(), vb.data(), len, d, d, a.data());
  kernels::attend_rows(q.data(), g, kb.data(), vb.data(), len, d, d, b.data(), kernels::Window{});
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace fastkv
