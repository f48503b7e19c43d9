// Vector primitives of the hot loops (attention, decode, scoring). Each is compiled for
// AVX-512, AVX2+FMA and baseline x86-64 (GCC target_clones: the loader picks the best the CPU
// has), so one binary is fast here and still runs on a CPU without AVX-512.
#pragma once

#include <cstdint>
#include <cstring>

// GCC on x86-64 compiles the AVX-512 intrinsic kernels in (each behind cpu_has_avx512f());
// elsewhere only the portable loops exist.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FASTKV_AVX512_KERNELS 1
#endif

namespace fastkv::kernels {

// Whether this CPU runs AVX-512F (read once from cpuid; false where the kernels are not built).
bool cpu_has_avx512f();

// e^x, branch-free so loops that call it vectorise: x = n·ln2 + r with |r| <= ln2/2, e^r by a
// degree-6 polynomial (relative error below 2e-7), 2^n through the exponent bits. Returns 0
// below -87 (so e^-inf = 0 for masked scores) and e^88 above 88 (finite).
__attribute__((always_inline)) inline float exp_approx(float x) {
  const float lo = -87.0f, hi = 88.0f;
  const bool under = x < lo;
  x = x < lo ? lo : (x > hi ? hi : x);
  // Round to the nearest integer by adding and removing 1.5 · 2^23 (exact for |x·log2e| < 2^22).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693145751953125f;  // ln2 split in a high and a low part
  r = r - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &p, sizeof bits);
  bits += static_cast<int32_t>(n) << 23;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return under ? 0.0f : out;
}

// e^x for softmax arguments (x <= 0 after the running max is subtracted).
__attribute__((always_inline)) inline float exp_nonpositive(float x) { return exp_approx(x); }

// sum_i a[i] * b[i]
float dot(const float* a, const float* b, int n);
// y[i] += a * x[i]
void axpy(float a, const float* x, float* y, int n);
// x[i] *= a
void scale_in_place(float* x, float a, int n);
// max_i x[i] (-inf for n == 0)
float max_of(const float* x, int n);
// x[i] = e^(x[i] - m) for i < n (m >= every x[i]); returns the sum of the new values.
float exp_shift_sum(float* x, int n, float m);
// out[i] = silu(gate[i]) * up[i] = gate[i] / (1 + e^-gate[i]) * up[i]
void silu_mul(const float* gate, const float* up, int64_t n, float* out);
// out[i] = gelu(gate[i]) * up[i], GELU's tanh approximation written as a sigmoid:
//   0.5·x·(1 + tanh(u)) = x / (1 + e^(-2u)),  u = sqrt(2/π)·(x + 0.044715·x³)
void gelu_tanh_mul(const float* gate, const float* up, int64_t n, float* out);
// y[i] = bf16(e^(x[i] - m)) for i < n (m >= every x[i]); returns the sum of the f32 values.
float exp_shift_sum_to_bf16(const float* x, int n, float m, uint16_t* y);
// y[i] += a * float(x[i]) for bf16 x
void axpy(float a, const uint16_t* x, float* y, int n);
// y[i] = bf16(a · x[i]) (round to nearest even; NaN inputs are not expected here)
void to_bf16(const float* x, float a, uint16_t* y, int64_t n);
// out[r] = scale · (q · rows[r]) for r < n_rows, rows[r] at k + r * stride.
void dot_rows(const float* q, const float* k, int64_t stride, int n_rows, int d, float scale,
              float* out);
// The same over bf16 rows.
void dot_rows(const float* q, const uint16_t* k, int64_t stride, int n_rows, int d, float scale,
              float* out);

}  // namespace fastkv::kernels
