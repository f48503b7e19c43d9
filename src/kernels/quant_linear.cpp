#include "kernels/quant_linear.h"

#include <cblas.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "common/aligned.h"
#include "common/error.h"
#include "kernels/gemm_onednn.h"
#include "kernels/onednn_engine.h"
#include "kernels/parallel.h"
#include "kernels/vec.h"

#include "kernels/avx512_intrinsics.h"

namespace fastkv::kernels {
namespace {

constexpr int kBlock = 32;  // weights (and activations) per block

// IEEE half -> float (exact: every f16 value is an f32 value).
float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal: value = mant · 2^-24; normalise the mantissa.
    int e = 127 - 15 + 1;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float rd_f16(const uint8_t* p) {
  return f16_to_f32(static_cast<uint16_t>(p[0] | (static_cast<uint16_t>(p[1]) << 8)));
}

uint32_t rd_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// ---- Block layouts (quant_linear.h has the formulas; docs/gguf.md the table) ----------------

// The 5-bit quant of element j (0..31) of a Q5_0 / Q5_1 block: nibble | (bit j of qh) << 4.
inline int q5_quant(const uint8_t* qs, uint32_t qh, int j) {
  const int nib = j < 16 ? (qs[j] & 0xF) : (qs[j - 16] >> 4);
  return nib | static_cast<int>(((qh >> j) & 1u) << 4);
}

// Scale sc and min mn (6 bits each) of sub-block u (0..7) of a Q4_K / Q5_K super-block, from
// its 12 packed bytes s: bytes 0..3 hold sc[0..3] in their low 6 bits and the top 2 bits of
// sc[4..7] in bits 6..7; bytes 4..7 the same for the mins; bytes 8..11 hold the low 4 bits of
// sc[4..7] (low nibble) and mn[4..7] (high nibble).
inline void k4_scale_min(const uint8_t* s, int u, int& sc, int& mn) {
  if (u < 4) {
    sc = s[u] & 63;
    mn = s[u + 4] & 63;
  } else {
    sc = (s[u + 4] & 0xF) | ((s[u - 4] >> 6) << 4);
    mn = (s[u + 4] >> 4) | ((s[u] >> 6) << 4);
  }
}

// The unsigned quant of element l (0..31) of sub-block u (0..7) of a Q4_K (qh null) or Q5_K
// super-block: sub-block 2g reads the low and 2g+1 the high nibbles of qs[32g .. 32g+31]; Q5_K's
// fifth bit (16) is bit u of qh[l].
inline int k4_quant(const uint8_t* qs, const uint8_t* qh, int u, int l) {
  const uint8_t byte = qs[32 * (u / 2) + l];
  const int nib = u % 2 == 0 ? (byte & 0xF) : (byte >> 4);
  return qh == nullptr ? nib : nib | (((qh[l] >> u) & 1) << 4);
}

// The 6-bit quant (0..63) of element i (0..255) of a Q6_K super-block { ql[128] @0; qh[64] @128 }:
// half h = i / 128, and within it k = (i % 128) / 32, l = i % 32: the low 4 bits are the low
// (k < 2) or high (k >= 2) nibble of ql[64h + 32 (k & 1) + l], the high 2 bits are bits 2k, 2k+1
// of qh[32h + l].
inline int q6k_quant(const uint8_t* blk, int i) {
  const int h = i / 128, k = (i % 128) / 32, l = i % 32;
  const uint8_t lbyte = blk[64 * h + 32 * (k & 1) + l];
  const int low = k < 2 ? (lbyte & 0xF) : (lbyte >> 4);
  const int high = (blk[128 + 32 * h + l] >> (2 * k)) & 3;
  return low | (high << 4);
}

// ---- Activations quantised to q8 blocks ------------------------------------------------------

// One activation row as the row dot kernels read it (nb = in / 32 blocks, nb_pad = nb rounded
// up to even; everything past nb is zero):
struct ActRow {
  const int8_t* q;       // [nb_pad · 32] round(x / s) per block of 32
  const float* s;        // [nb_pad] block scales s = max|x| / 127 (0 for an all-zero block)
  const float* sum;      // [nb_pad] s · sum of the block's q (the min terms)
  const int32_t* qsum;   // [nb_pad] sum of the block's q
  const int32_t* sum16;  // [2 nb_pad] 32 · sum of q over each half block of 16 (Q6_K's -32)
  const float* s2;       // [2 nb_pad] s of the block each half block of 16 lies in
  // [nb_pad · 32] when in is a multiple of 256, else null: q with the blocks of each 256 in the
  // order 0, 2, 1, 3, 4, 6, 5, 7 (the order a Q4_K / Q5_K super-block's 64-byte halves hold
  // its sub-blocks when split into low and high nibbles).
  const int8_t* q_k4;
  // [nb / 16 · 512] when filled (multi-row calls), else null: q regrouped for the multi-row
  // AVX-512 kernels' 16-block steps (quant_dot_multi_avx512.inc, step_quants): per step s, 8
  // runs of 64 bytes, run 2g + h = elements 16 h .. 16 h + 15 of blocks 16 s + g, + 4 + g,
  // + 8 + g, + 12 + g.
  const int8_t* q_r;
};

// ---- Portable row dot products -------------------------------------------------------------

// One weight row's dot product with one activation row quantised to q8 blocks:
//   w:    the row, in / B blocks of format F
//   nb:   in / 32, the number of activation blocks
//   act:  the activations (ActRow); this code reads q, s and sum
// Every integer sum over a block or sub-block is exact; it is scaled by d (· sub-block scale)
// · sx in f32, and the min terms use xsum.
template <QuantFormat F>
float row_dot_portable(const uint8_t* w, int nb, const ActRow& act) {
  const int8_t* qx = act.q;
  const float* sx = act.s;
  const float* xsum = act.sum;
  float acc = 0;
  if constexpr (F == QuantFormat::kQ4_K || F == QuantFormat::kQ5_K) {
    constexpr int kBytes = F == QuantFormat::kQ4_K ? 144 : 176;
    for (int sb = 0; sb < nb / 8; ++sb) {
      const uint8_t* blk = w + static_cast<int64_t>(sb) * kBytes;
      const float d = rd_f16(blk), dmin = rd_f16(blk + 2);
      const uint8_t* qh = F == QuantFormat::kQ5_K ? blk + 16 : nullptr;
      const uint8_t* qs = blk + (F == QuantFormat::kQ5_K ? 48 : 16);
      for (int u = 0; u < 8; ++u) {
        const int b = 8 * sb + u;  // the activation block of sub-block u
        int sc, mn;
        k4_scale_min(blk + 4, u, sc, mn);
        int32_t s = 0;
        for (int l = 0; l < 32; ++l) s += k4_quant(qs, qh, u, l) * qx[32 * b + l];
        acc += d * static_cast<float>(sc) * sx[b] * static_cast<float>(s) -
               dmin * static_cast<float>(mn) * xsum[b];
      }
    }
  } else if constexpr (F == QuantFormat::kQ6_K) {
    for (int sb = 0; sb < nb / 8; ++sb) {
      const uint8_t* blk = w + static_cast<int64_t>(sb) * 210;
      const float d = rd_f16(blk + 208);
      const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
      for (int t = 0; t < 16; ++t) {  // sub-blocks of 16: activation block 8 sb + t / 2
        const int b = 8 * sb + t / 2;
        int32_t s = 0;
        for (int l = 0; l < 16; ++l) {
          const int i = 16 * t + l;
          s += (q6k_quant(blk, i) - 32) * qx[32 * (8 * sb) + i];
        }
        acc += d * static_cast<float>(scales[t]) * sx[b] * static_cast<float>(s);
      }
    }
  } else {
    for (int b = 0; b < nb; ++b, qx += kBlock) {
      int32_t s = 0;
      if constexpr (F == QuantFormat::kQ8_0) {
        const uint8_t* blk = w + static_cast<int64_t>(b) * 34;
        for (int j = 0; j < kBlock; ++j) s += static_cast<int8_t>(blk[2 + j]) * qx[j];
        acc += rd_f16(blk) * sx[b] * static_cast<float>(s);
      } else if constexpr (F == QuantFormat::kQ4_0) {
        const uint8_t* blk = w + static_cast<int64_t>(b) * 18;
        for (int j = 0; j < 16; ++j) {
          s += ((blk[2 + j] & 0xF) - 8) * qx[j] + ((blk[2 + j] >> 4) - 8) * qx[j + 16];
        }
        acc += rd_f16(blk) * sx[b] * static_cast<float>(s);
      } else if constexpr (F == QuantFormat::kQ4_1) {
        const uint8_t* blk = w + static_cast<int64_t>(b) * 20;
        for (int j = 0; j < 16; ++j) {
          s += (blk[4 + j] & 0xF) * qx[j] + (blk[4 + j] >> 4) * qx[j + 16];
        }
        acc += rd_f16(blk) * sx[b] * static_cast<float>(s) + rd_f16(blk + 2) * xsum[b];
      } else if constexpr (F == QuantFormat::kQ5_0) {
        const uint8_t* blk = w + static_cast<int64_t>(b) * 22;
        const uint32_t qh = rd_u32(blk + 2);
        for (int j = 0; j < kBlock; ++j) s += (q5_quant(blk + 6, qh, j) - 16) * qx[j];
        acc += rd_f16(blk) * sx[b] * static_cast<float>(s);
      } else {
        static_assert(F == QuantFormat::kQ5_1);
        const uint8_t* blk = w + static_cast<int64_t>(b) * 24;
        const uint32_t qh = rd_u32(blk + 4);
        for (int j = 0; j < kBlock; ++j) s += q5_quant(blk + 8, qh, j) * qx[j];
        acc += rd_f16(blk) * sx[b] * static_cast<float>(s) + rd_f16(blk + 2) * xsum[b];
      }
    }
  }
  return acc;
}

// Most activation rows one multi-row kernel call takes (rows_dot_portable, rows_dot).
constexpr int kMultiRows = 8;

// One weight row against n activation rows (batched decode): out[i] = row_dot_portable<F>(w, nb,
// acts[i]) for i < n (1 <= n <= kMultiRows), bit for bit: each block's (sub-block's) quants are
// unpacked once into qw, then every row takes the same exact integer sum and the same f32
// expression as row_dot_portable, block after block.
//   acts: [n] activation rows; out: [n]
template <QuantFormat F>
void rows_dot_portable(const uint8_t* w, int nb, const ActRow* acts, int n, float* out) {
  float acc[kMultiRows] = {};
  // Dots of the 32 (or 16) unpacked quants with row i's activations at offset `at`.
  auto isum = [&](const int* qw, int len, int i, int64_t at) {
    int32_t s = 0;
    for (int l = 0; l < len; ++l) s += qw[l] * acts[i].q[at + l];
    return s;
  };
  int qw[kBlock];  // the unpacked quants of one block or sub-block, offset included
  if constexpr (F == QuantFormat::kQ4_K || F == QuantFormat::kQ5_K) {
    constexpr int kBytes = F == QuantFormat::kQ4_K ? 144 : 176;
    for (int sb = 0; sb < nb / 8; ++sb) {
      const uint8_t* blk = w + static_cast<int64_t>(sb) * kBytes;
      const float d = rd_f16(blk), dmin = rd_f16(blk + 2);
      const uint8_t* qh = F == QuantFormat::kQ5_K ? blk + 16 : nullptr;
      const uint8_t* qs = blk + (F == QuantFormat::kQ5_K ? 48 : 16);
      for (int u = 0; u < 8; ++u) {
        const int b = 8 * sb + u;
        int sc, mn;
        k4_scale_min(blk + 4, u, sc, mn);
        for (int l = 0; l < 32; ++l) qw[l] = k4_quant(qs, qh, u, l);
        for (int i = 0; i < n; ++i) {
          const int32_t s = isum(qw, 32, i, 32 * b);
          acc[i] += d * static_cast<float>(sc) * acts[i].s[b] * static_cast<float>(s) -
                    dmin * static_cast<float>(mn) * acts[i].sum[b];
        }
      }
    }
  } else if constexpr (F == QuantFormat::kQ6_K) {
    for (int sb = 0; sb < nb / 8; ++sb) {
      const uint8_t* blk = w + static_cast<int64_t>(sb) * 210;
      const float d = rd_f16(blk + 208);
      const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
      for (int t = 0; t < 16; ++t) {
        const int b = 8 * sb + t / 2;
        for (int l = 0; l < 16; ++l) qw[l] = q6k_quant(blk, 16 * t + l) - 32;
        for (int i = 0; i < n; ++i) {
          const int32_t s = isum(qw, 16, i, 256 * sb + 16 * t);
          acc[i] += d * static_cast<float>(scales[t]) * acts[i].s[b] * static_cast<float>(s);
        }
      }
    }
  } else {
    constexpr int kBytes = F == QuantFormat::kQ8_0   ? 34
                           : F == QuantFormat::kQ4_0 ? 18
                           : F == QuantFormat::kQ4_1 ? 20
                           : F == QuantFormat::kQ5_0 ? 22
                                                     : 24;
    constexpr bool kMin = F == QuantFormat::kQ4_1 || F == QuantFormat::kQ5_1;
    for (int b = 0; b < nb; ++b) {
      const uint8_t* blk = w + static_cast<int64_t>(b) * kBytes;
      for (int j = 0; j < kBlock; ++j) {
        if constexpr (F == QuantFormat::kQ8_0) {
          qw[j] = static_cast<int8_t>(blk[2 + j]);
        } else if constexpr (F == QuantFormat::kQ4_0 || F == QuantFormat::kQ4_1) {
          const uint8_t byte = blk[(F == QuantFormat::kQ4_0 ? 2 : 4) + j % 16];
          qw[j] = (j < 16 ? byte & 0xF : byte >> 4) - (F == QuantFormat::kQ4_0 ? 8 : 0);
        } else if constexpr (F == QuantFormat::kQ5_0) {
          qw[j] = q5_quant(blk + 6, rd_u32(blk + 2), j) - 16;
        } else {
          qw[j] = q5_quant(blk + 8, rd_u32(blk + 4), j);
        }
      }
      for (int i = 0; i < n; ++i) {
        const int32_t s = isum(qw, kBlock, i, static_cast<int64_t>(kBlock) * b);
        if constexpr (kMin) {
          acc[i] += rd_f16(blk) * acts[i].s[b] * static_cast<float>(s) + rd_f16(blk + 2) * acts[i].sum[b];
        } else {
          acc[i] += rd_f16(blk) * acts[i].s[b] * static_cast<float>(s);
        }
      }
    }
  }
  for (int i = 0; i < n; ++i) out[i] = acc[i];
}

// dst[in] = the weights of one row of format f (in / B blocks at src).
void dequantize_row(QuantFormat f, const uint8_t* src, int in, float* dst) {
  switch (f) {
    case QuantFormat::kQ8_0:
      for (int b = 0; b < in / kBlock; ++b, src += 34, dst += kBlock) {
        const float d = rd_f16(src);
        for (int j = 0; j < kBlock; ++j)
          dst[j] = d * static_cast<float>(static_cast<int8_t>(src[2 + j]));
      }
      return;
    case QuantFormat::kQ4_0:
      for (int b = 0; b < in / kBlock; ++b, src += 18, dst += kBlock) {
        const float d = rd_f16(src);
        for (int j = 0; j < 16; ++j) {
          dst[j] = d * static_cast<float>((src[2 + j] & 0xF) - 8);
          dst[j + 16] = d * static_cast<float>((src[2 + j] >> 4) - 8);
        }
      }
      return;
    case QuantFormat::kQ4_1:
      for (int b = 0; b < in / kBlock; ++b, src += 20, dst += kBlock) {
        const float d = rd_f16(src), m = rd_f16(src + 2);
        for (int j = 0; j < 16; ++j) {
          dst[j] = d * static_cast<float>(src[4 + j] & 0xF) + m;
          dst[j + 16] = d * static_cast<float>(src[4 + j] >> 4) + m;
        }
      }
      return;
    case QuantFormat::kQ5_0:
      for (int b = 0; b < in / kBlock; ++b, src += 22, dst += kBlock) {
        const float d = rd_f16(src);
        const uint32_t qh = rd_u32(src + 2);
        for (int j = 0; j < kBlock; ++j) dst[j] = d * static_cast<float>(q5_quant(src + 6, qh, j) - 16);
      }
      return;
    case QuantFormat::kQ5_1:
      for (int b = 0; b < in / kBlock; ++b, src += 24, dst += kBlock) {
        const float d = rd_f16(src), m = rd_f16(src + 2);
        const uint32_t qh = rd_u32(src + 4);
        for (int j = 0; j < kBlock; ++j) dst[j] = d * static_cast<float>(q5_quant(src + 8, qh, j)) + m;
      }
      return;
    case QuantFormat::kQ4_K:
    case QuantFormat::kQ5_K: {
      const bool q5 = f == QuantFormat::kQ5_K;
      for (int sb = 0; sb < in / 256; ++sb, src += q5 ? 176 : 144) {
        const float d = rd_f16(src), dmin = rd_f16(src + 2);
        const uint8_t* qh = q5 ? src + 16 : nullptr;
        const uint8_t* qs = src + (q5 ? 48 : 16);
        for (int u = 0; u < 8; ++u, dst += 32) {
          int sc, mn;
          k4_scale_min(src + 4, u, sc, mn);
          const float ds = d * static_cast<float>(sc), dm = dmin * static_cast<float>(mn);
          for (int l = 0; l < 32; ++l) dst[l] = ds * static_cast<float>(k4_quant(qs, qh, u, l)) - dm;
        }
      }
      return;
    }
    case QuantFormat::kQ6_K:
      for (int sb = 0; sb < in / 256; ++sb, src += 210, dst += 256) {
        const float d = rd_f16(src + 208);
        const auto* scales = reinterpret_cast<const int8_t*>(src + 192);
        // q6k_quant's layout unrolled: run k of half h is elements 128h + 32k + [0, 32), two
        // sub-blocks of 16 with one scale each.
        for (int h = 0; h < 2; ++h) {
          const uint8_t* ql = src + 64 * h;
          const uint8_t* qh = src + 128 + 32 * h;
          for (int k = 0; k < 4; ++k) {
            const uint8_t* lb = ql + 32 * (k & 1);
            const int shift = k < 2 ? 0 : 4;
            for (int half = 0; half < 2; ++half) {
              const float ds = d * static_cast<float>(scales[8 * h + 2 * k + half]);
              float* out = dst + 128 * h + 32 * k + 16 * half;
              for (int l = 16 * half; l < 16 * half + 16; ++l) {
                const int q = ((lb[l] >> shift) & 0xF) | (((qh[l] >> (2 * k)) & 3) << 4);
                out[l - 16 * half] = ds * static_cast<float>(q - 32);
              }
            }
          }
        }
      }
      return;
  }
}

#ifdef FASTKV_AVX512_KERNELS
namespace vnni {
#define QL_VNNI 1
#include "kernels/quant_dot_avx512.inc"
#include "kernels/quant_dot_multi_avx512.inc"
#include "kernels/quant_interleaved_avx512.inc"
#undef QL_VNNI
}  // namespace vnni
namespace bw {
#define QL_VNNI 0
#include "kernels/quant_dot_avx512.inc"
#include "kernels/quant_dot_multi_avx512.inc"
#undef QL_VNNI
}  // namespace bw
#endif

#ifdef FASTKV_AVX512_KERNELS
#include "kernels/quant_dequant_avx512.inc"
#endif

bool cpu_has_avx512bw() {
#ifdef FASTKV_AVX512_KERNELS
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512vnni() {
#ifdef FASTKV_AVX512_KERNELS
  static const bool has = cpu_has_avx512bw() && __builtin_cpu_supports("avx512vnni");
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512bf16() {
#ifdef FASTKV_AVX512_KERNELS
  static const bool has = cpu_has_avx512bw() && __builtin_cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

// FASTKV_PORTABLE_KERNELS=1: the portable kernels even where AVX-512 runs (read once).
bool portable_forced() {
  static const bool forced = [] {
    const char* v = std::getenv("FASTKV_PORTABLE_KERNELS");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return forced;
}

// dst[in] = the bf16 weights of one row of `in` weights (the prefill tiles).
using RowToBf16 = void (*)(QuantFormat f, const uint8_t* row, int in, uint16_t* dst);

void row_to_bf16_portable(QuantFormat f, const uint8_t* row, int in, uint16_t* dst) {
  thread_local std::vector<float> tmp;  // [in] f32 weights of the row
  tmp.resize(static_cast<size_t>(in));
  dequantize_row(f, row, in, tmp.data());
  to_bf16(tmp.data(), 1.0f, dst, in);
}

#ifdef FASTKV_AVX512_KERNELS
// Every format straight to bf16 (quant_dequant_avx512.inc).
void row_to_bf16_avx512(QuantFormat f, const uint8_t* row, int in, uint16_t* dst) {
  switch (f) {
    case QuantFormat::kQ8_0:
      return bf16x::dequantize_row_bf16<QuantFormat::kQ8_0>(row, in, dst);
    case QuantFormat::kQ4_0:
      return bf16x::dequantize_row_bf16<QuantFormat::kQ4_0>(row, in, dst);
    case QuantFormat::kQ4_1:
      return bf16x::dequantize_row_bf16<QuantFormat::kQ4_1>(row, in, dst);
    case QuantFormat::kQ5_0:
      return bf16x::dequantize_row_bf16<QuantFormat::kQ5_0>(row, in, dst);
    case QuantFormat::kQ5_1:
      return bf16x::dequantize_row_bf16<QuantFormat::kQ5_1>(row, in, dst);
    case QuantFormat::kQ4_K:
      return bf16x::dequantize_row_bf16<QuantFormat::kQ4_K>(row, in, dst);
    case QuantFormat::kQ5_K:
      return bf16x::dequantize_row_bf16<QuantFormat::kQ5_K>(row, in, dst);
    case QuantFormat::kQ6_K:
      return bf16x::dequantize_row_bf16<QuantFormat::kQ6_K>(row, in, dst);
  }
}
#endif

// The AVX512-BF16 dequantiser where the CPU has it (and the portable kernels are not forced).
RowToBf16 pick_row_to_bf16() {
#ifdef FASTKV_AVX512_KERNELS
  if (cpu_has_avx512bf16() && !portable_forced()) return &row_to_bf16_avx512;
#endif
  return &row_to_bf16_portable;
}

// The dot of weight row w with one activation row.
using RowDot = float (*)(const uint8_t* w, int nb, const ActRow& act);
// out[i] = the row dot of w with acts[i] for i < n (1 <= n <= kMultiRows), bit for bit what
// the RowDot of the same kernel gives each row alone.
using RowsDot = void (*)(const uint8_t* w, int nb, const ActRow* acts, int n, float* out);

// The single-row and multi-row kernels of one format on one ISA.
struct DotKernels {
  RowDot one;
  RowsDot many;
};

// The kernel kAuto stands for: AVX-512 where it runs and the portable kernels are not forced.
QuantIsa resolve_isa(QuantIsa isa) {
  if (isa != QuantIsa::kAuto) return isa;
  return quant_avx512_available() && !portable_forced() ? QuantIsa::kAvx512 : QuantIsa::kPortable;
}

template <QuantFormat F>
DotKernels pick_dot_kernels(QuantIsa isa) {
  isa = resolve_isa(isa);
  if (isa == QuantIsa::kAvx512 || isa == QuantIsa::kAvx512Bw) {
#ifdef FASTKV_AVX512_KERNELS
    if (isa == QuantIsa::kAvx512 && cpu_has_avx512vnni()) return {&vnni::row_dot<F>, &vnni::rows_dot<F>};
    if (cpu_has_avx512bw()) return {&bw::row_dot<F>, &bw::rows_dot<F>};
#endif
    fail("QuantLinear: the AVX-512 kernel needs a CPU with AVX-512BW (and a GCC x86-64 build)");
  }
  return {&row_dot_portable<F>, &rows_dot_portable<F>};
}

DotKernels pick_dot_kernels(QuantFormat f, QuantIsa isa) {
  switch (f) {
    case QuantFormat::kQ8_0:
      return pick_dot_kernels<QuantFormat::kQ8_0>(isa);
    case QuantFormat::kQ4_0:
      return pick_dot_kernels<QuantFormat::kQ4_0>(isa);
    case QuantFormat::kQ4_1:
      return pick_dot_kernels<QuantFormat::kQ4_1>(isa);
    case QuantFormat::kQ5_0:
      return pick_dot_kernels<QuantFormat::kQ5_0>(isa);
    case QuantFormat::kQ5_1:
      return pick_dot_kernels<QuantFormat::kQ5_1>(isa);
    case QuantFormat::kQ4_K:
      return pick_dot_kernels<QuantFormat::kQ4_K>(isa);
    case QuantFormat::kQ5_K:
      return pick_dot_kernels<QuantFormat::kQ5_K>(isa);
    case QuantFormat::kQ6_K:
      return pick_dot_kernels<QuantFormat::kQ6_K>(isa);
  }
  fail("QuantLinear: unknown format");
}

// ---- Interleaved groups (quant_linear.h) ----------------------------------------------------

constexpr int kGroupRows = 16;

// The formats with an interleaved layout: those the VNNI group kernel reads
// (quant_interleaved_avx512.inc), all but Q5_0 / Q5_1 (no group kernel written for them).
bool interleavable(QuantFormat f) {
  return f != QuantFormat::kQ5_0 && f != QuantFormat::kQ5_1;
}

// Where a block's bytes go in a group-block (quant_linear.h, "Interleaved groups"): its `heads`
// f16 fields (d; d, m; d, dmin) at byte head_at, and its `dwords` 4-byte words of quants (with
// the K-quants' scales, Q5_K's qh) from byte quant_at on. Every byte of the block is in one of
// them: Q8_0 / Q4_0 { d } then 8 / 4 dwords; Q4_1, Q4_K, Q5_K { d, m or dmin } then 4, 35, 43
// dwords; Q6_K's d is its last 2 bytes, after 52 dwords (ql, qh, scales).
struct GroupLayout {
  int heads, head_at, quant_at, dwords;
};
GroupLayout group_layout(QuantFormat f) {
  const int bytes = quant_block_bytes(f);
  switch (f) {
    case QuantFormat::kQ8_0:
    case QuantFormat::kQ4_0:
      return {1, 0, 2, (bytes - 2) / 4};
    case QuantFormat::kQ6_K:
      return {1, bytes - 2, 0, (bytes - 2) / 4};
    default:  // Q4_1, Q4_K, Q5_K
      return {2, 0, 4, (bytes - 4) / 4};
  }
}

// 16 rows (row r at src + r · row_bytes, cols blocks each, file layout) into one group at dst
// (cols · 16 · block bytes): per block, field h of row r at 32 h + 2 r, then dword c of row r
// at 32 heads + 64 c + 4 r.
void interleave_group(QuantFormat f, const uint8_t* src, int64_t row_bytes, int cols, uint8_t* dst) {
  const int bytes = quant_block_bytes(f);
  const GroupLayout L = group_layout(f);
  for (int b = 0; b < cols; ++b) {
    uint8_t* gb = dst + static_cast<int64_t>(b) * kGroupRows * bytes;
    uint8_t* quants = gb + 2 * kGroupRows * L.heads;
    for (int r = 0; r < kGroupRows; ++r) {
      const uint8_t* blk = src + r * row_bytes + static_cast<int64_t>(b) * bytes;
      for (int h = 0; h < L.heads; ++h) {
        std::memcpy(gb + 2 * kGroupRows * h + 2 * r, blk + L.head_at + 2 * h, 2);
      }
      for (int c = 0; c < L.dwords; ++c) {
        std::memcpy(quants + 64 * c + 4 * r, blk + L.quant_at + 4 * c, 4);
      }
    }
  }
}

// Row r (0..15) of the group at g back into the file's layout at dst (cols blocks).
void deinterleave_row(QuantFormat f, const uint8_t* g, int cols, int r, uint8_t* dst) {
  const int bytes = quant_block_bytes(f);
  const GroupLayout L = group_layout(f);
  for (int b = 0; b < cols; ++b) {
    const uint8_t* gb = g + static_cast<int64_t>(b) * kGroupRows * bytes;
    const uint8_t* quants = gb + 2 * kGroupRows * L.heads;
    uint8_t* blk = dst + static_cast<int64_t>(b) * bytes;
    for (int h = 0; h < L.heads; ++h) {
      std::memcpy(blk + L.head_at + 2 * h, gb + 2 * kGroupRows * h + 2 * r, 2);
    }
    for (int c = 0; c < L.dwords; ++c) {
      std::memcpy(blk + L.quant_at + 4 * c, quants + 64 * c + 4 * r, 4);
    }
  }
}

// The interleaved kernel: out[16 i + r] = row r of the group at g dotted with acts[i], i < n
// (1..4); null where none runs (no AVX512-VNNI, or a format without the layout).
using GroupDot = void (*)(const uint8_t* g, int nb, const ActRow* acts, int n, float* out);

// pick(std::integral_constant<QuantFormat, F>{}) for the interleaved format F = f; a null
// function pointer of pick's type for any other format.
template <typename Pick>
auto for_interleaved_format(QuantFormat f, Pick pick) {
  using Fn = decltype(pick(std::integral_constant<QuantFormat, QuantFormat::kQ8_0>{}));
  switch (f) {
    case QuantFormat::kQ8_0:
      return pick(std::integral_constant<QuantFormat, QuantFormat::kQ8_0>{});
    case QuantFormat::kQ4_0:
      return pick(std::integral_constant<QuantFormat, QuantFormat::kQ4_0>{});
    case QuantFormat::kQ4_1:
      return pick(std::integral_constant<QuantFormat, QuantFormat::kQ4_1>{});
    case QuantFormat::kQ4_K:
      return pick(std::integral_constant<QuantFormat, QuantFormat::kQ4_K>{});
    case QuantFormat::kQ5_K:
      return pick(std::integral_constant<QuantFormat, QuantFormat::kQ5_K>{});
    case QuantFormat::kQ6_K:
      return pick(std::integral_constant<QuantFormat, QuantFormat::kQ6_K>{});
    default:
      return Fn{nullptr};
  }
}

GroupDot pick_group_dot(QuantFormat f) {
#ifdef FASTKV_AVX512_KERNELS
  return for_interleaved_format(f, [](auto F) -> GroupDot { return &vnni::group_dot_n<F()>; });
#else
  (void)f;
  return nullptr;
#endif
}

// Whether the dot kernels `isa` resolves to are the AVX512-VNNI ones (which read groups).
bool isa_is_vnni(QuantIsa isa) {
  return resolve_isa(isa) == QuantIsa::kAvx512 && cpu_has_avx512vnni();
}

// Activations quantised to q8 blocks, the calling thread's buffers (reused across calls; sized
// up, never down, so a decode step allocates nothing). ActRow says what each array holds.
struct QuantActs {
  int nb_pad = 0;               // blocks per row rounded up to even (the AVX-512 kernels read pairs)
  bool k4 = false;              // q_k4 filled (in % 256 == 0)
  std::vector<int8_t> q;        // [n, nb_pad · 32]
  std::vector<float> s;         // [n, nb_pad]
  std::vector<float> sum;       // [n, nb_pad]
  std::vector<int32_t> qsum;    // [n, nb_pad]
  std::vector<int32_t> sum16;   // [n, 2 nb_pad]
  std::vector<float> s2;        // [n, 2 nb_pad]
  std::vector<int8_t> q_k4;     // [n, nb_pad · 32] when k4
  bool regrouped = false;       // q_r filled
  std::vector<int8_t> q_r;      // [n, nb_pad · 32] when regrouped (ActRow::q_r, first nb / 16 · 512)

  ActRow row(int i) const {
    const size_t rq = static_cast<size_t>(nb_pad) * kBlock, rb = static_cast<size_t>(nb_pad);
    return {q.data() + i * rq,         s.data() + i * rb,         sum.data() + i * rb,
            qsum.data() + i * rb,      sum16.data() + 2 * i * rb, s2.data() + 2 * i * rb,
            k4 ? q_k4.data() + i * rq : nullptr, regrouped ? q_r.data() + i * rq : nullptr};
  }
};

template <typename T>
void grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// One block of 32: s = max|x| / 127, q = round(x / s) (to nearest even, as std::nearbyint in
// the default rounding mode) in [-127, 127], so |x - s · q| <= s / 2 (plus f32 rounding of
// x / s); returns s and sets *isum = sum of q. An all-zero block gets s = 0 and q = 0.
float quantize_block_portable(const float* x, int8_t* q, int32_t* isum) {
  float amax = 0;
  for (int j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
  *isum = 0;
  if (amax == 0) {
    std::memset(q, 0, kBlock);
    return 0.0f;
  }
  const float s = amax / 127.0f;
  for (int j = 0; j < kBlock; ++j) {
    const float v = std::nearbyint(x[j] / s);
    const int32_t qi = static_cast<int32_t>(std::clamp(v, -127.0f, 127.0f));
    q[j] = static_cast<int8_t>(qi);
    *isum += qi;
  }
  return s;
}

#ifdef FASTKV_AVX512_KERNELS
// round(v / s) clamped to [-127, 127], as int32 lanes.
__attribute__((target("avx512f,avx512bw,avx512vl"))) inline __m512i quantize16(__m512 v, __m512 s) {
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m512 r = _mm512_roundscale_ps(_mm512_div_ps(v, s), kRound);
  return _mm512_cvtps_epi32(
      _mm512_max_ps(_mm512_min_ps(r, _mm512_set1_ps(127.0f)), _mm512_set1_ps(-127.0f)));
}

// The same, bit for bit: the same f32 division and round-to-nearest-even, 16 lanes at a time.
__attribute__((target("avx512f,avx512bw,avx512vl"))) float quantize_block_avx512(
    const float* x, int8_t* q, int32_t* isum) {
  const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
  *isum = 0;
  if (amax == 0) {
    std::memset(q, 0, kBlock);
    return 0.0f;
  }
  const float s = amax / 127.0f;
  const __m512 sv = _mm512_set1_ps(s);
  const __m512i q0 = quantize16(x0, sv), q1 = quantize16(x1, sv);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtepi32_epi8(q0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtepi32_epi8(q1));
  *isum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
  return s;
}
#endif

// Quantises x [n, in] into a (every array of ActRow; q_r only where `regroup`), by the AVX-512
// block quantiser where `avx512` (same results as the portable one).
void quantize_acts(const float* x, int n, int in, bool avx512, bool regroup, QuantActs& a) {
  const int nb = in / kBlock;
  a.nb_pad = (nb + 1) & ~1;
  a.k4 = in % 256 == 0;
  a.regrouped = regroup;
  if (regroup) grow(a.q_r, n * static_cast<size_t>(a.nb_pad) * kBlock);
  const size_t rq = static_cast<size_t>(a.nb_pad) * kBlock, rb = static_cast<size_t>(a.nb_pad);
  grow(a.q, n * rq);
  grow(a.s, n * rb);
  grow(a.sum, n * rb);
  grow(a.qsum, n * rb);
  grow(a.sum16, 2 * n * rb);
  grow(a.s2, 2 * n * rb);
  if (a.k4) grow(a.q_k4, n * rq);
  float (*quantize_block)(const float*, int8_t*, int32_t*) = &quantize_block_portable;
#ifdef FASTKV_AVX512_KERNELS
  if (avx512) quantize_block = &quantize_block_avx512;
#else
  (void)avx512;
#endif
  for (int i = 0; i < n; ++i) {
    int8_t* q = a.q.data() + i * rq;
    float* s = a.s.data() + i * rb;
    float* sum = a.sum.data() + i * rb;
    int32_t* qsum = a.qsum.data() + i * rb;
    int32_t* sum16 = a.sum16.data() + 2 * i * rb;
    float* s2 = a.s2.data() + 2 * i * rb;
    for (int b = 0; b < a.nb_pad; ++b) {
      int8_t* qb = q + static_cast<size_t>(b) * kBlock;
      int32_t isum = 0;
      s[b] = b < nb ? quantize_block(x + static_cast<int64_t>(i) * in + b * kBlock, qb, &isum)
                    : (std::memset(qb, 0, kBlock), 0.0f);
      sum[b] = s[b] * static_cast<float>(isum);
      qsum[b] = isum;
      int32_t first = 0;  // sum of the first 16
      for (int j = 0; j < 16; ++j) first += qb[j];
      sum16[2 * b] = 32 * first;
      sum16[2 * b + 1] = 32 * (isum - first);
      s2[2 * b] = s2[2 * b + 1] = s[b];
    }
    if (regroup) {
      int8_t* qr = a.q_r.data() + i * rq;
      for (int st = 0; st < nb / 16; ++st) {
        for (int g = 0; g < 4; ++g) {
          for (int h = 0; h < 2; ++h) {
            for (int k = 0; k < 4; ++k) {
              std::memcpy(qr + 512 * st + 64 * (2 * g + h) + 16 * k,
                          q + static_cast<size_t>(16 * st + 4 * k + g) * kBlock + 16 * h, 16);
            }
          }
        }
      }
    }
    if (a.k4) {
      static constexpr int kOrder[8] = {0, 2, 1, 3, 4, 6, 5, 7};
      int8_t* qk = a.q_k4.data() + i * rq;
      for (int b = 0; b < nb; ++b) {
        std::memcpy(qk + static_cast<size_t>(b) * kBlock,
                    q + static_cast<size_t>(b / 8 * 8 + kOrder[b % 8]) * kBlock, kBlock);
      }
    }
  }
}

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

bool native_bf16() {
  static const bool has = cpu_has_native_bf16();
  return has;
}

}  // namespace

// oneDNN bf16 matmuls of the tile path, cached per (n, tile rows): src [n, in] bf16, weights
// [in, rows] given as the tile [rows, in] row-major (tag ba), dst [n, rows] f32 written into y
// with row stride `out`.
struct QuantLinear::Gemm {
  struct Prim {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul prim;
    dnnl::memory::desc src, wei, dst;
    uint64_t last_use = 0;  // tick of the latest get() that returned it
    // The layout the matmul reads its weights in (the plain tile where oneDNN runs the same
    // kernel on it as on its own choice, else its choice, tag::any: see get()) and the reorder
    // from the plain tile into it; no reorder when they agree.
    dnnl::memory::desc wei_blocked;
    std::optional<dnnl::reorder> to_blocked;
    // Where oneDNN's own choice (tag::any) is AMX's BA16a64b2a: that matmul, which reads the
    // tiles dequantize_rows_blocked writes straight from the interleaved groups (no plain
    // tile, no reorder, and no packing of the weights inside the matmul either).
    std::optional<dnnl::matmul::primitive_desc> amx_pd;
    std::optional<dnnl::matmul> amx;
    dnnl::memory::desc wei_amx;
  };
  // Row counts differ from prompt to prompt: keep primitives for at most this many shapes and
  // drop the least recently used, so a long-running server does not grow without end (as
  // OneDnnLinear does).
  static constexpr size_t kMaxShapes = 32;
  std::mutex mu;
  uint64_t tick = 0;
  std::map<std::pair<int, int>, std::shared_ptr<Prim>> by_shape;

  std::shared_ptr<Prim> get(int n, int rows, int in, int out) {
    std::lock_guard<std::mutex> lock(mu);
    ++tick;
    auto it = by_shape.find({n, rows});
    if (it != by_shape.end()) {
      it->second->last_use = tick;
      return it->second;
    }
    if (by_shape.size() >= kMaxShapes) {
      auto oldest = by_shape.begin();
      for (auto j = by_shape.begin(); j != by_shape.end(); ++j) {
        if (j->second->last_use < oldest->second->last_use) oldest = j;
      }
      by_shape.erase(oldest);  // a caller still holding it keeps it alive (shared_ptr)
    }
    const dnnl::memory::dim N = n, R = rows, K = in, O = out;
    dnnl::memory::desc src({N, K}, dt::bf16, tag::ab);
    dnnl::memory::desc wei({K, R}, dt::bf16, tag::ba);
    // dst: y's columns [r0, r0 + rows) with row stride out when the tile is the whole layer,
    // else a dense [n, rows] block that forward_gemm_bf16 copies into y (oneDNN 2.6 runs no AMX
    // kernel on a strided dst)
    dnnl::memory::desc dst = R == O ? dnnl::memory::desc({N, R}, dt::f32, dnnl::memory::dims{O, 1})
                                    : dnnl::memory::desc({N, R}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    // The weights as the plain tile (tag ba) when oneDNN runs the same implementation on it as
    // on the layout it would choose itself (tag::any): then no reorder is needed. On the AVX512-
    // BF16 CPU without AMX where this was measured, both are oneDNN 2.6's "gemm:jit", which packs
    // its operands itself: the reorder of a 2048 x 1024 tile into its chosen layout cost 2.5 ms
    // of CPU beside 12 ms for the matmul at n = 512 (docs/benchmarks.md), and the matmul on the
    // plain tile took the same time. Where the choices differ (AMX's brgemm wants a blocked
    // layout; on the plain tile oneDNN fell back to a kernel measured 2.8x slower there), the
    // tile is reordered into the chosen layout, one reorder per ~4 MiB tile.
    dnnl::memory::desc wei_any({K, R}, dt::bf16, tag::any);
    auto pd_any =
        dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wei_any, dst), attr, onednn_engine());
    std::optional<dnnl::matmul::primitive_desc> pd_plain;
    try {
      pd_plain.emplace(dnnl::matmul::desc(src, wei, dst), attr, onednn_engine());
    } catch (const dnnl::error&) {
      pd_plain.reset();  // no implementation takes the plain tile: reorder
    }
    const bool plain = pd_plain && (pd_any.weights_desc() == wei ||
                                    std::string(pd_plain->impl_info_str()) ==
                                        std::string(pd_any.impl_info_str()));
    const dnnl::matmul::primitive_desc& pd = plain ? *pd_plain : pd_any;
    auto p = std::make_shared<Prim>(
        Prim{pd, dnnl::matmul(pd), src, wei, dst, tick, pd.weights_desc(), std::nullopt,
             std::nullopt, std::nullopt, dnnl::memory::desc()});
    if (p->wei_blocked != wei) {
      p->to_blocked.emplace(dnnl::reorder::primitive_desc(onednn_engine(), wei, onednn_engine(),
                                                          p->wei_blocked));
    }
    const dnnl::memory::desc amx_layout({K, R}, dt::bf16, tag::BA16a64b2a);
    if (pd_any.weights_desc() == amx_layout) {
      p->amx_pd.emplace(pd_any);
      p->amx.emplace(plain ? dnnl::matmul(pd_any) : p->prim);  // p->prim is pd_any's already
      p->wei_amx = amx_layout;
    }
    by_shape.emplace(std::make_pair(n, rows), p);
    return p;
  }
  size_t cached() {
    std::lock_guard<std::mutex> lock(mu);
    return by_shape.size();
  }
};

QuantLinear::~QuantLinear() = default;
QuantLinear::QuantLinear(QuantLinear&&) noexcept = default;
QuantLinear& QuantLinear::operator=(QuantLinear&&) noexcept = default;

size_t QuantLinear::cached_gemm_shapes() const {
  return gemm_ ? gemm_->cached() : 0;
}

bool QuantLinear::gemm_uses_bf16() {
  return native_bf16();
}

const char* quant_format_name(QuantFormat f) {
  switch (f) {
    case QuantFormat::kQ8_0:
      return "Q8_0";
    case QuantFormat::kQ4_0:
      return "Q4_0";
    case QuantFormat::kQ4_1:
      return "Q4_1";
    case QuantFormat::kQ5_0:
      return "Q5_0";
    case QuantFormat::kQ5_1:
      return "Q5_1";
    case QuantFormat::kQ4_K:
      return "Q4_K";
    case QuantFormat::kQ5_K:
      return "Q5_K";
    case QuantFormat::kQ6_K:
      return "Q6_K";
  }
  return "?";
}

int quant_block_weights(QuantFormat f) {
  switch (f) {
    case QuantFormat::kQ4_K:
    case QuantFormat::kQ5_K:
    case QuantFormat::kQ6_K:
      return 256;
    default:
      return kBlock;
  }
}

int quant_block_bytes(QuantFormat f) {
  switch (f) {
    case QuantFormat::kQ8_0:
      return 34;
    case QuantFormat::kQ4_0:
      return 18;
    case QuantFormat::kQ4_1:
      return 20;
    case QuantFormat::kQ5_0:
      return 22;
    case QuantFormat::kQ5_1:
      return 24;
    case QuantFormat::kQ4_K:
      return 144;
    case QuantFormat::kQ5_K:
      return 176;
    case QuantFormat::kQ6_K:
      return 210;
  }
  fail("QuantLinear: unknown format");
}

bool quant_avx512_available() {
  return cpu_has_avx512bw();
}

bool quant_bf16_dequant_available() {
  return cpu_has_avx512bf16();
}

void quant_dequantize_row_bf16(QuantFormat f, const uint8_t* row, int in, uint16_t* dst,
                               QuantIsa isa) {
  const int bw = quant_block_weights(f);
  if (in <= 0 || in % bw != 0) {
    fail("quant_dequantize_row_bf16: ", quant_format_name(f), " rows need a positive multiple of ",
         bw, " weights, got ", in);
  }
  if (isa == QuantIsa::kAuto) return pick_row_to_bf16()(f, row, in, dst);
  if (isa == QuantIsa::kPortable) return row_to_bf16_portable(f, row, in, dst);
#ifdef FASTKV_AVX512_KERNELS
  if (cpu_has_avx512bf16()) return row_to_bf16_avx512(f, row, in, dst);
#endif
  fail("quant_dequantize_row_bf16: the AVX-512 dequantiser needs a CPU with AVX512-BF16");
}

const char* quant_kernel_name() {
  if (!quant_avx512_available() || portable_forced()) return "portable";
  return cpu_has_avx512vnni() ? "avx512-vnni" : "avx512bw";
}

QuantLinear::QuantLinear(const uint8_t* blocks, QuantFormat format, int in, int out,
                         std::vector<float> bias)
    : blocks_(blocks), format_(format), in_(in), out_(out), bias_(std::move(bias)) {
  const int bw = quant_block_weights(format);
  if (in <= 0 || in % bw != 0) {
    fail("QuantLinear: ", quant_format_name(format), " rows need a positive multiple of ", bw,
         " inputs, got ", in);
  }
  if (out <= 0) fail("QuantLinear: need at least one output, got ", out);
  if (blocks == nullptr) fail("QuantLinear: no weight data");
  if (!bias_.empty() && static_cast<int>(bias_.size()) != out) {
    fail("QuantLinear: bias has ", bias_.size(), " values for ", out, " outputs");
  }
  row_bytes_ = static_cast<int64_t>(in / bw) * quant_block_bytes(format);
  if (native_bf16()) gemm_ = std::make_unique<Gemm>();
  if (interleavable(format) && out >= kGroupRows && isa_is_vnni(QuantIsa::kAuto)) {
    groups_ = out / kGroupRows;
    const int64_t group_bytes = kGroupRows * row_bytes_;
    const int64_t bytes = row_bytes_ * out;
    // 64-byte aligned (aligned_alloc wants a multiple of the alignment); not zeroed: every byte
    // is written below.
    packed_.reset(static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)));
    if (!packed_) fail("QuantLinear: out of memory for ", bytes, " bytes of interleaved weights");
    const int cols = in / bw;  // blocks (super-blocks) of a row
    uint8_t* dst = packed_.get();
#pragma omp parallel for schedule(static) if (worth_parallel(bytes))
    for (int g = 0; g < groups_; ++g) {
      interleave_group(format, blocks + g * group_bytes, row_bytes_, cols, dst + g * group_bytes);
    }
    std::memcpy(dst + groups_ * group_bytes, blocks + groups_ * group_bytes,
                static_cast<size_t>(bytes - groups_ * group_bytes));
  }
}

void QuantLinear::copy_row(int r, uint8_t* dst) const {
  if (r < 0 || r >= out_) fail("QuantLinear: row ", r, " outside [0, ", out_, ")");
  const uint8_t* src = file_row(r, dst);
  if (src != dst) std::memcpy(dst, src, static_cast<size_t>(row_bytes_));
}

void QuantLinear::AlignedFree::operator()(uint8_t* p) const { std::free(p); }

const uint8_t* QuantLinear::file_row(int r, uint8_t* scratch) const {
  if (!packed_) return blocks_ + r * row_bytes_;
  if (r >= kGroupRows * groups_) return packed_.get() + r * row_bytes_;  // a tail row
  const int g = r / kGroupRows;
  deinterleave_row(format_, packed_.get() + g * kGroupRows * row_bytes_,
                   in_ / quant_block_weights(format_),
                   r % kGroupRows, scratch);
  return scratch;
}

int64_t QuantLinear::weight_bytes() const {
  return row_bytes_ * out_ + static_cast<int64_t>(bias_.size() * sizeof(float));
}

void QuantLinear::forward(const float* x, int n, float* y) const {
  if (n <= kQuantDotMaxRows) {
    forward_dot(x, n, y);
  } else {
    forward_gemm(x, n, y);
  }
}

void QuantLinear::forward_dot(const float* x, int n, float* y, QuantIsa isa) const {
  const QuantLinear* self = this;
  forward_dot_group(&self, &y, 1, x, n, isa);
}

void QuantLinear::forward_dot_group(const QuantLinear* const* layers, float* const* ys, int count,
                                    const float* x, int n, QuantIsa isa) {
  if (n <= 0 || count <= 0) return;
  const int in = layers[0]->in_;
  constexpr int kMaxGroup = kMaxSharedInput;
  if (count > kMaxGroup) fail("QuantLinear: at most ", kMaxGroup, " layers share an input");
  DotKernels dots[kMaxGroup];
  GroupDot group_dots[kMaxGroup];  // the interleaved kernel of layer i, or null
  // Layer i's work is units [first_unit[i], first_unit[i + 1]): with the interleaved kernel,
  // its groups of 16 rows, then its tail rows one each; otherwise its rows one each.
  int first_unit[kMaxGroup + 1];
  first_unit[0] = 0;
  int64_t total_rows = 0;  // over all layers
  const bool vnni = isa_is_vnni(isa);
  for (int i = 0; i < count; ++i) {
    const QuantLinear& l = *layers[i];
    if (l.in_ != in) {
      fail("QuantLinear: layers sharing an input need the same width, got ", in, " and ", l.in_);
    }
    dots[i] = pick_dot_kernels(l.format_, isa);
    group_dots[i] = vnni && l.groups_ > 0 ? pick_group_dot(l.format_) : nullptr;
    const int units = group_dots[i] ? l.groups_ + (l.out_ - kGroupRows * l.groups_) : l.out_;
    first_unit[i + 1] = first_unit[i] + units;
    total_rows += l.out_;
  }
  const int total = first_unit[count];
  thread_local QuantActs acts;
  // The AVX-512 block quantiser (same results) wherever the dot kernels are AVX-512 ones.
  const bool avx512_acts = resolve_isa(isa) != QuantIsa::kPortable;
  // The multi-row AVX-512 kernels of the 32-weight formats read q_r (not the interleaved
  // kernel: only the tail rows of its layers need it).
  bool regroup = false;
  for (int i = 0; i < count; ++i) {
    const QuantLinear& l = *layers[i];
    regroup |= n > 1 && avx512_acts && quant_block_weights(l.format_) == kBlock &&
               (!group_dots[i] || l.out_ > kGroupRows * l.groups_);
  }
  quantize_acts(x, n, in, avx512_acts, regroup, acts);
  const QuantActs& a = acts;  // the calling thread's buffers, read by every worker
  thread_local std::vector<ActRow> act_rows;  // [n] a.row(i), read by every worker
  act_rows.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) act_rows[i] = a.row(i);
  const ActRow* rows = act_rows.data();
  const int nb = in / kBlock;
  // Units are handed out as threads ask for them (guided: each chunk a share of what is left,
  // at least about kChunkBytes of weights, one group or 4 rows), not split in equal halves up
  // front: layers of one group may differ in bytes per row (Q4_K_M's Q / K are Q4_K, V Q6_K),
  // and on a shared machine a thread that is descheduled for a while no longer holds up the
  // rows it would have been given. A chunk is contiguous, so each thread streams long runs of
  // rows. Measured on the 1B Q4_0 model's decode (`fastkv bench -p 64 -n 128 -r 2`, ACTIVE
  // waiting, 2 threads, alternating, Intel Xeon, session 8): dynamic chunks of 64 KiB 32.3-33.4
  // tok/s, 256 KiB 34.3-36.0, static halves 36.2-37.0, guided 36.4-37.1; on 1B Q4_K_M (rows,
  // not groups: `-p 16`, two rounds) dynamic chunks of 56 rows 26.6-27.2, guided 34.4-34.8.
  constexpr int64_t kChunkBytes = 64 << 10;
  const int64_t unit_bytes = layers[0]->row_bytes_ * (group_dots[0] ? kGroupRows : 1);
  const int chunk = static_cast<int>(
      std::max<int64_t>(group_dots[0] ? 1 : 4, kChunkBytes / unit_bytes));
#pragma omp parallel for schedule(guided, chunk) if (worth_parallel(static_cast <int64_t>(n) * in * total_rows))
  for (int u = 0; u < total; ++u) {
    int li = 0;
    while (u >= first_unit[li + 1]) ++li;
    const QuantLinear& l = *layers[li];
    const float* bias = l.bias_.empty() ? nullptr : l.bias_.data();
    float* y = ys[li];
    const int local = u - first_unit[li];
    if (group_dots[li] && local < l.groups_) {
      // 16 rows at once, up to 4 activation rows a call.
      const int r0 = kGroupRows * local;
      const uint8_t* g = l.packed_.get() + r0 * l.row_bytes_;
      for (int i0 = 0; i0 < n; i0 += 4) {
        const int k = std::min(4, n - i0);
        alignas(64) float v[4 * kGroupRows];  // [k, 16]
        group_dots[li](g, nb, rows + i0, k, v);
        for (int i = 0; i < k; ++i) {
          float* yi = y + static_cast<int64_t>(i0 + i) * l.out_ + r0;
          for (int r = 0; r < kGroupRows; ++r) {
            yi[r] = bias ? v[kGroupRows * i + r] + bias[r0 + r] : v[kGroupRows * i + r];
          }
        }
      }
      continue;
    }
    const int r = group_dots[li] ? kGroupRows * l.groups_ + (local - l.groups_) : local;
    thread_local std::vector<uint8_t> scratch;  // [row_bytes] a row of a group, file layout
    if (l.packed_ && scratch.size() < static_cast<size_t>(l.row_bytes_)) {
      scratch.resize(static_cast<size_t>(l.row_bytes_));
    }
    const uint8_t* w = l.file_row(r, scratch.data());
    if (n == 1) {
      const float v = dots[li].one(w, nb, rows[0]);
      y[r] = bias ? v + bias[r] : v;
      continue;
    }
    // Several rows (batched decode, a short prefill): the weight row is unpacked once per
    // kMultiRows activation rows, not once per row.
    for (int i0 = 0; i0 < n; i0 += kMultiRows) {
      const int k = std::min(kMultiRows, n - i0);
      float v[kMultiRows];  // [k] the dots of rows i0 .. i0 + k - 1
      dots[li].many(w, nb, rows + i0, k, v);
      for (int i = 0; i < k; ++i) {
        y[static_cast<int64_t>(i0 + i) * l.out_ + r] = bias ? v[i] + bias[r] : v[i];
      }
    }
  }
}

void QuantLinear::forward_gemm(const float* x, int n, float* y, bool allow_bf16) const {
  if (n <= 0) return;
  if (gemm_ && allow_bf16) {
    forward_gemm_bf16(x, n, y);
    return;
  }
  // Tiles of output rows whose f32 weights take about 1 MiB (at least 16 rows): each tile is
  // dequantised once and multiplied with all n rows by one sgemm into y's columns [r0, r0+rows).
  const int tile_rows = std::max(16, (1 << 18) / in_ / 16 * 16);
  const int tiles = (out_ + tile_rows - 1) / tile_rows;
  // Inside the parallel loop OpenBLAS (OpenMP build) runs each sgemm on one thread.
#pragma omp parallel for schedule( \
    dynamic) if (worth_parallel(static_cast <int64_t>(n) * in_ * out_) && tiles > 1)
  for (int t = 0; t < tiles; ++t) {
    const int r0 = t * tile_rows, rows = std::min(tile_rows, out_ - r0);
    thread_local std::vector<float> tile;  // [rows, in] f32 weights of this tile
    tile.resize(static_cast<size_t>(rows) * in_);
    for (int r = 0; r < rows; ++r) {
      thread_local std::vector<uint8_t> scratch;  // [row_bytes] a row of a group, file layout
      if (packed_) scratch.resize(static_cast<size_t>(row_bytes_));
      dequantize_row(format_, file_row(r0 + r, scratch.data()), in_,
                     tile.data() + static_cast<size_t>(r) * in_);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, in_, 1.0f, x, in_, tile.data(),
                in_, 0.0f, y + r0, out_);
  }
  if (!bias_.empty()) {
    for (int i = 0; i < n; ++i) {
      float* yi = y + static_cast<int64_t>(i) * out_;
      for (int j = 0; j < out_; ++j) yi[j] += bias_[j];
    }
  }
}

// The bf16 dequantiser of whole interleaved groups (null where there is none: no AVX512-BF16,
// the portable kernels forced, or a format without groups).
using GroupToBf16 = void (*)(const uint8_t* g, int nb, uint16_t* dst, int64_t ld);

GroupToBf16 pick_group_to_bf16(QuantFormat f) {
#ifdef FASTKV_AVX512_KERNELS
  if (!cpu_has_avx512bf16() || portable_forced()) return nullptr;
  return for_interleaved_format(
      f, [](auto F) -> GroupToBf16 { return &bf16x::dequantize_group_bf16<F()>; });
#else
  (void)f;
  return nullptr;
#endif
}

// The blocked-layout writer of whole interleaved groups (null where there is none, as above).
using GroupToBlocked = void (*)(const uint8_t* g, int nb, uint16_t* dst);

GroupToBlocked pick_group_to_blocked(QuantFormat f) {
#ifdef FASTKV_AVX512_KERNELS
  if (!cpu_has_avx512bf16() || portable_forced()) return nullptr;
  return for_interleaved_format(f, [](auto F) -> GroupToBlocked {
    if constexpr (F() == QuantFormat::kQ8_0 || F() == QuantFormat::kQ4_0 ||
                  F() == QuantFormat::kQ4_1) {
      return &bf16x::dequantize_group_blocked<F()>;
    } else {
      return &bf16x::dequantize_k_group_blocked<F()>;
    }
  });
#else
  (void)f;
  return nullptr;
#endif
}

bool QuantLinear::dequantize_rows_blocked(int r0, int rows, uint16_t* dst) const {
  const GroupToBlocked to_blocked = packed_ ? pick_group_to_blocked(format_) : nullptr;
  if (!to_blocked || r0 < 0 || rows <= 0 || r0 % 64 != 0 || rows % 64 != 0 ||
      r0 + rows > kGroupRows * groups_) {
    return false;
  }
  const int nb = in_ / kBlock;
  const int units = rows / kGroupRows;
#pragma omp parallel for schedule(static) if (worth_parallel(static_cast <int64_t>(rows) * in_ * 4))
  for (int u = 0; u < units; ++u) {
    const int n = kGroupRows * u;  // the group's first column in the tile
    to_blocked(packed_.get() + static_cast<int64_t>(r0 + n) * row_bytes_, nb,
               dst + static_cast<int64_t>(n / 64) * nb * 2048 + (n % 64) * 2);
  }
  return true;
}

void QuantLinear::dequantize_rows_bf16(int r0, int rows, uint16_t* dst) const {
  if (r0 < 0 || rows < 0 || r0 + rows > out_) {
    fail("QuantLinear: rows [", r0, ", ", r0 + rows, ") outside [0, ", out_, ")");
  }
  static const RowToBf16 to_bf16_row = pick_row_to_bf16();
  const GroupToBf16 group_to_bf16 = packed_ ? pick_group_to_bf16(format_) : nullptr;
  // Units: a whole interleaved group inside [r0, r0 + rows) where group_to_bf16 exists (16 rows
  // at once, no copy back to the file's layout), else one row.
  const int g0 = group_to_bf16 ? (r0 + kGroupRows - 1) / kGroupRows : 0;
  const int g1 = group_to_bf16 ? std::min(groups_, (r0 + rows) / kGroupRows) : 0;
  const int whole = std::max(0, g1 - g0);                   // groups done whole
  const int lead = whole ? kGroupRows * g0 - r0 : rows;     // rows before them
  const int rest = rows - lead - kGroupRows * whole;        // rows after them
  const int units = lead + whole + rest;
#pragma omp parallel for schedule(static) if (worth_parallel(static_cast <int64_t>(rows) * in_ * 4))
  for (int u = 0; u < units; ++u) {
    if (u >= lead && u < lead + whole) {
      const int g = g0 + (u - lead);
      group_to_bf16(packed_.get() + g * kGroupRows * row_bytes_, in_ / kBlock,
                    dst + static_cast<int64_t>(kGroupRows * g - r0) * in_, in_);
      continue;
    }
    const int r = u < lead ? r0 + u : kGroupRows * g1 + (u - lead - whole);
    thread_local std::vector<uint8_t> scratch;  // [row_bytes] a row of a group, file layout
    if (packed_) scratch.resize(static_cast<size_t>(row_bytes_));
    to_bf16_row(format_, file_row(r, scratch.data()), in_, dst + static_cast<int64_t>(r - r0) * in_);
  }
}

void QuantLinear::forward_gemm_group(const QuantLinear* const* layers, float* const* ys,
                                     int count, const float* x, int n) {
  if (n <= 0 || count <= 0) return;
  if (count > kMaxSharedInput) fail("QuantLinear: at most ", kMaxSharedInput, " layers share an input");
  bool shared = true;
  for (int i = 0; i < count; ++i) {
    if (layers[i]->in_ != layers[0]->in_) {
      fail("QuantLinear: layers sharing an input need the same width, got ", layers[0]->in_,
           " and ", layers[i]->in_);
    }
    shared = shared && layers[i]->gemm_;
  }
  if (!shared) {
    for (int i = 0; i < count; ++i) layers[i]->forward_gemm(x, n, ys[i]);
    return;
  }
  // Measured on a 2,048-token prefill: the rounding was 4-5% of the profile with each of Q, K,
  // V (gate, up) rounding the same input again, 4.2% with this (docs/benchmarks.md, session 11).
  const uint16_t* xb = matmul_input_bf16(x, static_cast<int64_t>(n) * layers[0]->in_);
  for (int i = 0; i < count; ++i) layers[i]->gemm_bf16_from(xb, n, ys[i]);
}

// Where the CPU has native bf16 (AMX here): the activations rounded to bf16 once, then per tile
// of output rows the weights dequantised to f32 and rounded to bf16 (in parallel over rows),
// and one oneDNN matmul (all threads) writes y's columns [r0, r0 + rows).
void QuantLinear::forward_gemm_bf16(const float* x, int n, float* y) const {
  gemm_bf16_from(matmul_input_bf16(x, static_cast<int64_t>(n) * in_), n, y);
}

void QuantLinear::gemm_bf16_from(const uint16_t* xbp, int n, float* y) const {
  thread_local aligned_vector<uint16_t> tile;  // [rows, in] bf16 weights of one tile
  thread_local std::vector<uint8_t> pad_buf;  // oneDNN scratchpad of the calling thread
  // Tiles of kGemmTileWeights weights, in multiples of 64 rows (the history below): each tile is
  // one matmul, which packs the activations again, so fewer tiles cost less. Measured on the
  // 1B Q4_0 model at 512 tokens, prefill CPU seconds against the bf16 backend's 5.2-5.8 s:
  // 6.0 s with 4 MiB tiles, 5.6-5.9 s with 8 MiB, 5.4-5.7 s with 16 MiB (docs/benchmarks.md);
  // 1 MiB tiles were about 10% slower again than 4 MiB. Session 9 (buffers cache-line aligned):
  // 32 MiB (16M weights), so that a 1B Llama's MLP layers are one tile each. A tile narrower
  // than its layer writes y with a row stride oneDNN 2.6 has no AMX kernel for (it runs
  // gemm:jit); one tile a layer runs AMX on the layout dequantize_rows_blocked writes. 1B Q4_0
  // prefill against the bf16 backend, alternated: 0.90-0.92x with 16 MiB tiles, 0.97-0.98x with
  // 32 MiB at 512 tokens; 0.86-0.88x and 0.97x at 2,048 (docs/benchmarks.md, session 9). The
  // tile buffers are one per calling thread.
  // Session 10: a tile narrower than its layer (an 8B Llama's MLP, 58.7M weights) multiplies
  // into a dense [n, rows] block, which AMX's kernel writes, copied into y's columns after: 8B
  // Q4_0 prefill at 512 tokens 5.8-6.0 s against 6.2 s with gemm:jit on the strided tiles.
  // Session 12, with that dense block: tiles of 4M weights (8 MiB of bf16) against 16M, 1B at
  // 512 and 2,048 tokens, alternated: Q4_0, Q8_0 and Q4_K_M prefill 4-13% faster, level with
  // or ahead of the bf16 backend, and 16-19 MiB less RSS (the tile buffer; the dense block is
  // [n, rows] f32); 2M was as fast, 8M in between (docs/benchmarks.md, session 12).
  constexpr int tile_elems = kGemmTileWeights;
  const int tile_rows = std::min(out_, std::max(64, tile_elems / in_ / 64 * 64));
  dnnl::stream stream(onednn_engine());
  for (int r0 = 0; r0 < out_; r0 += tile_rows) {
    const int rows = std::min(tile_rows, out_ - r0);
    auto p = gemm_->get(n, rows, in_, out_);
    dnnl::memory src(p->src, onednn_engine(), const_cast<uint16_t*>(xbp));
    dnnl::memory wei;
    // The tile in the matmul's weight layout, cache-line aligned (a plain std::vector's data sat
    // 16 bytes past a line: every 64-byte store of the blocked writer and every tile load of the
    // matmul then crossed two lines; common/aligned.h).
    thread_local aligned_vector<uint8_t> blocked;
    const size_t blocked_bytes = std::max(p->amx ? p->wei_amx.get_size() : 0,
                                          p->to_blocked ? p->wei_blocked.get_size() : 0);
    if (blocked.size() < blocked_bytes) blocked.resize(blocked_bytes);
    const bool amx =
        p->amx && dequantize_rows_blocked(r0, rows, reinterpret_cast<uint16_t*>(blocked.data()));
    if (amx) {
      // AMX's layout written straight from the groups: measured on the 1B Q4_0 model at 512
      // tokens (docs/benchmarks.md, session 9)
      wei = dnnl::memory(p->wei_amx, onednn_engine(), blocked.data());
    } else {
      tile.resize(static_cast<size_t>(tile_rows) * in_);
      uint16_t* tp = tile.data();
      dequantize_rows_bf16(r0, rows, tp);
      wei = dnnl::memory(p->wei, onednn_engine(), tp);
      if (p->to_blocked) {
        dnnl::memory wb(p->wei_blocked, onednn_engine(), blocked.data());
        p->to_blocked->execute(stream, wei, wb);
        wei = wb;
      }
    }
    const bool dense = rows < out_;
    thread_local aligned_vector<float> ydense;  // [n, rows] when dense
    if (dense && ydense.size() < static_cast<size_t>(n) * rows) ydense.resize(static_cast<size_t>(n) * rows);
    dnnl::memory dst(p->dst, onednn_engine(), dense ? ydense.data() : y + r0);
    const dnnl::memory::desc pad_md = (amx ? *p->amx_pd : p->pd).scratchpad_desc();
    if (pad_buf.size() < pad_md.get_size()) pad_buf.resize(pad_md.get_size());
    dnnl::memory pad(pad_md, onednn_engine(), pad_buf.data());
    (amx ? *p->amx : p->prim).execute(stream, {{DNNL_ARG_SRC, src},
                             {DNNL_ARG_WEIGHTS, wei},
                             {DNNL_ARG_DST, dst},
                             {DNNL_ARG_SCRATCHPAD, pad}});
    stream.wait();
    if (dense) {
      const float* yd = ydense.data();
#pragma omp parallel for if (worth_parallel(static_cast<int64_t>(n) * rows))
      for (int i = 0; i < n; ++i) {
        std::memcpy(y + static_cast<int64_t>(i) * out_ + r0, yd + static_cast<int64_t>(i) * rows,
                    sizeof(float) * rows);
      }
    }
  }
  if (!bias_.empty()) {
    for (int i = 0; i < n; ++i) {
      float* yi = y + static_cast<int64_t>(i) * out_;
      for (int j = 0; j < out_; ++j) yi[j] += bias_[j];
    }
  }
}

}  // namespace fastkv::kernels
