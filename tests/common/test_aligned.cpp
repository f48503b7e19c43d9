// common/aligned.h: aligned_vector's data starts on a cache line at every size, small (malloc's
// arenas) and large (mmap'd blocks, where a plain std::vector's data sits 16 bytes past a line),
// across growth, and keeps its contents when it grows.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>

#include "common/aligned.h"

namespace fastkv {
namespace {

bool on_cache_line(const void* p) { return reinterpret_cast<uintptr_t>(p) % kCacheLine == 0; }

TEST(AlignedVector, DataStartsOnACacheLineAtEverySize) {
  for (size_t n : {size_t{1}, size_t{7}, size_t{100}, size_t{4096}, size_t{1} << 20,
                   size_t{3} << 22}) {
    aligned_vector<uint16_t> v(n);
    EXPECT_TRUE(on_cache_line(v.data())) << n << " elements";
  }
  aligned_vector<uint32_t> grow;  // up to 1.9M elements (7.3 MiB)
  for (int i = 0; i < 4; ++i) {
    const size_t old = grow.size();
    grow.resize((old + 1) * 37);
    std::iota(grow.begin() + static_cast<std::ptrdiff_t>(old), grow.end(), static_cast<uint32_t>(old));
    EXPECT_TRUE(on_cache_line(grow.data())) << grow.size();
  }
  for (size_t i = 0; i < grow.size(); ++i) ASSERT_EQ(grow[i], i);
}

}  // namespace
}  // namespace fastkv
