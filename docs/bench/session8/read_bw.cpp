#include <immintrin.h>
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <vector>
__attribute__((target("avx512f"))) __m512i sum(const uint8_t* p, size_t n) {
  __m512i a = _mm512_setzero_si512(), b = a;
  for (size_t i = 0; i < n; i += 128) { a = _mm512_add_epi32(a, _mm512_load_si512(p + i)); b = _mm512_add_epi32(b, _mm512_load_si512(p + i + 64)); }
  return _mm512_add_epi32(a, b);
}
int main() {
  size_t bytes = 1ull << 30; uint8_t* a = (uint8_t*)aligned_alloc(64, bytes);
  for (size_t i = 0; i < bytes; ++i) a[i] = i;
  int nt = omp_get_max_threads();
  for (int rep = 0; rep < 6; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    long long tot = 0;
#pragma omp parallel reduction(+:tot)
    { int t = omp_get_thread_num(); size_t ch = bytes / nt; __m512i s = sum(a + t * ch, ch); tot += _mm512_reduce_add_epi32(s); }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("threads=%d %.2f GB/s (%lld)\n", nt, bytes / s / 1e9, tot & 1);
  }
}
