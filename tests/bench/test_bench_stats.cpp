// The statistics `fastkv bench` reports over repetitions (trend, spread), the bandwidth probe's
// plumbing and the process counters it reads. No timing is asserted: only values that hold
// whatever the machine's speed.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "bench/bench.h"
#include "common/error.h"
#include "common/rng.h"

namespace fastkv::bench {
namespace {

TEST(BenchTrend, SlopeOfAKnownSequenceAsPercentOfTheMeanPerRepetition) {
  // 10, 9, 8, 7, 6: slope -1 per repetition, mean 8 -> -12.5% per repetition.
  EXPECT_NEAR(trend_pct_per_rep({10, 9, 8, 7, 6}), -12.5, 1e-12);
  // 1, 3: slope 2, mean 2 -> +100%.
  EXPECT_NEAR(trend_pct_per_rep({1, 3}), 100.0, 1e-12);
  // 1, 3, 1, 3: Σ(i-1.5)(y-2) = 2, Σ(i-1.5)² = 5 -> slope 0.4, mean 2 -> +20%.
  EXPECT_NEAR(trend_pct_per_rep({1, 3, 1, 3}), 20.0, 1e-12);
  // A line through noise-free points is found exactly whatever its offset: 5 + 0.5 i.
  std::vector<double> line;
  for (int i = 0; i < 9; ++i) line.push_back(5 + 0.5 * i);
  EXPECT_NEAR(trend_pct_per_rep(line), 100 * 0.5 / 7.0, 1e-12);  // mean 5 + 0.5 * 4 = 7
}

TEST(BenchTrend, FlatShortOrZeroMeanSequencesHaveNoTrend) {
  EXPECT_EQ(trend_pct_per_rep({}), 0.0);
  EXPECT_EQ(trend_pct_per_rep({4.2}), 0.0);
  EXPECT_NEAR(trend_pct_per_rep({3, 3, 3, 3}), 0.0, 1e-12);
  EXPECT_EQ(trend_pct_per_rep({-1, 1}), 0.0);  // mean 0: no percentage
  // Symmetric about the middle: no slope.
  EXPECT_NEAR(trend_pct_per_rep({2, 5, 5, 2}), 0.0, 1e-12);
}

TEST(BenchSpread, MinQuartilesMedianMax) {
  const Spread odd = spread({5, 1, 4, 2, 3});
  EXPECT_EQ(odd.min, 1);
  EXPECT_EQ(odd.q1, 2);
  EXPECT_EQ(odd.median, 3);
  EXPECT_EQ(odd.q3, 4);
  EXPECT_EQ(odd.max, 5);
  // Even count: positions 0.75, 1.5 and 2.25 of the sorted 1, 2, 3, 4.
  const Spread even = spread({4, 3, 2, 1});
  EXPECT_DOUBLE_EQ(even.q1, 1.75);
  EXPECT_DOUBLE_EQ(even.median, 2.5);
  EXPECT_DOUBLE_EQ(even.q3, 3.25);
  const Spread one = spread({7});
  EXPECT_EQ(one.min, 7);
  EXPECT_EQ(one.q1, 7);
  EXPECT_EQ(one.median, 7);
  EXPECT_EQ(one.max, 7);
  const Spread none = spread({});
  EXPECT_EQ(none.min, 0);
  EXPECT_EQ(none.max, 0);
}

TEST(BenchProbe, ReadKernelsSumEveryWordOnceOnAnyRange) {
  // 64-byte aligned storage; ranges that start off a line boundary and end anywhere.
  const int64_t n = 4099;
  std::vector<uint64_t> store(n + 8);
  uint64_t* buf = store.data();
  while (reinterpret_cast<uintptr_t>(buf) % 64 != 0) ++buf;
  Rng rng(3);
  for (int64_t i = 0; i < n; ++i) buf[i] = rng.next();
  for (auto [begin, end] : std::vector<std::pair<int64_t, int64_t>>{
           {0, n}, {1, n}, {3, 37}, {8, 4096}, {5, 5}, {4090, 4099}, {0, 31}, {7, 40}}) {
    uint64_t want = 0;
    for (int64_t i = begin; i < end; ++i) want += buf[i];
    EXPECT_EQ(probe_read_sum(buf, begin, end, /*portable=*/false), want) << begin << ".." << end;
    EXPECT_EQ(probe_read_sum(buf, begin, end, /*portable=*/true), want) << begin << ".." << end;
  }
}

TEST(BenchProbe, MeasuresAPositiveFiniteRateAndRejectsBadSizes) {
  const BandwidthProbe probe(4 << 20);
  EXPECT_EQ(probe.bytes(), 4 << 20);
  const double bw = probe.measure(2);
  EXPECT_GT(bw, 0);
  EXPECT_TRUE(std::isfinite(bw));
  EXPECT_GT(measure_read_bandwidth(BandwidthProbe::kMinBytes, 1), 0);
  // A size that is not whole 64-byte lines is rounded down to them.
  EXPECT_EQ(BandwidthProbe(BandwidthProbe::kMinBytes + 100).bytes(), BandwidthProbe::kMinBytes + 64);
  for (int64_t bad : {int64_t{-1}, int64_t{0}, int64_t{4096}, BandwidthProbe::kMinBytes - 1}) {
    try {
      BandwidthProbe p(bad);
      ADD_FAILURE() << bad << " bytes accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("too small"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(probe.measure(0), Error);
  EXPECT_GE(bandwidth_probe_bytes(), int64_t{1} << 30);
}

TEST(BenchCounters, PageFaultsCountFreshPagesAndRssIsKnown) {
  EXPECT_GT(rss_bytes(), 0);
  const double cpu0 = cpu_seconds();
  volatile uint64_t spin = 0;
  while (cpu_seconds() == cpu0) spin = spin + 1;  // CPU time advances while this thread runs
  EXPECT_GT(cpu_seconds(), cpu0);
  const size_t bytes = 64 << 20;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  const int64_t before = page_faults();
  std::memset(p, 1, bytes);  // the first write to each page faults it in
  const int64_t after = page_faults();
  munmap(p, bytes);
  // At least one fault per 2 MiB even where transparent huge pages back the mapping.
  EXPECT_GE(after - before, static_cast<int64_t>(bytes >> 21));
}

}  // namespace
}  // namespace fastkv::bench
