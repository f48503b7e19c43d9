// The prefill attends a layer's queries a block of tokens at a time (model.cpp,
// attention_half): each block's queries against the keys of every token up to its last, before
// the later blocks' keys exist, with the output written over the block's queries. Every query
// must then get what one call over all n tokens gives it, with and without a sliding window:
// bit for bit from the bf16 kernel and the column sums wherever the blocks start, and from the
// f32 kernel when they start on its 64-query tiles (as the prefill's blocks do; elsewhere
// OpenBLAS may pick other kernels for the other shapes, within float rounding).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <vector>

#include "common/bf16.h"
#include "common/error.h"
#include "kernels/attention.h"
#include "test_util.h"

namespace fastkv {
namespace {

using test::uniform;

struct BlockCase {
  int n, H, G, d, window;
  std::vector<int> bounds;  // block starts after 0, ascending, < n
};

// Ascending positions with gaps of 1..3 (tokens dropped by TSP).
std::vector<int32_t> gapped_positions(int n) {
  std::mt19937 gen(static_cast<uint32_t>(n));
  std::vector<int32_t> pos(n);
  int32_t p = 0;
  for (int i = 0; i < n; ++i) pos[i] = (p += 1 + static_cast<int32_t>(gen() % 3)) - 1;
  return pos;
}

// [first, end) of every block.
std::vector<std::pair<int, int>> blocks_of(const BlockCase& c) {
  std::vector<std::pair<int, int>> b;
  int first = 0;
  for (int end : c.bounds) {
    b.emplace_back(first, end);
    first = end;
  }
  b.emplace_back(first, c.n);
  return b;
}

void PrintTo(const BlockCase& c, std::ostream* os) {
  *os << "n=" << c.n << " H=" << c.H << " G=" << c.G << " d=" << c.d << " window=" << c.window
      << " blocks from";
  for (int b : c.bounds) *os << " " << b;
}

class AttentionBlocks : public testing::TestWithParam<BlockCase> {};

// Random queries, keys and values of a case, its gapped positions and its window.
struct Inputs {
  int64_t qd, kvd;  // H*d, G*d
  std::vector<float> q, k, v;
  std::vector<int32_t> pos;
  kernels::Window w;
  Inputs(const BlockCase& c, uint32_t seed)
      : qd(static_cast<int64_t>(c.H) * c.d), kvd(static_cast<int64_t>(c.G) * c.d),
        q(uniform(static_cast<size_t>(c.n * qd), seed, -2, 2)),
        k(uniform(static_cast<size_t>(c.n * kvd), seed + 1, -2, 2)),
        v(uniform(static_cast<size_t>(c.n * kvd), seed + 2)), pos(gapped_positions(c.n)) {
    w.size = c.window;
    w.key_pos = pos.data();
  }
};

TEST_P(AttentionBlocks, F32KernelGivesTheWholeCallsOutputBlockByBlock) {
  const BlockCase c = GetParam();
  const Inputs in(c, 11);
  const int64_t qd = in.qd, kvd = in.kvd;
  const std::vector<float>&q = in.q, &k = in.k, &v = in.v;
  std::vector<float> whole(q.size());
  kernels::causal_attention(q.data(), k.data(), v.data(), c.n, c.H, c.G, c.d, whole.data(), in.w);
  // Block by block, over a copy of the queries, with only the keys up to the block's last token
  // present (the rest NaN: a kernel reading a later key would spread it).
  std::vector<float> over = q;
  auto kp = k, vp = v;
  std::fill(kp.begin(), kp.end(), std::numeric_limits<float>::quiet_NaN());
  std::fill(vp.begin(), vp.end(), std::numeric_limits<float>::quiet_NaN());
  for (auto [first, end] : blocks_of(c)) {
    std::copy(k.begin() + first * kvd, k.begin() + end * kvd, kp.begin() + first * kvd);
    std::copy(v.begin() + first * kvd, v.begin() + end * kvd, vp.begin() + first * kvd);
    float* rows = over.data() + first * qd;
    kernels::causal_attention(rows, first, end - first, kp.data(), vp.data(), c.H, c.G, c.d, rows,
                              in.w);
  }
  bool on_tiles = true;
  for (int b : c.bounds) on_tiles = on_tiles && b % 64 == 0;
  if (on_tiles) {
    EXPECT_EQ(over, whole);
  } else {
    for (size_t x = 0; x < over.size(); ++x) {
      ASSERT_NEAR(over[x], whole[x], 1e-5f * (1 + std::abs(whole[x]))) << x;
    }
  }
}

TEST_P(AttentionBlocks, Bf16KernelGivesTheWholeCallsOutputBlockByBlock) {
  const BlockCase c = GetParam();
  const Inputs in(c, 21);
  const int64_t qd = in.qd, kvd = in.kvd;
  const std::vector<float>&q = in.q, &k = in.k, &v = in.v;
  std::vector<float> whole(q.size());
  kernels::causal_attention_bf16(q.data(), k.data(), v.data(), c.n, c.H, c.G, c.d, whole.data(),
                                 in.w);
  std::vector<float> over = q;
  kernels::KeysValuesBf16 kv;
  kv.reset(c.n, c.G, c.d);
  for (auto [first, end] : blocks_of(c)) {
    kv.add(k.data() + first * kvd, v.data() + first * kvd, end - first);
    EXPECT_EQ(kv.added(), end);
    float* rows = over.data() + first * qd;
    kernels::causal_attention_bf16(rows, first, end - first, kv, c.H, rows, in.w);
  }
  EXPECT_EQ(over, whole);
}

TEST_P(AttentionBlocks, ColumnSumsAddUpBlockByBlockToTheWholeCalls) {
  const BlockCase c = GetParam();  // (column sums have no window: H2O scores global layers)
  const Inputs in(c, 31);
  const int64_t qd = in.qd;
  const std::vector<float>&q = in.q, &k = in.k;
  std::vector<float> whole(static_cast<size_t>(c.H) * c.n);
  kernels::causal_attention_column_sums(q.data(), k.data(), c.n, c.H, c.G, c.d, whole.data());
  std::vector<float> blocks(whole.size(), 0.0f);
  for (auto [first, end] : blocks_of(c)) {
    kernels::add_causal_attention_column_sums(q.data() + first * qd, first, end - first, k.data(),
                                              c.H, c.G, c.d, blocks.data(), c.n);
  }
  EXPECT_EQ(blocks, whole);
  // and the sums are not all zero (the comparison saw something)
  float total = 0;
  for (float x : whole) total += x;
  EXPECT_NEAR(total, static_cast<float>(c.H) * c.n, 1e-2f * c.H * c.n);  // each query's row sums to 1
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionBlocks,
    testing::Values(BlockCase{700, 4, 2, 64, 0, {250, 517}},    // boundaries off the 64-query tiles
                    BlockCase{700, 4, 2, 64, 90, {250, 517}},   // and a window
                    BlockCase{600, 8, 2, 128, 0, {64, 320}},    // on the tiles
                    BlockCase{1100, 4, 2, 64, 200, {512, 576}},  // on the tiles, a window
                    BlockCase{530, 2, 1, 64, 300, {1, 2, 257}}, // blocks of one token
                    BlockCase{300, 4, 4, 64, 0, {299}}));

TEST(AttentionBlocks, Bf16KeysValuesRejectWhatTheyDoNotHold) {
  const int n = 100, H = 4, G = 2, d = 64;
  auto q = uniform(static_cast<size_t>(n) * H * d, 1);
  auto k = uniform(static_cast<size_t>(n) * G * d, 2);
  kernels::KeysValuesBf16 kv;
  kv.reset(n, G, d);
  kv.add(k.data(), k.data(), 60);
  std::vector<float> out(q.size());
  // queries up to token 70 need keys the buffer does not hold yet
  EXPECT_THROW(kernels::causal_attention_bf16(q.data(), 50, 20, kv, H, out.data()), Error);
  EXPECT_NO_THROW(kernels::causal_attention_bf16(q.data(), 50, 10, kv, H, out.data()));
  EXPECT_THROW(kv.add(k.data(), k.data(), 41), Error);  // past its n tokens
  kv.release();
  EXPECT_EQ(kv.added(), 0);
  EXPECT_EQ(kv.capacity(), 0);
}

// The cache takes its rows from the bf16 copy (model.cpp, store_cache): each row is the f32
// row narrowed, and giving one head back leaves the other heads' rows as they were.
TEST(AttentionBlocks, Bf16KeysValuesHandOutNarrowedRowsAndGiveHeadsBack) {
  const int n = 3000, G = 3, d = 64;  // 3000 × 64 × 2 bytes: whole pages in every head
  auto k = uniform(static_cast<size_t>(n) * G * d, 3);
  auto v = uniform(static_cast<size_t>(n) * G * d, 4);
  kernels::KeysValuesBf16 kv;
  kv.reset(n, G, d);
  kv.add(k.data(), v.data(), 1000);
  kv.add(k.data() + 1000 * G * d, v.data() + 1000 * G * d, n - 1000);
  for (int h = 0; h < G; ++h) {
    for (int i : {0, 999, 1000, n - 1}) {
      for (int x = 0; x < d; ++x) {
        ASSERT_EQ(kv.key_row(h, i)[x], f32_to_bf16(k[(static_cast<size_t>(i) * G + h) * d + x]));
        ASSERT_EQ(kv.value_row(h, i)[x], f32_to_bf16(v[(static_cast<size_t>(i) * G + h) * d + x]));
      }
    }
  }
  kv.discard_head(1);
  int zero_rows = 0;
  for (int i = 0; i < n; ++i) {
    bool zero = true;
    for (int x = 0; x < d; ++x) zero = zero && kv.key_row(1, i)[x] == 0 && kv.value_row(1, i)[x] == 0;
    zero_rows += zero;
  }
  EXPECT_GT(zero_rows, n - 2 * 4096 / (d * 2));  // all but the rows on its two partial pages
  for (int h : {0, 2}) {
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(kv.key_row(h, i)[5], f32_to_bf16(k[(static_cast<size_t>(i) * G + h) * d + 5]));
      ASSERT_EQ(kv.value_row(h, i)[7], f32_to_bf16(v[(static_cast<size_t>(i) * G + h) * d + 7]));
    }
  }
  EXPECT_THROW(kv.discard_head(3), Error);
}

}  // namespace
}  // namespace fastkv
