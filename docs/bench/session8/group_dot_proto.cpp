#include <immintrin.h>
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <vector>
#include <cstdlib>
#ifndef PFD
#define PFD 0
#endif
#ifndef HINT
#define HINT _MM_HINT_T0
#endif
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c")))
void group_dot(const uint8_t* g, int nb, const int8_t* qx, const float* sx, const int32_t* qsum, float* y) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc = _mm512_setzero_ps(), acc2 = acc;
  const int32_t* x32 = reinterpret_cast<const int32_t*>(qx);
  for (int b = 0; b < nb; b += 2) {
    const uint8_t* p = g + (size_t)b * 288;
    if (PFD) { for (int o = 0; o < 576; o += 64) _mm_prefetch((const char*)p + PFD + o, HINT); }
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
    __m512i t0 = _mm512_setzero_si512(), t1 = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int j = 0; j < 4; ++j) {
      const __m512i z = _mm512_loadu_si512(p + 32 + 64 * j);
      const __m512i z2 = _mm512_loadu_si512(p + 288 + 32 + 64 * j);
      s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(z, low4), _mm512_set1_epi32(x32[8 * b + j]));
      s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(z, 4), low4), _mm512_set1_epi32(x32[8 * b + 4 + j]));
      t0 = _mm512_dpbusd_epi32(t0, _mm512_and_si512(z2, low4), _mm512_set1_epi32(x32[8 * b + 8 + j]));
      t1 = _mm512_dpbusd_epi32(t1, _mm512_and_si512(_mm512_srli_epi16(z2, 4), low4), _mm512_set1_epi32(x32[8 * b + 12 + j]));
    }
    __m512i s = _mm512_sub_epi32(_mm512_add_epi32(s0, s1), _mm512_set1_epi32(8 * qsum[b]));
    __m512i t = _mm512_sub_epi32(_mm512_add_epi32(t0, t1), _mm512_set1_epi32(8 * qsum[b+1]));
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p));
    const __m512 d2 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p+288)));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(d, _mm512_set1_ps(sx[b])), acc);
    acc2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(d2, _mm512_set1_ps(sx[b+1])), acc2);
  }
  _mm512_storeu_ps(y, _mm512_add_ps(acc, acc2));
}
int main(int argc, char** argv) {
  const int in = 2048, out = atoi(argv[1]);
  const int nb = in / 32;
  const size_t gbytes = (size_t)nb * 288;
  const size_t bytes = gbytes * (out / 16);
  int nmat = (int)(1.4e9 / bytes) + 1;
  std::vector<uint8_t*> mats;
  for (int m = 0; m < nmat; ++m) { uint8_t* a = (uint8_t*)aligned_alloc(64, bytes); for (size_t i = 0; i < bytes; ++i) a[i] = (uint8_t)(i * 2654435761u >> 13); for (size_t i=0;i<bytes;i+=288*1){ a[i]=0; a[i+1]=0x3c;} mats.push_back(a);} 
  std::vector<int8_t> qx(in); for (int i = 0; i < in; ++i) qx[i] = (int8_t)(i * 7 % 200 - 100);
  std::vector<float> sx(nb, 0.01f); std::vector<int32_t> qs(nb, 3);
  std::vector<float> y(out);
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int m = 0; m < nmat; ++m) {
      const uint8_t* W = mats[m];
#pragma omp parallel for schedule(static)
      for (int g = 0; g < out / 16; ++g) group_dot(W + g * gbytes, nb, qx.data(), sx.data(), qs.data(), y.data() + 16 * g);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, bytes * nmat / s / 1e9);
  }
  printf("PFD=%d out=%d best %.2f GB/s\n", PFD, out, best);
}
