// PageBuffer: zero-filled scratch whose pages count in the resident set only once written, and
// go back to the system on release() (the prefill's query rows and the bf16 attention's K/V).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <fstream>

#include "common/page_buffer.h"

namespace fastkv {
namespace {

// This process's resident set in bytes (/proc/self/statm: size, resident, ... in pages).
int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

TEST(PageBuffer, StartsZeroAndKeepsWhatIsWritten) {
  PageBuffer<float> b;
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.data(), nullptr);
  b.reset(100000);
  ASSERT_EQ(b.size(), 100000u);
  for (size_t i = 0; i < b.size(); i += 997) EXPECT_EQ(b.data()[i], 0.0f) << i;
  b.data()[12345] = 3.5f;
  EXPECT_EQ(b.data()[12345], 3.5f);
  b.reset(50);  // a new, zero buffer
  EXPECT_EQ(b.data()[0], 0.0f);
  b.reset(0);
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.data(), nullptr);
}

TEST(PageBuffer, OnlyWrittenPagesAreResidentAndReleaseGivesThemBack) {
  constexpr size_t kBytes = size_t{256} << 20;  // 256 MiB of address space
  const int64_t before = resident_bytes();
  PageBuffer<uint8_t> b;
  b.reset(kBytes);
  // reading untouched pages maps the shared zero page, not new memory
  int sum = 0;
  for (size_t i = 0; i < kBytes; i += 1 << 20) sum += b.data()[i];
  EXPECT_EQ(sum, 0);
  EXPECT_LT(resident_bytes() - before, int64_t{16} << 20);
  // writing 64 MiB of it makes about that much resident
  for (size_t i = 0; i < (size_t{64} << 20); i += 4096) b.data()[i] = 1;
  const int64_t written = resident_bytes() - before;
  EXPECT_GT(written, int64_t{60} << 20);
  EXPECT_LT(written, int64_t{80} << 20);
  b.release();
  EXPECT_EQ(b.size(), 0u);
  EXPECT_LT(resident_bytes() - before, int64_t{16} << 20);
}

TEST(PageBuffer, DiscardGivesBackWholePagesOfARangeOnly) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  constexpr size_t kBytes = size_t{64} << 20;
  PageBuffer<uint8_t> b;
  b.reset(kBytes);
  for (size_t i = 0; i < kBytes; i += 512) b.data()[i] = 7;
  const int64_t full = resident_bytes();
  // [page + 512, 32 MiB + 100): whole pages 2 .. 32 MiB / page - 1 go, the two partial ones stay
  const size_t first = page + 512, count = (size_t{32} << 20) + 100 - first;
  b.discard(first, count);
  const int64_t dropped = full - resident_bytes();
  EXPECT_GT(dropped, int64_t{31} << 20);
  EXPECT_LE(dropped, int64_t{32} << 20);
  EXPECT_EQ(b.data()[first - 512], 7);                   // before the range
  EXPECT_EQ(b.data()[first], 7);                         // in the range, on a partial page
  EXPECT_EQ(b.data()[2 * page], 0);                      // a whole page of the range: zero
  EXPECT_EQ(b.data()[(size_t{32} << 20) - page], 0);     // the range's last whole page
  EXPECT_EQ(b.data()[size_t{32} << 20], 7);              // the partial page at its end
  EXPECT_EQ(b.data()[(size_t{32} << 20) + page], 7);     // past the range
  b.data()[2 * page] = 1;  // a discarded page can be written again
  EXPECT_EQ(b.data()[2 * page], 1);
  // a range inside one page, and ranges past the end, give back nothing
  b.discard(page + 8, 16);
  EXPECT_EQ(b.data()[page + 512], 7);
  b.discard(kBytes, 10);
  b.discard(kBytes - 10, 1000);  // clamped: the partial last page stays
  EXPECT_EQ(b.data()[kBytes - 512], 7);
}

}  // namespace
}  // namespace fastkv
