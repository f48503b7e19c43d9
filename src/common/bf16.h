// bfloat16 <-> f32, the one definition every layer uses (GGUF BF16 tensors in io/, the bf16
// GEMM weights, attention tiles and KV cache rows in kernels/ and cache/).
//
// bf16 is the top 16 bits of an f32: sign, the 8 exponent bits, 7 mantissa bits. Widening is
// exact; narrowing rounds to nearest even. Inline (header only) so the kernels' `omp simd`
// loops vectorise through them.
#pragma once

#include <cstdint>
#include <cstring>

namespace fastkv {

// f32 value of the bf16 bits h (exact).
__attribute__((always_inline)) inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round to nearest even for finite values (overflow carries into the exponent and gives inf).
// NaN inputs are not handled: the hot loops (attention tiles, cache rows) never see them.
__attribute__((always_inline)) inline uint16_t f32_to_bf16_finite(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// Round to nearest even; NaN stays NaN (truncated, quiet bit set, so a payload living only in
// the low bits survives). What files and weights go through.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  return f32_to_bf16_finite(f);
}

}  // namespace fastkv
