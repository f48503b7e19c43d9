// Tests for io/quant: half-precision conversions, dequantisation of every supported GGUF block
// type, quantisation round trips and error cases.
//
// The dequantisation tests build blocks byte by byte. Most pick a quant value per element first,
// pack it with an encoder written here from the format's definition (the inverse direction of
// the decoder under test), and expect d * (q - offset) (or d*sc*q - dmin*m) for every element;
// others set a few bytes by hand and check numbers worked out in the comments.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/quant.h"
#include "io/tensor_type.h"

namespace {

using fastkv::gguf::TensorType;
namespace gg = fastkv::gguf;

// Deterministic pseudo-random numbers (a plain LCG: the tests must not depend on <random>'s
// implementation-defined distributions).
struct Lcg {
  uint32_t s;
  uint32_t next() {
    s = s * 1664525u + 1013904223u;
    return s >> 8;
  }
  int range(int lo, int hi) {
    return lo + static_cast<int>(next() % static_cast<uint32_t>(hi - lo + 1));
  }
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(next() % 1000001u) / 1e6f;
  }
};

void put_u16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v & 0xFF);
  b[off + 1] = static_cast<uint8_t>(v >> 8);
}

void put_f32(std::vector<uint8_t>& b, size_t off, float f) {
  const uint32_t v = std::bit_cast<uint32_t>(f);
  for (int i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

uint16_t get_u16(const std::vector<uint8_t>& b, size_t off) {
  return static_cast<uint16_t>(b[off] | (b[off + 1] << 8));
}

std::vector<float> deq(TensorType t, const std::vector<uint8_t>& bytes, int64_t n) {
  EXPECT_EQ(bytes.size(), gg::bytes_for(t, n)) << "test built a block of the wrong size";
  std::vector<float> out(static_cast<size_t>(n), std::numeric_limits<float>::quiet_NaN());
  gg::dequantize_row(t, bytes.data(), out.data(), n);
  return out;
}

// Every element must match exactly (the test data use scales for which the arithmetic is exact).
void expect_all_eq(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  int shown = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i] && shown++ < 10) {
      ADD_FAILURE() << "element " << i << ": got " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(shown, 0) << "mismatching elements";
}

// f16 bit patterns used below (sign | exponent (bias 15) << 10 | mantissa).
constexpr uint16_t kH_0_125 = 0x3000;
constexpr uint16_t kH_0_25 = 0x3400;
constexpr uint16_t kH_0_5 = 0x3800;
constexpr uint16_t kH_0_75 = 0x3A00;  // 1.1b * 2^-1
constexpr uint16_t kH_1 = 0x3C00;
constexpr uint16_t kH_1_5 = 0x3E00;
constexpr uint16_t kH_2 = 0x4000;
constexpr uint16_t kH_3 = 0x4200;
constexpr uint16_t kH_m0_125 = 0xB000;
constexpr uint16_t kH_m0_25 = 0xB400;
constexpr uint16_t kH_m0_75 = 0xBA00;
constexpr uint16_t kH_m1_25 = 0xBD00;  // -1.01b
constexpr uint16_t kH_m2 = 0xC000;

// ---------------------------------------------------------------------------------------------
// f16 / bf16
// ---------------------------------------------------------------------------------------------

TEST(QuantHalf, F16ToF32KnownPatterns) {
  EXPECT_EQ(gg::f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(gg::f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(gg::f16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(gg::f16_to_f32(0x0001), std::ldexp(1.0f, -24));            // smallest subnormal
  EXPECT_EQ(gg::f16_to_f32(0x03FF), 1023.0f * std::ldexp(1.0f, -24));  // largest subnormal
  EXPECT_EQ(gg::f16_to_f32(0x0400), std::ldexp(1.0f, -14));            // smallest normal
  EXPECT_EQ(gg::f16_to_f32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(gg::f16_to_f32(0x3555), (1.0f + 0x155 / 1024.0f) * 0.25f);  // 0.333251953125
  EXPECT_EQ(gg::f16_to_f32(0x0000), 0.0f);
  EXPECT_FALSE(std::signbit(gg::f16_to_f32(0x0000)));
  EXPECT_TRUE(std::signbit(gg::f16_to_f32(0x8000)));
  EXPECT_EQ(gg::f16_to_f32(0x8000), 0.0f);
  EXPECT_EQ(gg::f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(gg::f16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(gg::f16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(gg::f16_to_f32(0x7C01)));  // signalling NaN with a 1-bit payload
  EXPECT_TRUE(std::isnan(gg::f16_to_f32(0xFFFF)));
}

TEST(QuantHalf, F32ToF16KnownPatterns) {
  EXPECT_EQ(gg::f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(gg::f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(gg::f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(gg::f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(gg::f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(gg::f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(gg::f32_to_f16(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(gg::f32_to_f16(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(gg::f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(gg::f32_to_f16(-std::numeric_limits<float>::infinity()), 0xFC00);
  const uint16_t nan = gg::f32_to_f16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
  // A NaN whose payload lies only in the low f32 mantissa bits must not become inf.
  const uint16_t nan2 = gg::f32_to_f16(std::bit_cast<float>(0x7F800001u));
  EXPECT_EQ(nan2 & 0x7C00, 0x7C00);
  EXPECT_NE(nan2 & 0x03FF, 0);
}

TEST(QuantHalf, F32ToF16RoundsToNearestEven) {
  const float ulp1 = std::ldexp(1.0f, -10);  // f16 step in [1, 2)
  // Exactly halfway between 0x3C00 (even) and 0x3C01: stays at the even one.
  EXPECT_EQ(gg::f32_to_f16(1.0f + ulp1 / 2), 0x3C00);
  // Halfway between 0x3C01 (odd) and 0x3C02 (even): goes up.
  EXPECT_EQ(gg::f32_to_f16(1.0f + 1.5f * ulp1), 0x3C02);
  // Just above halfway: up.
  EXPECT_EQ(gg::f32_to_f16(1.0f + ulp1 / 2 + std::ldexp(1.0f, -20)), 0x3C01);
  // Just below halfway: down.
  EXPECT_EQ(gg::f32_to_f16(1.0f + ulp1 / 2 - std::ldexp(1.0f, -20)), 0x3C00);
  // Carry out of the mantissa into the exponent: 2 - 2^-12 rounds to 2.
  EXPECT_EQ(gg::f32_to_f16(2.0f - std::ldexp(1.0f, -12)), 0x4000);
  // Overflow: 65520 is halfway between 65504 (odd mantissa) and 65536 (inf): rounds to inf.
  EXPECT_EQ(gg::f32_to_f16(65519.0f), 0x7BFF);
  EXPECT_EQ(gg::f32_to_f16(65520.0f), 0x7C00);
  EXPECT_EQ(gg::f32_to_f16(1e6f), 0x7C00);
  EXPECT_EQ(gg::f32_to_f16(-1e6f), 0xFC00);
  // Subnormal results, in units of 2^-24.
  const float u = std::ldexp(1.0f, -24);
  EXPECT_EQ(gg::f32_to_f16(0.5f * u), 0x0000);  // tie between 0 (even) and 1
  EXPECT_EQ(gg::f32_to_f16(0.75f * u), 0x0001);
  EXPECT_EQ(gg::f32_to_f16(0.25f * u), 0x0000);
  EXPECT_EQ(gg::f32_to_f16(1.5f * u), 0x0002);     // tie between 1 and 2 (even)
  EXPECT_EQ(gg::f32_to_f16(2.5f * u), 0x0002);     // tie between 2 (even) and 3
  EXPECT_EQ(gg::f32_to_f16(1023.5f * u), 0x0400);  // tie rounds up into the smallest normal
  EXPECT_EQ(gg::f32_to_f16(-0.75f * u), 0x8001);
  EXPECT_EQ(gg::f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(gg::f32_to_f16(-std::numeric_limits<float>::denorm_min()), 0x8000);
}

TEST(QuantHalf, F16RoundTripsEveryPattern) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float f = gg::f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(gg::f16_to_f32(gg::f32_to_f16(f)))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(gg::f32_to_f16(f), h) << std::hex << "pattern 0x" << h;
  }
}

TEST(QuantHalf, Bf16KnownPatterns) {
  EXPECT_EQ(gg::f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(gg::bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(gg::f32_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(gg::bf16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(gg::bf16_to_f32(0x0001), std::bit_cast<float>(0x00010000u));  // subnormal
  EXPECT_EQ(gg::f32_to_bf16(std::bit_cast<float>(0x00010000u)), 0x0001);
  EXPECT_EQ(gg::f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(gg::f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(gg::bf16_to_f32(0xFF80), -std::numeric_limits<float>::infinity());
  // Round to nearest even: 1 + 2^-8 lies halfway between 0x3F80 (even) and 0x3F81.
  EXPECT_EQ(gg::f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);
  // Halfway between 0x3F81 (odd) and 0x3F82: up.
  EXPECT_EQ(gg::f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);
  EXPECT_EQ(gg::f32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(gg::f32_to_bf16(std::bit_cast<float>(0x3F807FFFu)), 0x3F80);
  // Overflow to inf: FLT_MAX is above the largest bf16 by more than half a step.
  EXPECT_EQ(gg::f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
  // NaN stays NaN, also when its payload lies only in the low 16 bits.
  EXPECT_TRUE(
      std::isnan(gg::bf16_to_f32(gg::f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(gg::bf16_to_f32(gg::f32_to_bf16(std::bit_cast<float>(0x7F800001u)))));
  EXPECT_TRUE(std::isnan(gg::bf16_to_f32(gg::f32_to_bf16(std::bit_cast<float>(0xFFFF0001u)))));
  EXPECT_TRUE(std::isnan(gg::bf16_to_f32(0x7FC0)));
}

// ---------------------------------------------------------------------------------------------
// Dequantisation: plain float types
// ---------------------------------------------------------------------------------------------

TEST(QuantDequant, F32F16Bf16LittleEndian) {
  // F32: 1.0 = 0x3F800000, -2.5 = 0xC0200000, stored little-endian.
  const std::vector<uint8_t> f32 = {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0};
  expect_all_eq(deq(TensorType::F32, f32, 2), {1.0f, -2.5f});
  const std::vector<uint8_t> f16 = {0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0xFF, 0x7B, 0x00, 0x80};
  const auto h = deq(TensorType::F16, f16, 5);
  expect_all_eq(h, {1.0f, -2.0f, std::ldexp(1.0f, -24), 65504.0f, -0.0f});
  EXPECT_TRUE(std::signbit(h[4]));
  const std::vector<uint8_t> bf16 = {0x80, 0x3F, 0x00, 0xC0, 0x49, 0x40};
  // 0x4049 = 0x40490000 as f32 = 3.140625
  expect_all_eq(deq(TensorType::BF16, bf16, 3), {1.0f, -2.0f, 3.140625f});
}

// ---------------------------------------------------------------------------------------------
// Dequantisation: 32-element block types
// ---------------------------------------------------------------------------------------------

// Q4_0 block (18 bytes): f16 d, then qs[16]; element i < 16 is the low nibble of qs[i], element
// i >= 16 the high nibble of qs[i - 16]; value (q - 8) * d.
TEST(QuantDequant, Q4_0) {
  const uint16_t dbits[2] = {kH_0_5, kH_m2};
  const float dval[2] = {0.5f, -2.0f};
  Lcg rng{11};
  std::vector<uint8_t> buf(2 * 18, 0);
  std::vector<float> want(64);
  for (int b = 0; b < 2; ++b) {
    put_u16(buf, b * 18, dbits[b]);
    for (int i = 0; i < 32; ++i) {
      // Block 0: low nibbles 0..15, high nibbles 15..0 (never equal within a byte).
      const int q = b == 0 ? (i < 16 ? i : 31 - i) : rng.range(0, 15);
      uint8_t& byte = buf[b * 18 + 2 + (i % 16)];
      byte |= static_cast<uint8_t>(i < 16 ? q : q << 4);
      want[b * 32 + i] = static_cast<float>(q - 8) * dval[b];
    }
  }
  const auto got = deq(TensorType::Q4_0, buf, 64);
  expect_all_eq(got, want);
  // By hand: qs[0] = 0xF0 -> element 0 = (0 - 8) * 0.5 = -4, element 16 = (15 - 8) * 0.5 = 3.5.
  EXPECT_EQ(buf[2], 0xF0);
  EXPECT_EQ(got[0], -4.0f);
  EXPECT_EQ(got[16], 3.5f);
  EXPECT_EQ(got[15], 3.5f);   // qs[15] = 0x0F: low nibble 15
  EXPECT_EQ(got[31], -4.0f);  // high nibble 0
}

// Q4_1 block (20 bytes): f16 d, f16 m, qs[16]; same nibble order; value q * d + m.
TEST(QuantDequant, Q4_1) {
  const uint16_t dbits[2] = {kH_0_5, kH_2};
  const uint16_t mbits[2] = {kH_m1_25, kH_3};
  const float dval[2] = {0.5f, 2.0f};
  const float mval[2] = {-1.25f, 3.0f};
  Lcg rng{12};
  std::vector<uint8_t> buf(2 * 20, 0);
  std::vector<float> want(64);
  for (int b = 0; b < 2; ++b) {
    put_u16(buf, b * 20, dbits[b]);
    put_u16(buf, b * 20 + 2, mbits[b]);
    for (int i = 0; i < 32; ++i) {
      const int q = b == 0 ? (i < 16 ? i : 31 - i) : rng.range(0, 15);
      buf[b * 20 + 4 + (i % 16)] |= static_cast<uint8_t>(i < 16 ? q : q << 4);
      want[b * 32 + i] = static_cast<float>(q) * dval[b] + mval[b];
    }
  }
  const auto got = deq(TensorType::Q4_1, buf, 64);
  expect_all_eq(got, want);
  EXPECT_EQ(got[0], -1.25f);  // q = 0: m
  EXPECT_EQ(got[16], 6.25f);  // q = 15: 7.5 - 1.25
}

// Q5 encoder shared by Q5_0 / Q5_1: low 4 bits into qs as for Q4, bit 4 of element i into bit i
// of qh (little-endian uint32, i.e. byte i / 8, bit i % 8).
void pack_q5(uint8_t* qh, uint8_t* qs, const int* q) {
  for (int i = 0; i < 32; ++i) {
    qs[i % 16] |= static_cast<uint8_t>(i < 16 ? (q[i] & 15) : (q[i] & 15) << 4);
    if (q[i] & 16) qh[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
  }
}

// Q5_0 block (22 bytes): f16 d, qh[4], qs[16]; value (q - 16) * d.
TEST(QuantDequant, Q5_0) {
  const uint16_t dbits[2] = {kH_0_25, kH_m0_75};
  const float dval[2] = {0.25f, -0.75f};
  Lcg rng{13};
  std::vector<uint8_t> buf(2 * 22, 0);
  std::vector<float> want(64);
  for (int b = 0; b < 2; ++b) {
    int q[32];
    for (int i = 0; i < 32; ++i) q[i] = b == 0 ? (i * 7 + 3) % 32 : rng.range(0, 31);
    put_u16(buf, b * 22, dbits[b]);
    pack_q5(&buf[b * 22 + 2], &buf[b * 22 + 6], q);
    for (int i = 0; i < 32; ++i) want[b * 32 + i] = static_cast<float>(q[i] - 16) * dval[b];
  }
  expect_all_eq(deq(TensorType::Q5_0, buf, 64), want);
}

TEST(QuantDequant, Q5_0ByHand) {
  std::vector<uint8_t> buf(22, 0);
  put_u16(buf, 0, kH_0_5);
  // qh bytes 01 00 80 00 = uint32 0x00800001: bits 0 and 23 set.
  buf[2] = 0x01;
  buf[4] = 0x80;
  buf[6 + 0] = 0x21;  // qs[0]
  buf[6 + 7] = 0xF0;  // qs[7]
  const auto got = deq(TensorType::Q5_0, buf, 32);
  EXPECT_EQ(got[0], 0.5f);    // low nibble 1 | bit 0 -> 17; (17 - 16) * 0.5
  EXPECT_EQ(got[16], -7.0f);  // high nibble 2, bit 16 clear -> (2 - 16) * 0.5
  EXPECT_EQ(got[7], -8.0f);   // low nibble 0, bit 7 clear -> -16 * 0.5
  EXPECT_EQ(got[23], 7.5f);   // high nibble 15 | bit 23 -> 31; 15 * 0.5
  EXPECT_EQ(got[1], -8.0f);   // everything else is q = 0
}

// Q5_1 block (24 bytes): f16 d, f16 m, qh[4], qs[16]; value q * d + m.
TEST(QuantDequant, Q5_1) {
  const uint16_t dbits[2] = {kH_0_5, kH_1_5};
  const uint16_t mbits[2] = {kH_m1_25, kH_0_125};
  const float dval[2] = {0.5f, 1.5f};
  const float mval[2] = {-1.25f, 0.125f};
  Lcg rng{14};
  std::vector<uint8_t> buf(2 * 24, 0);
  std::vector<float> want(64);
  for (int b = 0; b < 2; ++b) {
    int q[32];
    for (int i = 0; i < 32; ++i) q[i] = b == 0 ? (i * 13 + 5) % 32 : rng.range(0, 31);
    put_u16(buf, b * 24, dbits[b]);
    put_u16(buf, b * 24 + 2, mbits[b]);
    pack_q5(&buf[b * 24 + 4], &buf[b * 24 + 8], q);
    for (int i = 0; i < 32; ++i) want[b * 32 + i] = static_cast<float>(q[i]) * dval[b] + mval[b];
  }
  const auto got = deq(TensorType::Q5_1, buf, 64);
  expect_all_eq(got, want);
  // Element 2 of block 0: q = 31 (all five bits) -> 31 * 0.5 - 1.25 = 14.25.
  EXPECT_EQ(got[2], 14.25f);
  // Element 19: q = (19*13+5) % 32 = 252 % 32 = 28 -> high nibble 12 + bit 19 -> 14 - 1.25 = 12.75.
  EXPECT_EQ(got[19], 12.75f);
}

// Q8_0 block (34 bytes): f16 d, int8 qs[32]; value q * d.
TEST(QuantDequant, Q8_0) {
  const uint16_t dbits[2] = {kH_m0_25, kH_1_5};
  const float dval[2] = {-0.25f, 1.5f};
  Lcg rng{15};
  std::vector<uint8_t> buf(2 * 34, 0);
  std::vector<float> want(64);
  for (int b = 0; b < 2; ++b) {
    put_u16(buf, b * 34, dbits[b]);
    for (int i = 0; i < 32; ++i) {
      int q = rng.range(-128, 127);
      if (i == 0) q = -128;
      if (i == 1) q = 127;
      if (i == 2) q = -1;
      buf[b * 34 + 2 + i] = static_cast<uint8_t>(static_cast<int8_t>(q));
      want[b * 32 + i] = static_cast<float>(q) * dval[b];
    }
  }
  const auto got = deq(TensorType::Q8_0, buf, 64);
  expect_all_eq(got, want);
  EXPECT_EQ(got[0], 32.0f);        // -128 * -0.25
  EXPECT_EQ(got[32 + 1], 190.5f);  // 127 * 1.5
  EXPECT_EQ(got[32 + 2], -1.5f);
}

// ---------------------------------------------------------------------------------------------
// Dequantisation: k-quants (256-element super-blocks)
// ---------------------------------------------------------------------------------------------

// Packs 8 six-bit scales and mins into Q4_K/Q5_K's 12 bytes: byte j (j < 4) = sc[j] | top two
// bits of sc[j+4] in bits 6-7; byte 4+j = m[j] | top two bits of m[j+4]; byte 8+j = low 4 bits
// of sc[j+4] | low 4 bits of m[j+4] << 4.
void pack_k4_scales(uint8_t* s, const int* sc, const int* m) {
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

// Q4_K (144 bytes): f16 d, f16 dmin, scales[12], qs[128]. Sub-block u (32 elements, u = 0..7)
// element l lives in qs[32 * (u / 2) + l], low nibble for even u, high for odd u.
// Value d * sc[u] * q - dmin * m[u].
TEST(QuantDequant, Q4_K) {
  const uint16_t dbits[2] = {kH_0_5, kH_1_5};
  const uint16_t mbits[2] = {kH_0_25, kH_m0_125};
  const float dval[2] = {0.5f, 1.5f};
  const float mval[2] = {0.25f, -0.125f};
  Lcg rng{16};
  std::vector<uint8_t> buf(2 * 144, 0);
  std::vector<float> want(512);
  for (int b = 0; b < 2; ++b) {
    uint8_t* blk = &buf[b * 144];
    // Block 0: values >= 16 and >= 32 in sub-blocks 4..7 exercise the split high bits.
    int sc[8] = {1, 63, 17, 40, 58, 12, 33, 32};
    int m[8] = {5, 6, 63, 0, 25, 43, 48, 15};
    if (b == 1) {
      for (int u = 0; u < 8; ++u) {
        sc[u] = rng.range(0, 63);
        m[u] = rng.range(0, 63);
      }
    }
    put_u16(buf, b * 144, dbits[b]);
    put_u16(buf, b * 144 + 2, mbits[b]);
    pack_k4_scales(blk + 4, sc, m);
    for (int i = 0; i < 256; ++i) {
      const int u = i / 32, l = i % 32;
      const int q = rng.range(0, 15);
      blk[16 + 32 * (u / 2) + l] |= static_cast<uint8_t>(u % 2 == 0 ? q : q << 4);
      want[b * 256 + i] =
          dval[b] * static_cast<float>(sc[u] * q) - mval[b] * static_cast<float>(m[u]);
    }
  }
  expect_all_eq(deq(TensorType::Q4_K, buf, 512), want);
}

// Scale bytes set by hand; every qs byte 0x3A (low nibble 10, high nibble 3), d = 1, dmin = 0.5.
std::vector<uint8_t> k4_hand_scales() {
  return {0xC1, 0x02, 0x43, 0x84, 0x45, 0x86, 0xC7, 0x08, 0x9A, 0xBC, 0xDE, 0xF0};
}

TEST(QuantDequant, Q4_KScalePackingByHand) {
  std::vector<uint8_t> buf(144, 0);
  put_u16(buf, 0, kH_1);
  put_u16(buf, 2, kH_0_5);
  const auto s = k4_hand_scales();
  std::copy(s.begin(), s.end(), buf.begin() + 4);
  for (int i = 0; i < 128; ++i) buf[16 + i] = 0x3A;
  const auto got = deq(TensorType::Q4_K, buf, 256);
  // u = 0: sc = 0xC1 & 63 = 1, m = 0x45 & 63 = 5; low nibble 10 -> 1*10 - 0.5*5 = 7.5
  EXPECT_EQ(got[0], 7.5f);
  EXPECT_EQ(got[31], 7.5f);
  // u = 1: sc = 0x02 & 63 = 2, m = 0x86 & 63 = 6; high nibble 3 -> 6 - 3 = 3
  EXPECT_EQ(got[32], 3.0f);
  // u = 4: sc = (s[8] & 0xF) | (s[0] >> 6) << 4 = 0xA | 3 << 4 = 58,
  //        m = (s[8] >> 4) | (s[4] >> 6) << 4 = 0x9 | 1 << 4 = 25; low nibble -> 580 - 12.5
  EXPECT_EQ(got[128], 567.5f);
  // u = 5: sc = (s[9] & 0xF) | (s[1] >> 6) << 4 = 12, m = 0xB | (s[5] >> 6) << 4 = 11 + 32 = 43;
  //        high nibble 3 -> 36 - 21.5
  EXPECT_EQ(got[160], 14.5f);
  // u = 6: sc = 0xE | (0x43 >> 6) << 4 = 14 + 16 = 30, m = 0xD | (0xC7 >> 6) << 4 = 13 + 48 = 61;
  //        low nibble 10 -> 300 - 30.5
  EXPECT_EQ(got[192], 269.5f);
  // u = 7: sc = 0x0 | (0x84 >> 6) << 4 = 32, m = 0xF | (0x08 >> 6) << 4 = 15; high nibble 3
  //        -> 96 - 7.5
  EXPECT_EQ(got[255], 88.5f);
}

// Q5_K (176 bytes): f16 d, f16 dmin, scales[12], qh[32], qs[128]. As Q4_K, plus bit 4 of
// element l of sub-block u in bit u of qh[l].
TEST(QuantDequant, Q5_K) {
  const uint16_t dbits[2] = {kH_0_25, kH_0_75};
  const uint16_t mbits[2] = {kH_0_5, kH_m0_25};
  const float dval[2] = {0.25f, 0.75f};
  const float mval[2] = {0.5f, -0.25f};
  Lcg rng{17};
  std::vector<uint8_t> buf(2 * 176, 0);
  std::vector<float> want(512);
  for (int b = 0; b < 2; ++b) {
    uint8_t* blk = &buf[b * 176];
    int sc[8] = {63, 2, 40, 17, 33, 61, 16, 48};
    int m[8] = {0, 63, 31, 32, 47, 1, 62, 20};
    if (b == 1) {
      for (int u = 0; u < 8; ++u) {
        sc[u] = rng.range(0, 63);
        m[u] = rng.range(0, 63);
      }
    }
    put_u16(buf, b * 176, dbits[b]);
    put_u16(buf, b * 176 + 2, mbits[b]);
    pack_k4_scales(blk + 4, sc, m);
    for (int i = 0; i < 256; ++i) {
      const int u = i / 32, l = i % 32;
      const int q = rng.range(0, 31);
      blk[48 + 32 * (u / 2) + l] |= static_cast<uint8_t>(u % 2 == 0 ? (q & 15) : (q & 15) << 4);
      if (q & 16) blk[16 + l] |= static_cast<uint8_t>(1u << u);
      want[b * 256 + i] =
          dval[b] * static_cast<float>(sc[u] * q) - mval[b] * static_cast<float>(m[u]);
    }
  }
  expect_all_eq(deq(TensorType::Q5_K, buf, 512), want);
}

TEST(QuantDequant, Q5_KHighBitsByHand) {
  std::vector<uint8_t> buf(176, 0);
  put_u16(buf, 0, kH_1);
  put_u16(buf, 2, kH_0_5);
  const auto s = k4_hand_scales();  // same scales/mins as Q4_KScalePackingByHand
  std::copy(s.begin(), s.end(), buf.begin() + 4);
  buf[16 + 3] = 0x21;  // qh[3]: bits 0 and 5 -> element 3 of sub-blocks 0 and 5 get +16
  for (int i = 0; i < 128; ++i) buf[48 + i] = 0x3A;
  const auto got = deq(TensorType::Q5_K, buf, 256);
  EXPECT_EQ(got[3], 23.5f);     // u = 0: 1 * (10 + 16) - 2.5
  EXPECT_EQ(got[4], 7.5f);      // qh[4] = 0: 1 * 10 - 2.5
  EXPECT_EQ(got[35], 3.0f);     // u = 1, bit 1 of qh[3] clear: 2 * 3 - 3
  EXPECT_EQ(got[163], 206.5f);  // u = 5: 12 * (3 + 16) - 21.5
  EXPECT_EQ(got[164], 14.5f);   // u = 5, qh[4] = 0: 12 * 3 - 21.5
}

// Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], f16 d. The encoder follows the format's
// description half by half: in half h (elements 128h .. 128h+127) with ql = ql + 64h,
// qh = qh + 32h, sc = scales + 8h, for l < 32 and is = l / 16:
//   element l      : low nibble of ql[l],      bits 0-1 of qh[l], scale sc[is + 0]
//   element l + 32 : low nibble of ql[l + 32], bits 2-3 of qh[l], scale sc[is + 2]
//   element l + 64 : high nibble of ql[l],     bits 4-5 of qh[l], scale sc[is + 4]
//   element l + 96 : high nibble of ql[l + 32], bits 6-7 of qh[l], scale sc[is + 6]
// value d * scale * (q - 32), q = 6 bits.
TEST(QuantDequant, Q6_K) {
  const uint16_t dbits[2] = {kH_0_5, kH_m0_75};
  const float dval[2] = {0.5f, -0.75f};
  Lcg rng{18};
  std::vector<uint8_t> buf(2 * 210, 0);
  std::vector<float> want(512);
  for (int b = 0; b < 2; ++b) {
    uint8_t* blk = &buf[b * 210];
    put_u16(buf, b * 210 + 208, dbits[b]);
    int8_t scales[16];
    for (int i = 0; i < 16; ++i) scales[i] = static_cast<int8_t>(rng.range(-128, 127));
    scales[0] = -128;
    scales[3] = -1;
    scales[9] = 127;
    std::memcpy(blk + 192, scales, 16);
    int q[256];
    for (int i = 0; i < 256; ++i) q[i] = rng.range(0, 63);
    for (int h = 0; h < 2; ++h) {
      uint8_t* ql = blk + 64 * h;
      uint8_t* qh = blk + 128 + 32 * h;
      const int8_t* sc = scales + 8 * h;
      const int* qq = q + 128 * h;
      float* w = &want[b * 256 + 128 * h];
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        ql[l] = static_cast<uint8_t>((qq[l] & 15) | ((qq[l + 64] & 15) << 4));
        ql[l + 32] = static_cast<uint8_t>((qq[l + 32] & 15) | ((qq[l + 96] & 15) << 4));
        qh[l] = static_cast<uint8_t>((qq[l] >> 4) | ((qq[l + 32] >> 4) << 2) |
                                     ((qq[l + 64] >> 4) << 4) | ((qq[l + 96] >> 4) << 6));
        w[l] = dval[b] * static_cast<float>(sc[is + 0] * (qq[l] - 32));
        w[l + 32] = dval[b] * static_cast<float>(sc[is + 2] * (qq[l + 32] - 32));
        w[l + 64] = dval[b] * static_cast<float>(sc[is + 4] * (qq[l + 64] - 32));
        w[l + 96] = dval[b] * static_cast<float>(sc[is + 6] * (qq[l + 96] - 32));
      }
    }
  }
  expect_all_eq(deq(TensorType::Q6_K, buf, 512), want);
}

TEST(QuantDequant, Q6_KByHand) {
  std::vector<uint8_t> buf(210, 0);
  put_u16(buf, 208, kH_0_5);
  auto sc = [&](int i, int v) { buf[192 + i] = static_cast<uint8_t>(static_cast<int8_t>(v)); };
  sc(0, 2);
  sc(2, -3);
  sc(4, 4);
  sc(6, -1);
  sc(9, -128);
  sc(13, 127);
  buf[5] = 0xA3;         // ql[5]
  buf[37] = 0x5F;        // ql[37]
  buf[128 + 5] = 0x9C;   // qh[5] = 10 01 11 00b
  buf[64 + 20] = 0x07;   // ql[84]: second half, l = 20
  buf[128 + 52] = 0x02;  // qh[52]: second half, l = 20
  const auto got = deq(TensorType::Q6_K, buf, 256);
  // Element 5: low 3, high bits (0x9C >> 0) & 3 = 0 -> q = 3 - 32 = -29; scale[0] = 2.
  EXPECT_EQ(got[5], -29.0f);  // 0.5 * 2 * -29
  // Element 37: ql[37] low = 15, (0x9C >> 2) & 3 = 3 -> q = 63 - 32 = 31; scale[2] = -3.
  EXPECT_EQ(got[37], -46.5f);
  // Element 69: ql[5] high = 10, (0x9C >> 4) & 3 = 1 -> q = 26 - 32 = -6; scale[4] = 4.
  EXPECT_EQ(got[69], -12.0f);
  // Element 101: ql[37] high = 5, (0x9C >> 6) & 3 = 2 -> q = 37 - 32 = 5; scale[6] = -1.
  EXPECT_EQ(got[101], -2.5f);
  // Element 148 (half 1, l = 20): ql[84] low = 7, qh[52] & 3 = 2 -> q = 39 - 32 = 7;
  // scale[8 + 20/16] = scale[9] = -128.
  EXPECT_EQ(got[148], -448.0f);
  // Element 212 (half 1, l = 20, third quarter): ql[84] high = 0, (qh[52] >> 4) & 3 = 0
  // -> q = -32; scale[8 + 1 + 4] = scale[13] = 127.
  EXPECT_EQ(got[212], -2032.0f);
  // Element 21: nothing set -> q = -32, scale[1] = 0.
  EXPECT_EQ(got[21], 0.0f);
  // Element 0: q = -32, scale[0] = 2 -> -32.
  EXPECT_EQ(got[0], -32.0f);
}

// Q8_K (292 bytes): f32 d, int8 qs[256], int16 bsums[16]; value d * q (bsums unused).
TEST(QuantDequant, Q8_K) {
  const float dval[2] = {0.75f, -0.0625f};
  Lcg rng{19};
  std::vector<uint8_t> buf(2 * 292, 0);
  std::vector<float> want(512);
  for (int b = 0; b < 2; ++b) {
    put_f32(buf, b * 292, dval[b]);
    for (int i = 0; i < 256; ++i) {
      int q = rng.range(-128, 127);
      if (i == 7) q = -128;
      buf[b * 292 + 4 + i] = static_cast<uint8_t>(static_cast<int8_t>(q));
      want[b * 256 + i] = dval[b] * static_cast<float>(q);
    }
    for (int i = 0; i < 32; ++i) buf[b * 292 + 260 + i] = static_cast<uint8_t>(0xA5 ^ i);  // junk
  }
  const auto got = deq(TensorType::Q8_K, buf, 512);
  expect_all_eq(got, want);
  EXPECT_EQ(got[7], -96.0f);  // 0.75 * -128
  EXPECT_EQ(got[256 + 7], 8.0f);
}

// ---------------------------------------------------------------------------------------------
// Quantisation round trips
// ---------------------------------------------------------------------------------------------

std::vector<float> test_data(uint32_t seed, int n, float scale) {
  Lcg rng{seed};
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = rng.uniform(-scale, scale);
  return x;
}

TEST(QuantRoundTrip, Q8_0WithinHalfStep) {
  auto x = test_data(21, 32 * 6, 3.0f);
  for (int i = 32; i < 64; ++i) x[i] = 0.0f;     // block 1: all zero
  x[70] = -9.0f;                                 // block 2: negative extreme
  for (int i = 96; i < 128; ++i) x[i] *= 1e-3f;  // block 3: small values
  x[130] = 1000.0f;                              // block 4: one outlier
  const auto bytes = gg::quantize(TensorType::Q8_0, x.data(), static_cast<int64_t>(x.size()));
  ASSERT_EQ(bytes.size(), 6u * 34u);
  std::vector<float> y(x.size());
  gg::dequantize_row(TensorType::Q8_0, bytes.data(), y.data(), static_cast<int64_t>(y.size()));
  for (int b = 0; b < 6; ++b) {
    float amax = 0;
    int imax = 0;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(x[b * 32 + j]) > amax) {
        amax = std::fabs(x[b * 32 + j]);
        imax = j;
      }
    }
    const uint16_t dh = get_u16(bytes, b * 34);
    EXPECT_EQ(dh, gg::f32_to_f16(amax / 127.0f)) << "block " << b;
    const float d = gg::f16_to_f32(dh);
    for (int j = 0; j < 32; ++j) {
      const int i = b * 32 + j;
      EXPECT_LE(std::fabs(y[i] - x[i]), d / 2 * (1 + 1e-5f) + 1e-30f) << "element " << i;
      EXPECT_EQ(y[i], static_cast<float>(static_cast<int8_t>(bytes[b * 34 + 2 + j])) * d);
    }
    if (amax > 0) {
      const int q = static_cast<int8_t>(bytes[b * 34 + 2 + imax]);
      EXPECT_EQ(std::abs(q), 127) << "block " << b;
    }
  }
  for (int i = 32; i < 64; ++i) EXPECT_EQ(y[i], 0.0f);
}

// Q4_0 round trip: elements with x/d <= 7.5 are within d/2; those beyond clamp to q = 15, i.e.
// decode to 7d, within |d| of x. The element of largest magnitude decodes to -8d.
TEST(QuantRoundTrip, Q4_0WithinHalfStepExceptClamp) {
  auto x = test_data(22, 32 * 5, 2.0f);
  x[5] = -4.0f;  // block 0: negative max
  x[40] = 4.0f;  // block 1: positive max, and its negation clamps
  x[41] = -4.0f;
  for (int i = 64; i < 96; ++i) x[i] = 0.0f;
  const auto bytes = gg::quantize(TensorType::Q4_0, x.data(), static_cast<int64_t>(x.size()));
  ASSERT_EQ(bytes.size(), 5u * 18u);
  std::vector<float> y(x.size());
  gg::dequantize_row(TensorType::Q4_0, bytes.data(), y.data(), static_cast<int64_t>(y.size()));
  int clamped = 0;
  for (int b = 0; b < 5; ++b) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(x[b * 32 + j]) > amax) {
        amax = std::fabs(x[b * 32 + j]);
        max = x[b * 32 + j];
      }
    }
    const uint16_t dh = get_u16(bytes, b * 18);
    EXPECT_EQ(dh, gg::f32_to_f16(max / -8.0f)) << "block " << b;
    const float d = gg::f16_to_f32(dh);
    const float ad = std::fabs(d);
    for (int j = 0; j < 32; ++j) {
      const int i = b * 32 + j;
      if (d != 0 && x[i] / d > 7.5f) {
        ++clamped;
        EXPECT_EQ(y[i], 7.0f * d) << "element " << i;
        EXPECT_LE(std::fabs(y[i] - x[i]), ad * (1 + 1e-5f)) << "element " << i;
      } else {
        EXPECT_LE(std::fabs(y[i] - x[i]), ad / 2 * (1 + 1e-5f) + 1e-30f) << "element " << i;
      }
      if (x[i] == max && amax > 0) {
        EXPECT_EQ(y[i], -8.0f * d) << "element " << i;
      }
    }
  }
  EXPECT_GE(clamped, 1);
  EXPECT_EQ(y[5], -4.0f);   // d = 0.5 exactly, q = 0
  EXPECT_EQ(y[40], 4.0f);   // d = -0.5, q = 0
  EXPECT_EQ(y[41], -3.5f);  // 8 / d would be q = 16: clamped to 15 -> 7 * -0.5
  for (int i = 64; i < 96; ++i) EXPECT_EQ(y[i], 0.0f);
}

TEST(QuantRoundTrip, Q4_0ByHand) {
  // max = -8 -> d = 1; q = min(15, trunc(x + 8.5)).
  std::vector<float> x(32, 0.0f);
  x[0] = -8.0f;   // q = 0  -> -8
  x[1] = 8.0f;    // q = 16 -> clamped 15 -> 7
  x[2] = 7.6f;    // q = 16 -> 15 -> 7
  x[3] = 7.4f;    // q = 15 -> 7
  x[4] = 3.2f;    // q = 11 -> 3
  x[5] = -3.5f;   // 5.0 -> q = 5 -> -3 (halfway rounds up)
  x[6] = 2.5f;    // 11.0 -> q = 11 -> 3
  x[16] = -0.4f;  // 8.1 -> q = 8 -> 0 (high nibble of byte 0)
  x[17] = -0.6f;  // 7.9 -> q = 7 -> -1
  const auto bytes = gg::quantize(TensorType::Q4_0, x.data(), 32);
  ASSERT_EQ(bytes.size(), 18u);
  EXPECT_EQ(get_u16(bytes, 0), kH_1);
  EXPECT_EQ(bytes[2], 0x80);  // element 0: q = 0 (low), element 16: q = 8 (high)
  EXPECT_EQ(bytes[3], 0x7F);  // element 1: 15, element 17: 7
  std::vector<float> y(32);
  gg::dequantize_row(TensorType::Q4_0, bytes.data(), y.data(), 32);
  const float want[] = {-8, 7, 7, 7, 3, -3, 3};
  for (int i = 0; i < 7; ++i) EXPECT_EQ(y[i], want[i]) << "element " << i;
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[17], -1.0f);
}

TEST(QuantRoundTrip, Q8_0ByHand) {
  // max |x| = 127 -> d = 1 exactly; q = round(x).
  std::vector<float> x(32, 0.0f);
  x[0] = -127.0f;
  x[1] = 2.5f;     // rounds away from zero: 3
  x[2] = -2.4f;    // -2
  x[31] = 100.6f;  // 101
  const auto bytes = gg::quantize(TensorType::Q8_0, x.data(), 32);
  EXPECT_EQ(get_u16(bytes, 0), kH_1);
  EXPECT_EQ(static_cast<int8_t>(bytes[2 + 0]), -127);
  EXPECT_EQ(static_cast<int8_t>(bytes[2 + 1]), 3);
  EXPECT_EQ(static_cast<int8_t>(bytes[2 + 2]), -2);
  EXPECT_EQ(static_cast<int8_t>(bytes[2 + 31]), 101);
}

// Round trips of the types quantize_row writes by plain round to nearest (quant.cpp states each
// rule); every bound below follows from the rule, with the stored (f16) scales read back from
// the bytes, and a mean-error check that the grid is actually used (uniform data: an element
// is off by step/4 on average; we allow 0.3 · the mean step).
std::vector<float> round_trip_data(uint64_t seed, int64_t n) {
  auto x = test_data(seed, n, 2.0f);
  for (int i = 32; i < 64; ++i) x[i] = 0.0f;                   // an all-zero (sub-)block
  for (int i = 64; i < 96; ++i) x[i] = -std::fabs(x[i]) - 1;   // all negative
  for (int i = 96; i < 128; ++i) x[i] *= 1e-3f;                // small beside large neighbours
  x[300] = 9.0f;                                               // an outlier
  return x;
}

TEST(QuantRoundTrip, Q5_0WithinHalfStepExceptClamp) {
  const auto x = round_trip_data(31, 32 * 12);
  const auto bytes = gg::quantize(TensorType::Q5_0, x.data(), static_cast<int64_t>(x.size()));
  ASSERT_EQ(bytes.size(), 12u * 22u);
  std::vector<float> y(x.size());
  gg::dequantize_row(TensorType::Q5_0, bytes.data(), y.data(), static_cast<int64_t>(y.size()));
  for (int b = 0; b < 12; ++b) {
    const float d = gg::f16_to_f32(get_u16(bytes, b * 22)), ad = std::fabs(d);
    for (int j = 0; j < 32; ++j) {
      const int i = b * 32 + j;
      // Elements beyond 15.5 steps clamp to q = 31 (value 15 d), within |d| of x.
      const float bound = d != 0 && x[i] / d > 15.5f ? ad : ad / 2;
      EXPECT_LE(std::fabs(y[i] - x[i]), bound * (1 + 1e-5f) + 1e-30f) << "element " << i;
    }
  }
  for (int i = 32; i < 64; ++i) EXPECT_EQ(y[i], 0.0f);
  EXPECT_EQ(y[300], 9.0f);  // the block's max encodes exactly as -16 d
}

TEST(QuantRoundTrip, Q5_1WithinHalfStep) {
  const auto x = round_trip_data(32, 32 * 12);
  const auto bytes = gg::quantize(TensorType::Q5_1, x.data(), static_cast<int64_t>(x.size()));
  ASSERT_EQ(bytes.size(), 12u * 24u);
  std::vector<float> y(x.size());
  gg::dequantize_row(TensorType::Q5_1, bytes.data(), y.data(), static_cast<int64_t>(y.size()));
  for (int b = 0; b < 12; ++b) {
    const float d = gg::f16_to_f32(get_u16(bytes, b * 24)), m = gg::f16_to_f32(get_u16(bytes, b * 24 + 2));
    const float lo = *std::min_element(x.begin() + 32 * b, x.begin() + 32 * b + 32);
    for (int j = 0; j < 32; ++j) {
      const int i = b * 32 + j;
      // d / 2, plus how far the stored m moved from the block's minimum.
      EXPECT_LE(std::fabs(y[i] - x[i]), d / 2 * (1 + 1e-4f) + std::fabs(m - lo) + 1e-30f)
          << "element " << i;
    }
  }
  for (int i = 32; i < 64; ++i) EXPECT_EQ(y[i], 0.0f);
}

// Q4_K / Q5_K: sub-block u covers [lo_u, hi_u] (lo_u = min(0, min x)) with step_u =
// (hi_u - lo_u) / levels. The stored grid is -o + e q (q = 0..levels) with e = d · sc, o =
// dmin · mn, |e - step_u| <= d / 2 and |o + lo_u| <= dmin / 2 (6-bit rounding; the f16 d is
// within 2^-11 of max step / 63, so sc never clamps by more). Inside the grid an element is
// within e / 2; below it within dmin / 2; above it within dmin / 2 + levels · d / 2. So
// |y - x| <= step_u / 2 + d / 4 + dmin / 2 + levels · d / 2.
void check_k4_round_trip(TensorType t, int levels, int bytes_per) {
  const int nsb = 4;
  const auto x = round_trip_data(33 + levels, 256 * nsb);
  const auto bytes = gg::quantize(t, x.data(), static_cast<int64_t>(x.size()));
  ASSERT_EQ(bytes.size(), static_cast<size_t>(nsb * bytes_per));
  std::vector<float> y(x.size());
  gg::dequantize_row(t, bytes.data(), y.data(), static_cast<int64_t>(y.size()));
  double err_sum = 0, step_sum = 0;
  for (int sb = 0; sb < nsb; ++sb) {
    const double d = gg::f16_to_f32(get_u16(bytes, sb * bytes_per));
    const double dmin = gg::f16_to_f32(get_u16(bytes, sb * bytes_per + 2));
    for (int u = 0; u < 8; ++u) {
      const auto first = x.begin() + 256 * sb + 32 * u;
      const double lo = std::min(0.0f, *std::min_element(first, first + 32));
      const double hi = *std::max_element(first, first + 32);
      const double step = (hi - lo) / levels;
      const double bound = step / 2 + d / 4 + dmin / 2 + levels * d / 2;
      for (int l = 0; l < 32; ++l) {
        const int i = 256 * sb + 32 * u + l;
        const double err = std::fabs(double{y[i]} - x[i]);
        EXPECT_LE(err, bound * (1 + 1e-4) + 1e-30) << gg::type_name(t) << " element " << i;
        err_sum += err;
        step_sum += step;
      }
    }
  }
  EXPECT_LE(err_sum, 0.3 * step_sum) << gg::type_name(t);
  for (int i = 32; i < 64; ++i) EXPECT_EQ(y[i], 0.0f) << gg::type_name(t);
}

TEST(QuantRoundTrip, Q4_KWithinDerivedBound) {
  check_k4_round_trip(TensorType::Q4_K, 15, 144);
}

TEST(QuantRoundTrip, Q5_KWithinDerivedBound) {
  check_k4_round_trip(TensorType::Q5_K, 31, 176);
}

// Q6_K: sub-block t of 16 has scale_t = max_t / -32 (max_t its element of largest magnitude),
// stored as e = d · sc with |e - scale_t| <= d / 2. Elements within the grid are within |e| / 2;
// those past 31.5 steps clamp to 31 e, within |e| + 32 |scale_t - e| <= |e| + 16 d; those past
// -32.5 steps are within 32 |scale_t - e| <= 16 d. So |y - x| <= |scale_t| + d / 2 + 16 d.
TEST(QuantRoundTrip, Q6_KWithinDerivedBound) {
  const int nsb = 4;
  const auto x = round_trip_data(36, 256 * nsb);
  const auto bytes = gg::quantize(TensorType::Q6_K, x.data(), static_cast<int64_t>(x.size()));
  ASSERT_EQ(bytes.size(), static_cast<size_t>(nsb * 210));
  std::vector<float> y(x.size());
  gg::dequantize_row(TensorType::Q6_K, bytes.data(), y.data(), static_cast<int64_t>(y.size()));
  double err_sum = 0, step_sum = 0;
  for (int sb = 0; sb < nsb; ++sb) {
    const double d = gg::f16_to_f32(get_u16(bytes, sb * 210 + 208));
    for (int t = 0; t < 16; ++t) {
      double amax = 0;
      for (int j = 0; j < 16; ++j) amax = std::max(amax, std::fabs(double{x[256 * sb + 16 * t + j]}));
      const double scale = amax / 32;
      for (int j = 0; j < 16; ++j) {
        const int i = 256 * sb + 16 * t + j;
        const double err = std::fabs(double{y[i]} - x[i]);
        EXPECT_LE(err, (scale + 16.5 * d) * (1 + 1e-4) + 1e-30) << "element " << i;
        err_sum += err;
        step_sum += scale;
      }
    }
  }
  EXPECT_LE(err_sum, 0.3 * step_sum);
  for (int i = 32; i < 64; ++i) EXPECT_EQ(y[i], 0.0f);
}

TEST(QuantRoundTrip, FloatTypesExactOnRepresentableValues) {
  const std::vector<float> f16_ok = {1.0f,
                                     -2.0f,
                                     0.5f,
                                     65504.0f,
                                     std::ldexp(1.0f, -24),
                                     -1.599609375f * 0.0625f /* 0xAE66 */,
                                     3.140625f,
                                     0.0f,
                                     -1024.0f};
  for (TensorType t : {TensorType::F16, TensorType::F32}) {
    const auto bytes = gg::quantize(t, f16_ok.data(), static_cast<int64_t>(f16_ok.size()));
    ASSERT_EQ(bytes.size(), gg::bytes_for(t, static_cast<int64_t>(f16_ok.size())));
    expect_all_eq(deq(t, bytes, static_cast<int64_t>(f16_ok.size())), f16_ok);
  }
  const std::vector<float> bf16_ok = {
      1.0f, -2.0f, 3.140625f, std::ldexp(1.0f, 100), -std::ldexp(1.5f, -100), 0.0f, 65536.0f};
  const auto bytes = gg::quantize(TensorType::BF16, bf16_ok.data(), 7);
  expect_all_eq(deq(TensorType::BF16, bytes, 7), bf16_ok);
  // Little-endian storage.
  const float one = 1.0f;
  EXPECT_EQ(gg::quantize(TensorType::F16, &one, 1), (std::vector<uint8_t>{0x00, 0x3C}));
  EXPECT_EQ(gg::quantize(TensorType::BF16, &one, 1), (std::vector<uint8_t>{0x80, 0x3F}));
  EXPECT_EQ(gg::quantize(TensorType::F32, &one, 1), (std::vector<uint8_t>{0x00, 0x00, 0x80, 0x3F}));
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

void expect_error_mentions(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no fastkv::Error thrown";
  } catch (const fastkv::Error& e) {
    for (const auto& p : parts) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message '" << e.what() << "' lacks '" << p << "'";
    }
  }
}

TEST(QuantErrors, UnsupportedDequantTypeNamesIt) {
  std::vector<uint8_t> buf(4096, 0);
  std::vector<float> out(256);
  for (TensorType t : {TensorType::Q8_1, TensorType::Q2_K, TensorType::Q3_K, TensorType::IQ2_XXS,
                       TensorType::IQ4_NL, TensorType::IQ4_XS, TensorType::I8, TensorType::I32,
                       TensorType::I64, TensorType::F64, TensorType::IQ1_M}) {
    const std::string name = gg::type_name(t);
    const int64_t n = t == TensorType::Q8_1 || t == TensorType::IQ4_NL ? 32 : 256;
    expect_error_mentions([&] { gg::dequantize_row(t, buf.data(), out.data(), n); },
                          {"dequantisation of tensor type " + name + " is not supported"});
  }
  expect_error_mentions(
      [&] { gg::dequantize_row(static_cast<TensorType>(99), buf.data(), out.data(), 1); },
      {"type99", "not supported"});
}

TEST(QuantErrors, UnsupportedQuantTypeNamesIt) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> buf(4096);
  for (TensorType t :
       {TensorType::Q4_1, TensorType::Q2_K, TensorType::Q8_1, TensorType::Q8_K, TensorType::I32}) {
    const std::string name = gg::type_name(t);
    expect_error_mentions([&] { gg::quantize_row(t, x.data(), buf.data(), 256); }, {name});
    expect_error_mentions([&] { gg::quantize(t, x.data(), 256); }, {name});
  }
}

TEST(QuantErrors, BadElementCountThrows) {
  std::vector<uint8_t> buf(4096, 0);
  std::vector<float> out(512, 0.0f);
  EXPECT_THROW(gg::dequantize_row(TensorType::Q4_0, buf.data(), out.data(), 33), fastkv::Error);
  EXPECT_THROW(gg::dequantize_row(TensorType::Q8_0, buf.data(), out.data(), 16), fastkv::Error);
  EXPECT_THROW(gg::dequantize_row(TensorType::Q6_K, buf.data(), out.data(), 128), fastkv::Error);
  EXPECT_THROW(gg::dequantize_row(TensorType::Q4_K, buf.data(), out.data(), 288), fastkv::Error);
  EXPECT_THROW(gg::dequantize_row(TensorType::F16, buf.data(), out.data(), -1), fastkv::Error);
  EXPECT_THROW(gg::quantize_row(TensorType::Q8_0, out.data(), buf.data(), 31), fastkv::Error);
  EXPECT_THROW(gg::quantize(TensorType::Q4_0, out.data(), 48), fastkv::Error);
  EXPECT_THROW(gg::quantize(TensorType::F32, out.data(), -4), fastkv::Error);
  // n = 0 is a valid (empty) row.
  EXPECT_NO_THROW(gg::dequantize_row(TensorType::Q6_K, buf.data(), out.data(), 0));
  EXPECT_TRUE(gg::quantize(TensorType::Q8_0, out.data(), 0).empty());
}

}  // namespace
