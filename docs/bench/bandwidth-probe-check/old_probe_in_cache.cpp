// Build: g++ -O3 -DNDEBUG -fopenmp -std=c++20 old_probe_in_cache.cpp -o old_probe_in_cache && ./old_probe_in_cache
// The old probe, verbatim from src/bench/bench.cpp at 05cbe66, timed on a buffer that fits in L2
// (256 KiB, one thread, best of 2000 calls) to see the loop's own speed; then on 1 GiB.
#include <immintrin.h>
#include <omp.h>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
double measure_read_bandwidth(int64_t bytes, int passes) {
  const int64_t n = bytes / static_cast<int64_t>(sizeof(uint64_t));
  std::unique_ptr<uint64_t[]> buf(new uint64_t[n]);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<uint64_t>(i);
  double best = 0;
  volatile uint64_t sink = 0;
  for (int p = 0; p < passes; ++p) {
    const auto t0 = Clock::now();
    uint64_t total = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : total)
    for (int64_t i = 0; i < n; ++i) total += buf[i];
    const double s = seconds_since(t0);
    sink = sink + total;
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s);
  }
  return best;
}
// The new probe's loop (src/bench/bench.cpp, read_sum_avx512) on the same buffer.
__attribute__((target("avx512f"))) uint64_t k512(const uint64_t* p, int64_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i)); a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 8));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 16)); a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 24));
  }
  return _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}
int main(int argc, char** argv) {
  omp_set_num_threads(1);
  std::printf("old probe, 256 KiB (L2), 1 thread, 500 passes: %.1f GB/s\n", measure_read_bandwidth(256 << 10, 500) / 1e9);
  const int64_t n = 32768;
  uint64_t* b = static_cast<uint64_t*>(std::aligned_alloc(64, n * 8));
  for (int64_t i = 0; i < n; ++i) b[i] = i;
  double best = 0;
  volatile uint64_t sink = 0;
  for (int r = 0; r < 2000; ++r) {
    const auto t0 = Clock::now();
    sink = sink + k512(b, n);
    best = std::max(best, n * 8 / seconds_since(t0) / 1e9);
  }
  std::printf("AVX-512 x4 loop, the same buffer, best of 2000 passes: %.1f GB/s\n", best);
}
