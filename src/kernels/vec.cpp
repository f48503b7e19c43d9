#include "kernels/vec.h"

#include "common/bf16.h"

#include <limits>

#include "kernels/avx512_intrinsics.h"

// One clone per ISA feature (chosen with cpuid at load, by feature, not by CPU model); `omp simd`
// lets each clone vectorise the float reductions. (Clang, used
// only for the fuzzing build, compiles the baseline version.)
#if defined(__GNUC__) && !defined(__clang__)
#define FASTKV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FASTKV_CLONES
#endif

namespace fastkv::kernels {

FASTKV_CLONES float dot(const float* a, const float* b, int n) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

FASTKV_CLONES void axpy(float a, const float* x, float* y, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

FASTKV_CLONES void axpy(float a, const uint16_t* x, float* y, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] += a * bf16_to_f32(x[i]);
}

FASTKV_CLONES void scale_in_place(float* x, float a, int n) {
#pragma omp simd
  for (int i = 0; i < n; ++i) x[i] *= a;
}

FASTKV_CLONES float exp_shift_sum(float* x, int n, float m) {
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) {
    x[i] = exp_nonpositive(x[i] - m);
    s += x[i];
  }
  return s;
}

FASTKV_CLONES void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + exp_approx(-gate[i])) * up[i];
}

FASTKV_CLONES void gelu_tanh_mul(const float* gate, const float* up, int64_t n, float* out) {
  constexpr float k2SqrtTwoOverPi = 2 * 0.7978845608028654f;  // 2·sqrt(2/π)
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    const float two_u = k2SqrtTwoOverPi * (x + 0.044715f * x * x * x);
    out[i] = x / (1.0f + exp_approx(-two_u)) * up[i];
  }
}

namespace {

float exp_shift_sum_to_bf16_portable(const float* x, int n, float m, uint16_t* y) {
  float s = 0;
  for (int i = 0; i < n; ++i) {
    const float e = exp_nonpositive(x[i] - m);
    s += e;
    y[i] = f32_to_bf16_finite(e);
  }
  return s;
}

#ifdef FASTKV_AVX512_KERNELS
// The same with AVX-512 intrinsics (GCC does not vectorise the mixed float/int loop above):
// exp_approx's steps on 16 lanes, then the same rounding to bf16.
__attribute__((target("avx512f"))) float exp_shift_sum_to_bf16_avx512(const float* x, int n,
                                                                       float m, uint16_t* y) {
  const __m512 vm = _mm512_set1_ps(m), lo = _mm512_set1_ps(-87.0f), hi = _mm512_set1_ps(88.0f);
  const __m512 log2e = _mm512_set1_ps(1.44269504088896341f), magic = _mm512_set1_ps(12582912.0f);
  const __m512 ln2_hi = _mm512_set1_ps(0.693145751953125f);
  const __m512 ln2_lo = _mm512_set1_ps(1.42860682030941723212e-6f);
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512i round_bias = _mm512_set1_epi32(0x7FFF), lsb = _mm512_set1_epi32(1);
  __m512 acc = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_sub_ps(_mm512_loadu_ps(x + i), vm);
    const __mmask16 keep = _mm512_cmp_ps_mask(v, lo, _CMP_GE_OQ);  // below -87 (or NaN): 0
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    const __m512 nn = _mm512_sub_ps(_mm512_fmadd_ps(v, log2e, magic), magic);
    __m512 r = _mm512_fnmadd_ps(nn, ln2_hi, v);
    r = _mm512_fnmadd_ps(nn, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, one);
    p = _mm512_fmadd_ps(p, r, one);
    const __m512i scaled = _mm512_add_epi32(_mm512_castps_si512(p),
                                            _mm512_slli_epi32(_mm512_cvtps_epi32(nn), 23));
    const __m512 e = _mm512_maskz_mov_ps(keep, _mm512_castsi512_ps(scaled));
    acc = _mm512_add_ps(acc, e);
    __m512i u = _mm512_castps_si512(e);
    u = _mm512_add_epi32(u, _mm512_add_epi32(round_bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), lsb)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16)));
  }
  float s = _mm512_reduce_add_ps(acc);
  return s + exp_shift_sum_to_bf16_portable(x + i, n - i, m, y + i);
}

__attribute__((target("avx512f"))) float max_of_avx512(const float* x, int n) {
  __m512 acc = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_max_ps(acc, _mm512_loadu_ps(x + i));
  float m = _mm512_reduce_max_ps(acc);
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}
#endif

}  // namespace

bool cpu_has_avx512f() {
#ifdef FASTKV_AVX512_KERNELS
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
#else
  return false;
#endif
}

float max_of(const float* x, int n) {
#ifdef FASTKV_AVX512_KERNELS
  if (cpu_has_avx512f()) return max_of_avx512(x, n);
#endif
  float m = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

float exp_shift_sum_to_bf16(const float* x, int n, float m, uint16_t* y) {
#ifdef FASTKV_AVX512_KERNELS
  if (cpu_has_avx512f()) return exp_shift_sum_to_bf16_avx512(x, n, m, y);
#endif
  return exp_shift_sum_to_bf16_portable(x, n, m, y);
}

FASTKV_CLONES void to_bf16(const float* x, float a, uint16_t* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = f32_to_bf16_finite(x[i] * a);
}

namespace {

// Widening of a stored element to f32 (f32 rows, bf16 rows).
__attribute__((always_inline)) inline float widen(float x) { return x; }
__attribute__((always_inline)) inline float widen(uint16_t x) { return bf16_to_f32(x); }

template <typename Row>
__attribute__((always_inline)) inline void dot_rows_impl(const float* q, const Row* k,
                                                         int64_t stride, int n_rows, int d,
                                                         float scale, float* out) {
  for (int r = 0; r < n_rows; ++r) {
    const Row* kr = k + r * stride;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < d; ++i) s += q[i] * widen(kr[i]);
    out[r] = s * scale;
  }
}

}  // namespace

FASTKV_CLONES void dot_rows(const float* q, const float* k, int64_t stride, int n_rows, int d,
                            float scale, float* out) {
  dot_rows_impl(q, k, stride, n_rows, d, scale, out);
}

FASTKV_CLONES void dot_rows(const float* q, const uint16_t* k, int64_t stride, int n_rows, int d,
                            float scale, float* out) {
  dot_rows_impl(q, k, stride, n_rows, d, scale, out);
}

}  // namespace fastkv::kernels
