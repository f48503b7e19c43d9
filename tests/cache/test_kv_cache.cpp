// The KV cache through its per-head accessors: f32 and bf16 rows, positions, per-head lengths,
// bytes. The model reads rows only this way (cache/kv_cache.h), so these pin what it sees.
#include <gtest/gtest.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "cache/kv_cache.h"
#include "common/bf16.h"
#include "common/error.h"

namespace fastkv {
namespace {

constexpr int kD = 5;  // odd head_dim: no vector-width assumption

// Row j of head h: distinct values whose low mantissa bits bf16 has to round away.
std::vector<float> row(int h, int j, float sign) {
  std::vector<float> r(kD);
  for (int i = 0; i < kD; ++i) r[i] = sign * (1.0f + 0.001953f * (h * 31 + j * 7 + i) + 1e-6f * i);
  return r;
}

// Layer of 3 heads with 4, 0 and 2 rows at scattered positions.
LayerCache filled(bool bf16) {
  LayerCache lc;
  lc.bf16 = bf16;
  lc.reset(3, kD);
  const int lens[3] = {4, 0, 2};
  for (int h = 0; h < 3; ++h) {
    lc.reserve(h, lens[h]);
    for (int j = 0; j < lens[h]; ++j) {
      lc.append(h, row(h, j, 1).data(), row(h, j, -1).data(), 100 * h + 9 * j + 3);
    }
  }
  return lc;
}

TEST(KVCache, F32RowsComeBackExactlyThroughTheAccessors) {
  const LayerCache lc = filled(false);
  EXPECT_EQ(lc.row_type(), RowType::kF32);
  ASSERT_EQ(lc.n_heads(), 3);
  EXPECT_EQ(lc.len(0), 4);
  EXPECT_EQ(lc.len(1), 0);
  EXPECT_EQ(lc.len(2), 2);
  EXPECT_EQ(lc.rows(), 6);
  for (int h = 0; h < 3; ++h) {
    lc.with_rows(h, [&](const auto* k, const auto* v, int64_t len) {
      using Row = std::remove_cv_t<std::remove_pointer_t<decltype(k)>>;
      ASSERT_TRUE((std::is_same_v<Row, float>));
      ASSERT_EQ(len, lc.len(h));
      for (int64_t j = 0; j < len; ++j) {
        for (int i = 0; i < kD; ++i) {
          EXPECT_EQ(static_cast<float>(k[j * kD + i]), row(h, j, 1)[i]) << h << " " << j;
          EXPECT_EQ(static_cast<float>(v[j * kD + i]), row(h, j, -1)[i]) << h << " " << j;
        }
      }
    });
    std::vector<float> k(kD), v(kD);
    for (int64_t j = 0; j < lc.len(h); ++j) {
      EXPECT_EQ(lc.positions(h)[j], 100 * h + 9 * j + 3);
      lc.read_row(h, j, k.data(), v.data());
      EXPECT_EQ(k, row(h, j, 1));
      EXPECT_EQ(v, row(h, j, -1));
    }
  }
  // K and V: 6 rows × d × 4 bytes each; positions: 6 × 4 bytes.
  EXPECT_EQ(lc.kv_bytes(), 2 * 6 * kD * 4);
  EXPECT_EQ(lc.bytes(), 2 * 6 * kD * 4 + 6 * 4);
}

TEST(KVCache, Bf16RowsAreRoundedToNearestEvenAndWidenedOnRead) {
  const LayerCache lc = filled(true);
  EXPECT_EQ(lc.row_type(), RowType::kBf16);
  EXPECT_EQ(lc.len(0), 4);
  EXPECT_EQ(lc.len(2), 2);
  bool some_rounded = false;
  for (int h = 0; h < 3; ++h) {
    lc.with_rows(h, [&](const auto* k, const auto* v, int64_t len) {
      using Row = std::remove_cv_t<std::remove_pointer_t<decltype(k)>>;
      ASSERT_TRUE((std::is_same_v<Row, uint16_t>));
      for (int64_t j = 0; j < len; ++j) {
        for (int i = 0; i < kD; ++i) {
          EXPECT_EQ(k[j * kD + i], f32_to_bf16(row(h, j, 1)[i]));
          EXPECT_EQ(v[j * kD + i], f32_to_bf16(row(h, j, -1)[i]));
        }
      }
    });
    std::vector<float> k(kD), v(kD);
    for (int64_t j = 0; j < lc.len(h); ++j) {
      EXPECT_EQ(lc.positions(h)[j], 100 * h + 9 * j + 3);
      lc.read_row(h, j, k.data(), v.data());
      for (int i = 0; i < kD; ++i) {
        EXPECT_EQ(k[i], bf16_to_f32(f32_to_bf16(row(h, j, 1)[i])));
        EXPECT_EQ(v[i], bf16_to_f32(f32_to_bf16(row(h, j, -1)[i])));
        some_rounded = some_rounded || k[i] != row(h, j, 1)[i];
      }
    }
  }
  EXPECT_TRUE(some_rounded) << "the rows should need rounding, or this test proves nothing";
  // Half the bytes of the f32 cache for K and V; positions stay int32.
  EXPECT_EQ(lc.kv_bytes(), 2 * 6 * kD * 2);
  EXPECT_EQ(lc.bytes(), 2 * 6 * kD * 2 + 6 * 4);
}

// The prefill's bf16 path stores rows it has already narrowed (the attention's bf16 copy):
// they land exactly as append() would have narrowed them, and an f32 cache refuses them.
TEST(KVCache, Bf16BitsAppendAsTheNarrowedF32RowsWould) {
  const LayerCache narrowed = filled(true);
  LayerCache direct;
  direct.bf16 = true;
  direct.reset(3, kD);
  for (int h = 0; h < 3; ++h) {
    for (int64_t j = 0; j < narrowed.len(h); ++j) {
      std::vector<uint16_t> k(kD), v(kD);
      for (int i = 0; i < kD; ++i) {
        k[i] = f32_to_bf16(row(h, static_cast<int>(j), 1)[i]);
        v[i] = f32_to_bf16(row(h, static_cast<int>(j), -1)[i]);
      }
      direct.append_bf16(h, k.data(), v.data(), narrowed.positions(h)[j]);
    }
  }
  for (int h = 0; h < 3; ++h) {
    EXPECT_EQ(direct.heads[h].kb, narrowed.heads[h].kb) << h;
    EXPECT_EQ(direct.heads[h].vb, narrowed.heads[h].vb) << h;
    EXPECT_EQ(direct.positions(h), narrowed.positions(h)) << h;
  }
  EXPECT_EQ(direct.len(0), 4);
  LayerCache f32 = filled(false);
  const std::vector<uint16_t> bits(kD, 0x3f80);
  EXPECT_THROW(f32.append_bf16(0, bits.data(), bits.data(), 1), Error);
  EXPECT_EQ(f32.len(0), 4);
}

TEST(KVCache, ResetKeepsTheRowTypeAndEmptiesEveryHead) {
  LayerCache lc = filled(true);
  lc.reset(2, kD);
  EXPECT_EQ(lc.row_type(), RowType::kBf16);
  EXPECT_EQ(lc.n_heads(), 2);
  EXPECT_EQ(lc.rows(), 0);
  EXPECT_EQ(lc.bytes(), 0);
  lc.append(1, row(0, 0, 1).data(), row(0, 0, 1).data(), 7);
  EXPECT_EQ(lc.len(0), 0);
  EXPECT_EQ(lc.len(1), 1);
  EXPECT_EQ(lc.positions(1), std::vector<int32_t>{7});
}

TEST(KVCache, LayersSumTheirBytesAndTakeTheRowTypeOfTheReset) {
  KVCache c;
  c.reset(3, RowType::kBf16);
  ASSERT_EQ(c.n_layer(), 3);
  for (int l = 0; l < 3; ++l) EXPECT_EQ(c.layer(l).row_type(), RowType::kBf16);
  c.layer(0) = filled(true);
  c.layer(2) = filled(true);
  EXPECT_EQ(c.kv_bytes(), 2 * c.layer(0).kv_bytes());
  EXPECT_EQ(c.bytes(), 2 * c.layer(0).bytes());
  c.reset(2);
  EXPECT_EQ(c.layer(1).row_type(), RowType::kF32);
  EXPECT_EQ(c.bytes(), 0);
  c.clear();
  EXPECT_EQ(c.n_layer(), 0);
}

TEST(KVCache, ReadingARowThatDoesNotExistIsAnError) {
  const LayerCache lc = filled(false);
  std::vector<float> k(kD), v(kD);
  EXPECT_THROW(lc.read_row(1, 0, k.data(), v.data()), Error);  // head 1 is empty
  EXPECT_THROW(lc.read_row(0, 4, k.data(), v.data()), Error);
  EXPECT_THROW(lc.read_row(3, 0, k.data(), v.data()), Error);
  EXPECT_THROW(lc.read_row(0, -1, k.data(), v.data()), Error);
}

}  // namespace
}  // namespace fastkv
