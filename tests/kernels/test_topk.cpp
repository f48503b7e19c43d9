// kernels::topk, the ranking every score-and-keep method and FastKV's TSP use: the k largest
// values, descending, and among equal values the lowest index first.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "kernels/scoring.h"
#include "test_util.h"

namespace fastkv {
namespace {

TEST(TopK, DescendingByValue) {
  const std::vector<float> v = {0.1f, 0.9f, -2.0f, 0.5f, 3.0f};
  EXPECT_EQ(kernels::topk(v.data(), 5, 3), (std::vector<int32_t>{4, 1, 3}));
  EXPECT_EQ(kernels::topk(v.data(), 5, 0), std::vector<int32_t>{});
  // k beyond the length is clamped.
  EXPECT_EQ(kernels::topk(v.data(), 5, 9), (std::vector<int32_t>{4, 1, 3, 0, 2}));
}

TEST(TopK, TiesGoToTheLowestIndex) {
  // Equal scores at 1, 3, 4 and 6: a cut through the tie keeps the earliest positions.
  const std::vector<float> v = {0.0f, 1.0f, 2.0f, 1.0f, 1.0f, -1.0f, 1.0f};
  EXPECT_EQ(kernels::topk(v.data(), 7, 2), (std::vector<int32_t>{2, 1}));
  EXPECT_EQ(kernels::topk(v.data(), 7, 3), (std::vector<int32_t>{2, 1, 3}));
  EXPECT_EQ(kernels::topk(v.data(), 7, 5), (std::vector<int32_t>{2, 1, 3, 4, 6}));
  // All equal: the first k indices.
  const std::vector<float> flat(50, 0.25f);
  std::vector<int32_t> first(10);
  for (int i = 0; i < 10; ++i) first[i] = i;
  EXPECT_EQ(kernels::topk(flat.data(), 50, 10), first);
}

TEST(TopK, MatchesAStableSortOnRandomValuesWithTies) {
  // Values rounded to a coarse grid so that many tie; a stable sort by value (descending)
  // of the indices 0..len-1 is the reference order.
  std::vector<float> v = test::uniform(500, 7);
  for (float& x : v) x = static_cast<float>(static_cast<int>(x * 8)) / 8;
  std::vector<int32_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return v[a] > v[b]; });
  for (int k : {1, 17, 100, 499}) {
    std::vector<int32_t> want(order.begin(), order.begin() + k);
    EXPECT_EQ(kernels::topk(v.data(), static_cast<int>(v.size()), k), want) << "k " << k;
  }
}

}  // namespace
}  // namespace fastkv
