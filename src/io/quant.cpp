// Scalar reference conversions between GGUF tensor element types and f32.
//
// Every routine reads its block byte by byte (little-endian, as GGUF stores them), so it works
// on unaligned data and on any host byte order. Speed is not a goal here: this is the path the
// optimised kernels are checked against.
#include "io/quant.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "common/error.h"

namespace fastkv::gguf {

// ---------------------------------------------------------------------------------------------
// Half-precision formats
// ---------------------------------------------------------------------------------------------

// IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits.
float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in f32.
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31) {
    // Inf (mant == 0) or NaN (payload kept in the top mantissa bits).
    return std::bit_cast<float>(sign | 0x7F800000u | (mant << 13));
  }
  return std::bit_cast<float>(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t exp = (bits >> 23) & 0xFFu;
  const uint32_t mant = bits & 0x7FFFFFu;

  if (exp == 0xFF) {
    if (mant == 0) return sign | 0x7C00u;  // inf
    // NaN: keep the top payload bits, force the quiet bit so the result stays a NaN.
    return static_cast<uint16_t>(sign | 0x7C00u | 0x0200u | (mant >> 13));
  }
  if (exp == 0) return sign;  // zero or f32 subnormal: far below half of f16's smallest step

  const int e = static_cast<int>(exp) - 127 + 15;  // biased f16 exponent
  if (e >= 31) return sign | 0x7C00u;              // overflow to inf

  if (e >= 1) {
    // Normal: drop 13 mantissa bits, round to nearest even. A carry out of the mantissa bumps
    // the exponent, which is exactly right (and gives inf from the largest finite value).
    uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }

  // Subnormal result: value = m * 2^(exp-150) with the implicit bit restored; in units of
  // f16's step 2^-24 that is m >> (126 - exp).
  const uint32_t m = mant | 0x800000u;
  const uint32_t shift = 126u - exp;  // >= 14 here
  if (shift > 24) return sign;        // below half a step: rounds to zero
  uint32_t h = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (h & 1u))) ++h;  // may carry into the smallest normal
  return static_cast<uint16_t>(sign | h);
}

namespace {

// ---------------------------------------------------------------------------------------------
// Little-endian field access
// ---------------------------------------------------------------------------------------------

inline uint16_t rd_u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (static_cast<uint16_t>(p[1]) << 8));
}
inline uint32_t rd_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline float rd_f16(const uint8_t* p) {
  return f16_to_f32(rd_u16(p));
}
inline float rd_f32(const uint8_t* p) {
  return std::bit_cast<float>(rd_u32(p));
}

inline void wr_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xFF);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void wr_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

constexpr int64_t kBlock = 32;        // elements per block of the legacy types
constexpr int64_t kSuperBlock = 256;  // elements per super-block of the k-quants

// ---------------------------------------------------------------------------------------------
// Dequantisation, one routine per block type. Each states its block layout (byte offsets) and
// the formula for element j of the block.
// ---------------------------------------------------------------------------------------------

// F32: 4 bytes little-endian per element.
void deq_f32(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = rd_f32(src + 4 * i);
}

// F16: 2 bytes little-endian per element.
void deq_f16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = rd_f16(src + 2 * i);
}

// BF16: 2 bytes little-endian per element.
void deq_bf16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(rd_u16(src + 2 * i));
}

// Q4_0, 18 bytes per 32 elements: { f16 d @0; uint8 qs[16] @2 }.
//   j < 16:  x[j]    = ((qs[j] & 0xF) - 8) * d
//            x[j+16] = ((qs[j] >> 4)  - 8) * d
void deq_q4_0(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 18, dst += kBlock) {
    const float d = rd_f16(src);
    const uint8_t* qs = src + 2;
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>((qs[j] & 0xF) - 8) * d;
      dst[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

// Q4_1, 20 bytes per 32 elements: { f16 d @0; f16 m @2; uint8 qs[16] @4 }.
//   j < 16:  x[j] = (qs[j] & 0xF) * d + m,   x[j+16] = (qs[j] >> 4) * d + m
void deq_q4_1(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 20, dst += kBlock) {
    const float d = rd_f16(src);
    const float m = rd_f16(src + 2);
    const uint8_t* qs = src + 4;
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>(qs[j] & 0xF) * d + m;
      dst[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

// Q5_0, 22 bytes per 32 elements: { f16 d @0; uint8 qh[4] @2; uint8 qs[16] @6 }.
// qh read as a little-endian uint32 holds the 5th bit of element k in bit k.
//   j < 16:  x[j]    = (((qs[j] & 0xF) | bit j of qh << 4)      - 16) * d
//            x[j+16] = (((qs[j] >> 4)  | bit (j+16) of qh << 4) - 16) * d
void deq_q5_0(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 22, dst += kBlock) {
    const float d = rd_f16(src);
    const uint32_t qh = rd_u32(src + 2);
    const uint8_t* qs = src + 6;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      dst[j] = static_cast<float>(lo - 16) * d;
      dst[j + 16] = static_cast<float>(hi - 16) * d;
    }
  }
}

// Q5_1, 24 bytes per 32 elements: { f16 d @0; f16 m @2; uint8 qh[4] @4; uint8 qs[16] @8 }.
// Same bit placement as Q5_0, unsigned:  x = q * d + m.
void deq_q5_1(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 24, dst += kBlock) {
    const float d = rd_f16(src);
    const float m = rd_f16(src + 2);
    const uint32_t qh = rd_u32(src + 4);
    const uint8_t* qs = src + 8;
    for (int j = 0; j < 16; ++j) {
      const int lo = (qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      dst[j] = static_cast<float>(lo) * d + m;
      dst[j + 16] = static_cast<float>(hi) * d + m;
    }
  }
}

// Q8_0, 34 bytes per 32 elements: { f16 d @0; int8 qs[32] @2 }.   x[j] = qs[j] * d
void deq_q8_0(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 34, dst += kBlock) {
    const float d = rd_f16(src);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(static_cast<int8_t>(src[2 + j])) * d;
  }
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block, packed in 12 bytes:
//   j < 4:  sc = s[j] & 63,                          m = s[j+4] & 63
//   j >= 4: sc = (s[j+4] & 0xF) | ((s[j-4] >> 6) << 4), m = (s[j+4] >> 4) | ((s[j] >> 6) << 4)
// i.e. bytes 0..3 hold scales 0..3 (low 6 bits) and the top 2 bits of scales 4..7, bytes 4..7
// hold mins 0..3 and the top 2 bits of mins 4..7, bytes 8..11 hold the low 4 bits of scale
// (low nibble) and min (high nibble) 4..7.
inline void scale_min_k4(int j, const uint8_t* s, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K, 144 bytes per 256 elements:
//   { f16 d @0; f16 dmin @2; uint8 scales[12] @4; uint8 qs[128] @16 }.
// Eight sub-blocks of 32, sub-block u having 6-bit (sc[u], m[u]) from scale_min_k4. The 256
// outputs are four groups g of 64 using qs[32g .. 32g+31]; for l < 32:
//   x[64g + l]      = d * sc[2g]   * (qs[32g+l] & 0xF) - dmin * m[2g]
//   x[64g + 32 + l] = d * sc[2g+1] * (qs[32g+l] >> 4)  - dmin * m[2g+1]
void deq_q4_k(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 144, dst += kSuperBlock) {
    const float d = rd_f16(src);
    const float dmin = rd_f16(src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* qs = src + 16;
    for (int g = 0; g < 4; ++g) {
      int sc0, m0, sc1, m1;
      scale_min_k4(2 * g, scales, sc0, m0);
      scale_min_k4(2 * g + 1, scales, sc1, m1);
      const float d0 = d * static_cast<float>(sc0), mm0 = dmin * static_cast<float>(m0);
      const float d1 = d * static_cast<float>(sc1), mm1 = dmin * static_cast<float>(m1);
      const uint8_t* q = qs + 32 * g;
      float* y = dst + 64 * g;
      for (int l = 0; l < 32; ++l) {
        y[l] = d0 * static_cast<float>(q[l] & 0xF) - mm0;
        y[l + 32] = d1 * static_cast<float>(q[l] >> 4) - mm1;
      }
    }
  }
}

// Q5_K, 176 bytes per 256 elements:
//   { f16 d @0; f16 dmin @2; uint8 scales[12] @4; uint8 qh[32] @16; uint8 qs[128] @48 }.
// As Q4_K, with a 5th bit (value 16) for element l of sub-block u (u = 0..7, l < 32) taken from
// bit u of qh[l]:
//   x[64g + l]      = d * sc[2g]   * ((qs[32g+l] & 0xF) + 16 * bit(2g)   of qh[l]) - dmin * m[2g]
//   x[64g + 32 + l] = d * sc[2g+1] * ((qs[32g+l] >> 4)  + 16 * bit(2g+1) of qh[l]) - dmin*m[2g+1]
void deq_q5_k(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 176, dst += kSuperBlock) {
    const float d = rd_f16(src);
    const float dmin = rd_f16(src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* qh = src + 16;
    const uint8_t* qs = src + 48;
    for (int g = 0; g < 4; ++g) {
      int sc0, m0, sc1, m1;
      scale_min_k4(2 * g, scales, sc0, m0);
      scale_min_k4(2 * g + 1, scales, sc1, m1);
      const float d0 = d * static_cast<float>(sc0), mm0 = dmin * static_cast<float>(m0);
      const float d1 = d * static_cast<float>(sc1), mm1 = dmin * static_cast<float>(m1);
      const uint8_t* q = qs + 32 * g;
      float* y = dst + 64 * g;
      for (int l = 0; l < 32; ++l) {
        const int lo = (q[l] & 0xF) + (((qh[l] >> (2 * g)) & 1) << 4);
        const int hi = (q[l] >> 4) + (((qh[l] >> (2 * g + 1)) & 1) << 4);
        y[l] = d0 * static_cast<float>(lo) - mm0;
        y[l + 32] = d1 * static_cast<float>(hi) - mm1;
      }
    }
  }
}

// Q6_K, 210 bytes per 256 elements:
//   { uint8 ql[128] @0; uint8 qh[64] @128; int8 scales[16] @192; f16 d @208 }.
// Two halves h (0, 1) of 128 elements; half h uses ql[64h .. 64h+63], qh[32h .. 32h+31] and
// scales[8h .. 8h+7]. Within a half, for l < 32 and k = 0..3, element 32k + l has
//   low 4 bits  = ql[64h + l + 32*(k & 1)], low nibble for k < 2, high nibble for k >= 2
//   high 2 bits = (qh[32h + l] >> 2k) & 3
// and with q = low | high << 4 (0..63), element i = 128h + 32k + l is
//   x[i] = d * scales[i / 16] * (q - 32)        (scales are signed)
void deq_q6_k(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 210, dst += kSuperBlock) {
    const float d = rd_f16(src + 208);
    const int8_t* scales = reinterpret_cast<const int8_t*>(src + 192);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = src + 64 * h;
      const uint8_t* qh = src + 128 + 32 * h;
      float* y = dst + 128 * h;
      for (int k = 0; k < 4; ++k) {
        for (int l = 0; l < 32; ++l) {
          const uint8_t lbyte = ql[l + 32 * (k & 1)];
          const int low = k < 2 ? (lbyte & 0xF) : (lbyte >> 4);
          const int high = (qh[l] >> (2 * k)) & 3;
          const int q = (low | (high << 4)) - 32;
          const int i = 32 * k + l;  // index within the half
          const int sc = scales[8 * h + i / 16];
          y[i] = d * static_cast<float>(sc) * static_cast<float>(q);
        }
      }
    }
  }
}

// Q8_K, 292 bytes per 256 elements:
//   { f32 d @0; int8 qs[256] @4; int16 bsums[16] @260 }.   x[j] = d * qs[j]
// (bsums, the sums of each 16 quants, only serve dot products and are ignored here.)
void deq_q8_k(const uint8_t* src, float* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += 292, dst += kSuperBlock) {
    const float d = rd_f32(src);
    for (int j = 0; j < 256; ++j) dst[j] = d * static_cast<float>(static_cast<int8_t>(src[4 + j]));
  }
}

// ---------------------------------------------------------------------------------------------
// Quantisation
// ---------------------------------------------------------------------------------------------

// Q8_0: d = max|x| / 127, stored as f16; q = round(x / d) in [-127, 127]. The quants are
// computed against the stored (f16-rounded) d, so every element decodes within d/2 of x.
void q_q8_0(const float* src, uint8_t* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += kBlock, dst += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(src[j]));
    const uint16_t dh = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(dh);
    wr_u16(dst, dh);
    for (int j = 0; j < 32; ++j) {
      int q = 0;
      if (d != 0.0f && std::isfinite(d)) {
        q = static_cast<int>(std::lround(src[j] / d));
        q = std::clamp(q, -127, 127);
      }
      dst[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  }
}

// Q4_0: `max` is the element of largest magnitude (with its sign); d = max / -8, stored as f16,
// so `max` itself encodes exactly as q = 0 (value -8d). q = min(15, trunc(x / d + 8.5)), i.e.
// x / d rounded (ties up) then offset by 8 and clamped to [0, 15]; elements near -max (x/d > 7.5)
// clamp to 15 and so are off by up to |d|. Quants use the stored (f16-rounded) d.
void q_q4_0(const float* src, uint8_t* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += kBlock, dst += 18) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(src[j]) > amax) {
        amax = std::fabs(src[j]);
        max = src[j];
      }
    }
    const uint16_t dh = f32_to_f16(max / -8.0f);
    const float d = f16_to_f32(dh);
    const bool ok = d != 0.0f && std::isfinite(d);
    wr_u16(dst, dh);
    uint8_t* qs = dst + 2;
    auto quant = [&](float x) -> int {
      if (!ok) return 8;
      const float v = x / d + 8.5f;
      if (!(v > 0.0f)) return 0;  // also catches NaN
      return std::min(15, static_cast<int>(v));
    };
    for (int j = 0; j < 16; ++j) {
      const int lo = quant(src[j]);
      const int hi = quant(src[j + 16]);
      qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// Q5_0: as Q4_0 with 5-bit quants: `max` is the element of largest magnitude (with its sign),
// d = max / -16 stored as f16, so `max` encodes as q = 0 (value -16d); q = min(31,
// trunc(x / d + 16.5)) against the stored d: within |d|/2 of x, except elements near -max
// (x / d > 15.5) which clamp to 31 and are off by up to |d|. Low 4 bits of q as in Q4_0, the
// fifth bit of element j in bit j of the u32 qh.
void q_q5_0(const float* src, uint8_t* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += kBlock, dst += 22) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(src[j]) > amax) {
        amax = std::fabs(src[j]);
        max = src[j];
      }
    }
    const uint16_t dh = f32_to_f16(max / -16.0f);
    const float d = f16_to_f32(dh);
    const bool ok = d != 0.0f && std::isfinite(d);
    auto quant = [&](float x) -> int {
      if (!ok) return 16;
      const float v = x / d + 16.5f;
      if (!(v > 0.0f)) return 0;  // also catches NaN
      return std::min(31, static_cast<int>(v));
    };
    wr_u16(dst, dh);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = quant(src[j]), hi = quant(src[j + 16]);
      dst[6 + j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh |= static_cast<uint32_t>(lo >> 4) << j;
      qh |= static_cast<uint32_t>(hi >> 4) << (j + 16);
    }
    wr_u32(dst + 2, qh);
  }
}

// Q5_1: m = min x and d = (max x - min x) / 31, both stored as f16; q = round((x - m) / d)
// clamped to [0, 31] against the stored d and m: within d/2 (plus m's f16 rounding) of x.
void q_q5_1(const float* src, uint8_t* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += kBlock, dst += 24) {
    const float lo = *std::min_element(src, src + 32), hi = *std::max_element(src, src + 32);
    const uint16_t dh = f32_to_f16((hi - lo) / 31.0f), mh = f32_to_f16(lo);
    const float d = f16_to_f32(dh), m = f16_to_f32(mh);
    const bool ok = d != 0.0f && std::isfinite(d);
    auto quant = [&](float x) -> int {
      if (!ok) return 0;
      const float v = std::nearbyint((x - m) / d);
      if (!(v > 0.0f)) return 0;
      return static_cast<int>(std::min(v, 31.0f));
    };
    wr_u16(dst, dh);
    wr_u16(dst + 2, mh);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const int q0 = quant(src[j]), q1 = quant(src[j + 16]);
      dst[8 + j] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= static_cast<uint32_t>(q0 >> 4) << j;
      qh |= static_cast<uint32_t>(q1 >> 4) << (j + 16);
    }
    wr_u32(dst + 4, qh);
  }
}

// round(v) clamped to [lo, hi]; 0 for NaN.
inline int round_clamp(float v, int lo, int hi) {
  if (!(v == v)) return 0;
  return static_cast<int>(std::clamp(std::nearbyint(v), static_cast<float>(lo),
                                     static_cast<float>(hi)));
}

// Q4_K (levels = 15) and Q5_K (levels = 31), simple round to nearest (not llama-quantize's
// search for the best scales): each sub-block u of 32 covers [lo_u, hi_u] with lo_u = min(0,
// min x), hi_u = max x, step scale_u = (hi_u - lo_u) / levels; the super-block stores
// d = max_u scale_u / 63 and dmin = max_u (-lo_u) / 63 as f16, sc[u] = round(scale_u / d) and
// mn[u] = round(-lo_u / dmin) in 0..63, and q = round((x + dmin · mn) / (d · sc)) clamped to
// 0..levels against the stored values. An element is within d · sc / 2 of its value, plus what
// rounding the 6-bit sc and mn moves the grid: up to levels · d / 2 at the top and dmin / 2 at
// the bottom (so small sub-blocks beside a large one lose precision, as in the format).
void q_k4(const float* src, uint8_t* dst, int64_t nb, bool q5) {
  const int levels = q5 ? 31 : 15;
  const int bytes = q5 ? 176 : 144;
  for (int64_t b = 0; b < nb; ++b, src += kSuperBlock, dst += bytes) {
    std::fill(dst, dst + bytes, 0);
    float step[8], neg_lo[8], max_step = 0, max_neg_lo = 0;
    for (int u = 0; u < 8; ++u) {
      const float* x = src + 32 * u;
      const float lo = std::min(0.0f, *std::min_element(x, x + 32));
      const float hi = *std::max_element(x, x + 32);
      step[u] = (hi - lo) / static_cast<float>(levels);
      neg_lo[u] = -lo;
      max_step = std::max(max_step, step[u]);
      max_neg_lo = std::max(max_neg_lo, neg_lo[u]);
    }
    const uint16_t dh = f32_to_f16(max_step / 63.0f), dminh = f32_to_f16(max_neg_lo / 63.0f);
    const float d = f16_to_f32(dh), dmin = f16_to_f32(dminh);
    wr_u16(dst, dh);
    wr_u16(dst + 2, dminh);
    const bool d_ok = d > 0.0f && std::isfinite(d), dmin_ok = dmin > 0.0f && std::isfinite(dmin);
    int sc[8], mn[8];
    for (int u = 0; u < 8; ++u) {
      sc[u] = d_ok ? round_clamp(step[u] / d, 0, 63) : 0;
      mn[u] = dmin_ok ? round_clamp(neg_lo[u] / dmin, 0, 63) : 0;
    }
    // Packing: bytes 0..3 sc[0..3] | top 2 bits of sc[4..7] << 6; bytes 4..7 likewise for the
    // mins; bytes 8..11 low 4 bits of sc[4..7] | low 4 bits of mn[4..7] << 4.
    uint8_t* s = dst + 4;
    for (int u = 0; u < 4; ++u) {
      s[u] = static_cast<uint8_t>(sc[u] | ((sc[u + 4] >> 4) << 6));
      s[u + 4] = static_cast<uint8_t>(mn[u] | ((mn[u + 4] >> 4) << 6));
      s[u + 8] = static_cast<uint8_t>((sc[u + 4] & 0xF) | ((mn[u + 4] & 0xF) << 4));
    }
    uint8_t* qh = q5 ? dst + 16 : nullptr;
    uint8_t* qs = dst + (q5 ? 48 : 16);
    for (int u = 0; u < 8; ++u) {
      const float e = d * static_cast<float>(sc[u]), o = dmin * static_cast<float>(mn[u]);
      for (int l = 0; l < 32; ++l) {
        const int q = e > 0.0f ? round_clamp((src[32 * u + l] + o) / e, 0, levels) : 0;
        // Sub-block u: low (even u) or high (odd u) nibble of qs[32 (u / 2) + l]; Q5_K's fifth
        // bit in bit u of qh[l].
        qs[32 * (u / 2) + l] |= static_cast<uint8_t>(u % 2 == 0 ? (q & 0xF) : (q & 0xF) << 4);
        if (q5) qh[l] |= static_cast<uint8_t>((q >> 4) << u);
      }
    }
  }
}

// Q6_K, simple round to nearest: each sub-block t of 16 takes scale_t = max_t / -32 with max_t
// its element of largest magnitude (signed, as Q4_0), so max_t encodes as q = 0 (value
// -32 · scale); the super-block stores d = max_t |scale_t| / 127 as f16 and sc[t] =
// round(scale_t / d) in -127..127 (int8), and q = round(x / (d · sc)) + 32 clamped to 0..63.
// An element is within |d · sc| / 2 of its value, plus up to 32 · d / 2 from rounding sc, and
// elements near -max_t clamp to 63 (off by up to |d · sc| more, as Q4_0).
void q_q6_k(const float* src, uint8_t* dst, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b, src += kSuperBlock, dst += 210) {
    std::fill(dst, dst + 210, 0);
    float scale[16], max_abs = 0;
    for (int t = 0; t < 16; ++t) {
      float amax = 0.0f, max = 0.0f;
      for (int j = 0; j < 16; ++j) {
        if (std::fabs(src[16 * t + j]) > amax) {
          amax = std::fabs(src[16 * t + j]);
          max = src[16 * t + j];
        }
      }
      scale[t] = max / -32.0f;
      max_abs = std::max(max_abs, std::fabs(scale[t]));
    }
    const uint16_t dh = f32_to_f16(max_abs / 127.0f);
    const float d = f16_to_f32(dh);
    const bool ok = d > 0.0f && std::isfinite(d);
    wr_u16(dst + 208, dh);
    int sc[16];
    for (int t = 0; t < 16; ++t) {
      sc[t] = ok ? round_clamp(scale[t] / d, -127, 127) : 0;
      dst[192 + t] = static_cast<uint8_t>(static_cast<int8_t>(sc[t]));
    }
    for (int i = 0; i < 256; ++i) {
      const float e = d * static_cast<float>(sc[i / 16]);
      const int q = e != 0.0f ? round_clamp(src[i] / e + 32.0f, 0, 63) : 32;
      // Element i = 128 h + 32 k + l: low 4 bits in ql[64 h + 32 (k & 1) + l] (low nibble for
      // k < 2, high for k >= 2), high 2 bits at bits 2k, 2k+1 of qh[32 h + l].
      const int h = i / 128, k = (i % 128) / 32, l = i % 32;
      dst[64 * h + 32 * (k & 1) + l] |= static_cast<uint8_t>(k < 2 ? (q & 0xF) : (q & 0xF) << 4);
      dst[128 + 32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
    }
  }
}

}  // namespace

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  const TypeInfo* info = type_info(static_cast<uint32_t>(type));
  if (!info || !info->can_dequantize) {
    fail("dequantisation of tensor type ", type_name(type), " is not supported");
  }
  bytes_for(type, n);  // throws for n < 0 or not a multiple of the block size
  const int64_t nb = n / info->block_size;
  const auto* s = static_cast<const uint8_t*>(src);
  switch (type) {
    case TensorType::F32:
      return deq_f32(s, dst, n);
    case TensorType::F16:
      return deq_f16(s, dst, n);
    case TensorType::BF16:
      return deq_bf16(s, dst, n);
    case TensorType::Q4_0:
      return deq_q4_0(s, dst, nb);
    case TensorType::Q4_1:
      return deq_q4_1(s, dst, nb);
    case TensorType::Q5_0:
      return deq_q5_0(s, dst, nb);
    case TensorType::Q5_1:
      return deq_q5_1(s, dst, nb);
    case TensorType::Q8_0:
      return deq_q8_0(s, dst, nb);
    case TensorType::Q4_K:
      return deq_q4_k(s, dst, nb);
    case TensorType::Q5_K:
      return deq_q5_k(s, dst, nb);
    case TensorType::Q6_K:
      return deq_q6_k(s, dst, nb);
    case TensorType::Q8_K:
      return deq_q8_k(s, dst, nb);
    default:
      break;
  }
  fail("dequantisation of tensor type ", type_name(type), " is not supported");
}

bool can_quantize(TensorType type) {
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16:
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  if (!can_quantize(type)) fail("quantisation to tensor type ", type_name(type), " is not supported");
  bytes_for(type, n);  // throws for n < 0 or not a multiple of the block size
  auto* d = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::F32:
      for (int64_t i = 0; i < n; ++i) wr_u32(d + 4 * i, std::bit_cast<uint32_t>(src[i]));
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) wr_u16(d + 2 * i, f32_to_f16(src[i]));
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) wr_u16(d + 2 * i, f32_to_bf16(src[i]));
      return;
    case TensorType::Q8_0:
      return q_q8_0(src, d, n / kBlock);
    case TensorType::Q4_0:
      return q_q4_0(src, d, n / kBlock);
    case TensorType::Q5_0:
      return q_q5_0(src, d, n / kBlock);
    case TensorType::Q5_1:
      return q_q5_1(src, d, n / kBlock);
    case TensorType::Q4_K:
      return q_k4(src, d, n / kSuperBlock, false);
    case TensorType::Q5_K:
      return q_k4(src, d, n / kSuperBlock, true);
    case TensorType::Q6_K:
      return q_q6_k(src, d, n / kSuperBlock);
    default:
      return;
  }
}

std::vector<uint8_t> quantize(TensorType type, const float* src, int64_t n) {
  if (!can_quantize(type)) fail("quantisation to tensor type ", type_name(type), " is not supported");
  std::vector<uint8_t> out(bytes_for(type, n));
  quantize_row(type, src, out.data(), n);
  return out;
}

}  // namespace fastkv::gguf
