// QuantLinear (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K weights read in place) against a
// double-precision reference computed from each format's definition.
//
// The weights are random blocks built from the definition (quant_linear.h, docs/gguf.md): random
// f16 scales (some negative, some zero), random 6-bit scales and mins / int8 scales for the
// K-quants, random quants over the whole range. The test keeps the decoded value of every weight
// as the definition gives it (w = d · q, d · sc · q - dmin · mn, ...) and packs the quants into
// block bytes with its own packer; the kernels unpack those bytes. (io/quant's dequantize_row
// must give the same weights too: a check of the packer and of the reader.)
//
// Tolerances, per output y[i, r] (ε = 2^-24, the f32 unit round-off):
//   integer-dot path: the activations of block b (32 elements) are replaced by s_b · qx with
//     s_b = max|x_b| / 127 and |x_j - s_b · qx_j| <= s_b / 2 (round to nearest; plus 128 ε s_b
//     for the rounding of x / s), so the exact result moves by at most
//     Q = sum_b (s_b / 2) · sum_{j in b} |w_j|; we allow 1.01 Q. The integer (sub-)block dots
//     are exact (|sum| < 2^24); each term coef · sum (coef = d · s or d · sc · s, a few f32
//     roundings) and each min term mn · dmin · xsum is at most a_j · |qx_j| · s_b summed over
//     its elements, where a_j = |d| · |q_j - offset| (· |sc|) + |min coefficient| is element j's
//     share, and s_b |qx_j| <= |x_j| + s_b; adding the at most 2 nb terms (two per activation
//     block for K-quants' mins and Q6_K's 16-element sub-blocks) and the 16-lane reduction
//     costs at most (2 nb + 20) ε · T with T = sum_j a_j (|x_j| + s_b) + |bias|; we allow 2 ×.
//   dequantise + GEMM path, f32 sgemm (CPUs without native bf16): each f32 weight is the
//     definition's value within 2 ε relative (d · sc · q - dmin · mn: one product of up to 25
//     significant bits and one subtraction round), and the f32 dot product of `in` terms adds
//     γ_in: at most (in + 4) ε · (sum_j |w_j x_j| + |bias|); we allow twice that.
//   dequantise + GEMM path, oneDNN bf16 (native bf16 CPUs): weights and activations rounded to
//     bf16 (8 significand bits, 2^-9 relative each, 2^-8 per product), f32 accumulation: as in
//     test_backend_bf16.cpp we allow 2^-7 · sum_j |w_j x_j|, twice the worst case.
// Every dot-path case runs on the portable kernel and, where the CPU has AVX-512BW, on both
// AVX-512 kernels (VNNI where the CPU has it, and BW).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "common/bf16.h"
#include "common/error.h"
#include "io/quant.h"
#include "kernels/linear.h"
#include "kernels/quant_linear.h"
#include "model/model.h"

namespace fastkv {
namespace {

using kernels::QuantFormat;
using kernels::QuantIsa;
using kernels::QuantLinear;

constexpr double kEps = 1.0 / (1 << 24);

constexpr QuantFormat kAllFormats[] = {QuantFormat::kQ8_0, QuantFormat::kQ4_0, QuantFormat::kQ4_1,
                                       QuantFormat::kQ5_0, QuantFormat::kQ5_1, QuantFormat::kQ4_K,
                                       QuantFormat::kQ5_K, QuantFormat::kQ6_K};

gguf::TensorType gguf_type(QuantFormat f) {
  switch (f) {
    case QuantFormat::kQ8_0:
      return gguf::TensorType::Q8_0;
    case QuantFormat::kQ4_0:
      return gguf::TensorType::Q4_0;
    case QuantFormat::kQ4_1:
      return gguf::TensorType::Q4_1;
    case QuantFormat::kQ5_0:
      return gguf::TensorType::Q5_0;
    case QuantFormat::kQ5_1:
      return gguf::TensorType::Q5_1;
    case QuantFormat::kQ4_K:
      return gguf::TensorType::Q4_K;
    case QuantFormat::kQ5_K:
      return gguf::TensorType::Q5_K;
    case QuantFormat::kQ6_K:
      return gguf::TensorType::Q6_K;
  }
  return gguf::TensorType::F32;
}

struct Weights {
  std::vector<uint8_t> blocks;  // [out, in / B] blocks
  std::vector<double> w;        // [out, in] each weight's value by the definition
  std::vector<double> a;        // [out, in] its share a_j of the rounding bound (header comment)
};

// Random blocks of format f from the definition.
class BlockMaker {
 public:
  explicit BlockMaker(std::mt19937& rng) : rng_(rng) {}

  Weights make(QuantFormat f, int in, int out) {
    Weights ws;
    const int B = kernels::quant_block_weights(f), bytes = kernels::quant_block_bytes(f);
    ws.blocks.resize(static_cast<size_t>(out) * (in / B) * bytes);
    ws.w.resize(static_cast<size_t>(out) * in);
    ws.a.resize(ws.w.size());
    for (size_t blk = 0; blk < ws.blocks.size() / bytes; ++blk) {
      block(f, ws.blocks.data() + blk * bytes, ws.w.data() + blk * B, ws.a.data() + blk * B);
    }
    return ws;
  }

 private:
  std::mt19937& rng_;

  int uni(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  // A random f16 scale of magnitude up to `mag`: zero one time in 16, negative half the time
  // (unless `positive`); stores its bytes at p and returns its value.
  double scale(uint8_t* p, double mag, bool positive = false) {
    double v = 0;
    if (uni(0, 15) != 0) {
      v = mag * std::uniform_real_distribution<double>(0.05, 1.0)(rng_);
      if (!positive && uni(0, 1) == 0) v = -v;
    }
    const uint16_t h = gguf::f32_to_f16(static_cast<float>(v));
    p[0] = static_cast<uint8_t>(h & 0xFF);
    p[1] = static_cast<uint8_t>(h >> 8);
    return gguf::f16_to_f32(h);
  }

  // Element j's quant q (0..31 or 0..15) into the 16 nibble bytes qs (j < 16: low nibble of
  // qs[j]; else high nibble of qs[j - 16]) and, for 5-bit quants, bit j of the u32 at qh.
  static void put_32(uint8_t* qs, uint8_t* qh, int j, int q) {
    if (j < 16) {
      qs[j] = static_cast<uint8_t>((qs[j] & 0xF0) | (q & 0xF));
    } else {
      qs[j - 16] = static_cast<uint8_t>((qs[j - 16] & 0x0F) | ((q & 0xF) << 4));
    }
    if (qh != nullptr && (q & 16)) qh[j / 8] |= static_cast<uint8_t>(1u << (j % 8));
  }

  void block(QuantFormat f, uint8_t* p, double* w, double* a) {
    switch (f) {
      case QuantFormat::kQ8_0: {
        const double d = scale(p, 1e-3);
        for (int j = 0; j < 32; ++j) {
          const int q = uni(-128, 127);
          p[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
          w[j] = d * q;
          a[j] = std::fabs(w[j]);
        }
        return;
      }
      case QuantFormat::kQ4_0:
      case QuantFormat::kQ5_0: {
        const bool q5 = f == QuantFormat::kQ5_0;
        const double d = scale(p, 1e-2);
        uint8_t* qh = q5 ? p + 2 : nullptr;
        uint8_t* qs = p + (q5 ? 6 : 2);
        std::fill(p + 2, p + (q5 ? 22 : 18), 0);
        const int offset = q5 ? 16 : 8;
        for (int j = 0; j < 32; ++j) {
          const int q = uni(0, 2 * offset - 1);
          put_32(qs, qh, j, q);
          w[j] = d * (q - offset);
          a[j] = std::fabs(w[j]);
        }
        return;
      }
      case QuantFormat::kQ4_1:
      case QuantFormat::kQ5_1: {
        const bool q5 = f == QuantFormat::kQ5_1;
        const double d = scale(p, 1e-2), m = scale(p + 2, 0.1);
        uint8_t* qh = q5 ? p + 4 : nullptr;
        uint8_t* qs = p + (q5 ? 8 : 4);
        std::fill(p + 4, p + (q5 ? 24 : 20), 0);
        for (int j = 0; j < 32; ++j) {
          const int q = uni(0, q5 ? 31 : 15);
          put_32(qs, qh, j, q);
          w[j] = d * q + m;
          a[j] = std::fabs(d) * q + std::fabs(m);
        }
        return;
      }
      case QuantFormat::kQ4_K:
      case QuantFormat::kQ5_K: {
        const bool q5 = f == QuantFormat::kQ5_K;
        const double d = scale(p, 1e-3), dmin = scale(p + 2, 1e-3);
        int sc[8], mn[8];
        for (int u = 0; u < 8; ++u) sc[u] = uni(0, 63), mn[u] = uni(0, 63);
        uint8_t* s = p + 4;
        // Bytes 0..3: sc[0..3] | top 2 bits of sc[4..7] << 6; bytes 4..7: the same for the
        // mins; bytes 8..11: low 4 bits of sc[4..7] | low 4 bits of mn[4..7] << 4.
        for (int u = 0; u < 4; ++u) {
          s[u] = static_cast<uint8_t>(sc[u] | ((sc[u + 4] >> 4) << 6));
          s[u + 4] = static_cast<uint8_t>(mn[u] | ((mn[u + 4] >> 4) << 6));
          s[u + 8] = static_cast<uint8_t>((sc[u + 4] & 0xF) | ((mn[u + 4] & 0xF) << 4));
        }
        uint8_t* qh = q5 ? p + 16 : nullptr;
        uint8_t* qs = p + (q5 ? 48 : 16);
        std::fill(p + 16, p + (q5 ? 176 : 144), 0);
        // Element l of sub-block u: nibble (low for even u, high for odd) of qs[32 (u/2) + l];
        // Q5_K's fifth bit is bit u of qh[l].
        for (int u = 0; u < 8; ++u) {
          for (int l = 0; l < 32; ++l) {
            const int q = uni(0, q5 ? 31 : 15);
            uint8_t& byte = qs[32 * (u / 2) + l];
            byte |= static_cast<uint8_t>(u % 2 == 0 ? (q & 0xF) : (q & 0xF) << 4);
            if (q5 && (q & 16)) qh[l] |= static_cast<uint8_t>(1u << u);
            w[32 * u + l] = d * sc[u] * q - dmin * mn[u];
            a[32 * u + l] = std::fabs(d) * sc[u] * q + std::fabs(dmin) * mn[u];
          }
        }
        return;
      }
      case QuantFormat::kQ6_K: {
        std::fill(p, p + 210, 0);
        const double d = scale(p + 208, 1e-4);
        int sc[16];
        for (int t = 0; t < 16; ++t) {
          sc[t] = uni(-128, 127);
          p[192 + t] = static_cast<uint8_t>(static_cast<int8_t>(sc[t]));
        }
        // Element i = 128 h + 32 k + l: low 4 bits in ql[64 h + 32 (k & 1) + l] (low nibble for
        // k < 2, high for k >= 2), high 2 bits at bits 2k, 2k+1 of qh[32 h + l].
        for (int i = 0; i < 256; ++i) {
          const int q = uni(0, 63);
          const int h = i / 128, k = (i % 128) / 32, l = i % 32;
          uint8_t& lo = p[64 * h + 32 * (k & 1) + l];
          lo |= static_cast<uint8_t>(k < 2 ? (q & 0xF) : (q & 0xF) << 4);
          p[128 + 32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
          w[i] = d * sc[i / 16] * (q - 32);
          a[i] = std::fabs(w[i]);
        }
        return;
      }
    }
  }
};

std::vector<float> make_acts(int n, int in, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n) * in);
  for (float& v : x) v = nd(rng);
  // Row 0's first block all zero (scale 0); row 1 with one large outlier per block.
  for (int j = 0; j < 32; ++j) x[j] = 0;
  if (n > 1) {
    for (int b = 0; b < in / 32; ++b) x[in + 32 * b + (b * 7) % 32] = 40.0f;
  }
  return x;
}

TEST(QuantLinear, BlockMakerAgreesWithTheReader) {
  std::mt19937 rng(2);
  BlockMaker maker(rng);
  for (QuantFormat f : kAllFormats) {
    const int in = 2 * kernels::quant_block_weights(f), out = 9;
    const Weights ws = maker.make(f, in, out);
    std::vector<float> deq(ws.w.size());
    gguf::dequantize_row(gguf_type(f), ws.blocks.data(), deq.data(),
                         static_cast<int64_t>(deq.size()));
    int zero = 0;
    for (size_t i = 0; i < deq.size(); ++i) {
      // The reader computes in f32: within 2 ε relative of the definition (as sgemm's bound).
      ASSERT_NEAR(deq[i], ws.w[i], 3 * kEps * ws.a[i] + 1e-30)
          << kernels::quant_format_name(f) << " element " << i;
      zero += ws.w[i] == 0;
    }
    EXPECT_LT(zero, static_cast<int>(deq.size()) / 2) << kernels::quant_format_name(f);
  }
}

struct Path {
  const char* name;
  bool dot;
  QuantIsa isa;       // dot paths
  bool bf16 = false;  // GEMM paths: the oneDNN bf16 tiles (else f32 sgemm)
};

// The double reference of x[n, in] · Wᵀ + bias and each path's tolerance (header comment),
// [n, out] each.
struct Reference {
  std::vector<double> y, tol_dot, tol_sgemm, tol_bf16;
};

Reference reference(const Weights& ws, const std::vector<float>& x, int n, int in, int out,
                    const std::vector<float>& bias) {
  const int nb = in / 32;
  Reference rf;
  rf.y.resize(static_cast<size_t>(n) * out);
  rf.tol_dot.resize(rf.y.size());
  rf.tol_sgemm.resize(rf.y.size());
  rf.tol_bf16.resize(rf.y.size());
  for (int i = 0; i < n; ++i) {
    const float* xi = x.data() + static_cast<size_t>(i) * in;
    for (int r = 0; r < out; ++r) {
      const double* wr = ws.w.data() + static_cast<size_t>(r) * in;
      const double* ar = ws.a.data() + static_cast<size_t>(r) * in;
      const double bias_r = bias.empty() ? 0.0 : bias[r];
      double y = bias_r, l1 = 0, quant = 0, terms = std::fabs(bias_r);
      for (int b = 0; b < nb; ++b) {
        double amax = 0, wsum = 0;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(double{xi[32 * b + j]}));
        const double s = amax / 127;
        for (int j = 32 * b; j < 32 * b + 32; ++j) {
          const double xv = xi[j];
          y += wr[j] * xv;
          l1 += std::fabs(wr[j] * xv);
          wsum += std::fabs(wr[j]);
          terms += ar[j] * (std::fabs(xv) + s);
        }
        quant += s / 2 * wsum;
      }
      const size_t at = static_cast<size_t>(i) * out + r;
      rf.y[at] = y;
      rf.tol_dot[at] = 1.01 * quant + 2 * (2 * nb + 20) * kEps * terms + 1e-6;
      rf.tol_sgemm[at] = 2 * (in + 4) * kEps * (l1 + std::fabs(bias_r)) + 1e-6;
      rf.tol_bf16[at] = l1 / 128 + 2 * (in + 2) * kEps * std::fabs(bias_r) + 1e-6;
    }
  }
  return rf;
}

TEST(QuantLinear, MatchesDoubleReference) {
  std::mt19937 rng(11);
  BlockMaker maker(rng);
  std::vector<Path> paths = {{"portable", true, QuantIsa::kPortable},
                             {"sgemm", false, QuantIsa::kAuto, false}};
  if (QuantLinear::gemm_uses_bf16()) paths.push_back({"bf16gemm", false, QuantIsa::kAuto, true});
  if (kernels::quant_avx512_available()) {
    paths.push_back({"avx512", true, QuantIsa::kAvx512});  // VNNI where the CPU has it
    paths.push_back({"avx512bw", true, QuantIsa::kAvx512Bw});
  }
  std::printf("dot kernel here: %s; GEMM path in %s\n", kernels::quant_kernel_name(),
              QuantLinear::gemm_uses_bf16() ? "bf16 (oneDNN)" : "f32 (sgemm)");
  for (QuantFormat f : kAllFormats) {
    std::vector<double> worst(paths.size(), 0);  // max |error| / tolerance per path
    const int B = kernels::quant_block_weights(f);
    // The smallest legal row, two blocks, an odd count of 32-blocks (K: super-blocks), and for
    // the 32-weight formats 37 blocks (two of the AVX-512 kernels' 16-block steps and a tail).
    for (int k : {1, 2, B == 32 ? 13 : 5, B == 32 ? 37 : 3}) {
      const int in = B * k;
      // 17 and 32 rows: one and two interleaved groups where the VNNI kernel reads Q8_0, Q4_0,
      // Q4_1 and the K-quants (every path, the GEMM tiles included, then reads the group's rows).
      for (int out : {1, 3, 17, 32}) {
        const Weights ws = maker.make(f, in, out);
        std::vector<float> bias(out);
        for (int r = 0; r < out; ++r) bias[r] = 0.25f * static_cast<float>(r % 5) - 0.5f;
        const QuantLinear lin(ws.blocks.data(), f, in, out, bias);
        EXPECT_EQ(lin.weight_bytes(), static_cast<int64_t>(ws.blocks.size() + 4 * out));
        for (int n : {1, 2, 5, 25}) {
          const std::vector<float> x = make_acts(n, in, rng);
          const Reference rf = reference(ws, x, n, in, out, bias);
          const std::vector<double>& ref = rf.y;
          for (size_t pi = 0; pi < paths.size(); ++pi) {
            const Path& p = paths[pi];
            std::vector<float> y(static_cast<size_t>(n) * out, NAN);
            if (p.dot) {
              lin.forward_dot(x.data(), n, y.data(), p.isa);
            } else {
              lin.forward_gemm(x.data(), n, y.data(), p.bf16);
            }
            const std::vector<double>& tol = p.dot ? rf.tol_dot : (p.bf16 ? rf.tol_bf16 : rf.tol_sgemm);
            int bad = 0;
            for (size_t at = 0; at < y.size() && bad < 3; ++at) {
              worst[pi] = std::max(worst[pi], std::fabs(y[at] - ref[at]) / tol[at]);
              if (!(std::fabs(y[at] - ref[at]) <= tol[at])) {
                ++bad;
                ADD_FAILURE() << kernels::quant_format_name(f) << " " << p.name << " in=" << in
                              << " out=" << out << " n=" << n << " at [" << at / out << ", "
                              << at % out << "]: " << y[at] << " vs " << ref[at] << " (tol "
                              << tol[at] << ")";
              }
            }
          }
          // forward() agrees with the path its row count selects, bit for bit.
          std::vector<float> ya(static_cast<size_t>(n) * out), yb(ya.size());
          lin.forward(x.data(), n, ya.data());
          if (n <= kernels::kQuantDotMaxRows) {
            lin.forward_dot(x.data(), n, yb.data());
          } else {
            lin.forward_gemm(x.data(), n, yb.data());
          }
          EXPECT_EQ(ya, yb) << "n=" << n;
        }
      }
    }
    for (size_t pi = 0; pi < paths.size(); ++pi) {
      std::printf("%s %-9s worst |error| / tolerance %.3f\n", kernels::quant_format_name(f),
                  paths[pi].name, worst[pi]);
    }
  }
}

// The AVX-512 and portable kernels add the same exact integer block dots; only the f32
// summation order differs, so they agree to a few ulps of the summed magnitude.
TEST(QuantLinear, Avx512AgreesWithPortable) {
  if (!kernels::quant_avx512_available()) GTEST_SKIP() << "no AVX-512BW here";
  std::mt19937 rng(5);
  BlockMaker maker(rng);
  for (QuantFormat f : kAllFormats) {
    const int in = 2304, out = 96, n = 2;  // 72 blocks of 32, 9 super-blocks
    const Weights ws = maker.make(f, in, out);
    const QuantLinear lin(ws.blocks.data(), f, in, out, {});
    const std::vector<float> x = make_acts(n, in, rng);
    std::vector<float> a(static_cast<size_t>(n) * out), b(a.size());
    lin.forward_dot(x.data(), n, a.data(), QuantIsa::kPortable);
    for (QuantIsa isa : {QuantIsa::kAvx512, QuantIsa::kAvx512Bw}) {
      lin.forward_dot(x.data(), n, b.data(), isa);
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_NEAR(a[i], b[i], 1e-4 * (std::fabs(a[i]) + 1))
            << kernels::quant_format_name(f) << " " << i;
      }
    }
  }
}

// The 32-weight formats' AVX-512 kernels take 16 blocks per step and mask a last step of 1..15
// blocks: rows of 1..48 blocks (every tail length, odd ones included; 18 = SmolLM2-135M's 576)
// agree with the portable kernel as above.
TEST(QuantLinear, Avx512BlockTailsAgreeWithPortable) {
  if (!kernels::quant_avx512_available()) GTEST_SKIP() << "no AVX-512BW here";
  std::mt19937 rng(17);
  BlockMaker maker(rng);
  for (QuantFormat f : kAllFormats) {
    if (kernels::quant_block_weights(f) != 32) continue;
    for (int nb = 1; nb <= 48; ++nb) {
      // 21 rows: where the VNNI kernel runs, Q8_0 / Q4_0 / Q4_1 take one interleaved group of 16
      // (which has no 16-block steps: every nb) and 5 rows in the file's layout.
      const int in = 32 * nb, out = 21, n = 2;
      const Weights ws = maker.make(f, in, out);
      const QuantLinear lin(ws.blocks.data(), f, in, out, {});
      const std::vector<float> x = make_acts(n, in, rng);
      std::vector<float> a(static_cast<size_t>(n) * out), b(a.size());
      lin.forward_dot(x.data(), n, a.data(), QuantIsa::kPortable);
      for (QuantIsa isa : {QuantIsa::kAvx512, QuantIsa::kAvx512Bw}) {
        lin.forward_dot(x.data(), n, b.data(), isa);
        for (size_t i = 0; i < a.size(); ++i) {
          EXPECT_NEAR(a[i], b[i], 1e-4 * (std::fabs(a[i]) + 1))
              << kernels::quant_format_name(f) << " nb " << nb << " " << i;
        }
      }
    }
  }
}

// Several activation rows (batched decode: one row per sequence) run the multi-row kernels,
// which unpack each weight block once for up to 8 rows. A row's result must not depend on the
// rows beside it (the server promises a request the same greedy output alone or batched): for
// n = 1..9 rows (groups of 1..4 rows, and a second call past 8), every row of forward_dot's
// output has exactly the bits of that row run alone (n = 1: the single-row kernel), on the
// portable and both AVX-512 kernels, every format, rows with a 16-block tail (32-weight
// formats: 1, 3, 17 and 37 blocks; 16 = no tail) or 1 and 3 super-blocks; and it is within the
// double reference's tolerance.
TEST(QuantLinear, MultiRowKernelsMatchSingleRowBitExactly) {
  std::mt19937 rng(29);
  BlockMaker maker(rng);
  std::vector<Path> paths = {{"portable", true, QuantIsa::kPortable}};
  if (kernels::quant_avx512_available()) {
    paths.push_back({"avx512", true, QuantIsa::kAvx512});
    paths.push_back({"avx512bw", true, QuantIsa::kAvx512Bw});
  }
  constexpr int kRows = 9;
  for (QuantFormat f : kAllFormats) {
    const int B = kernels::quant_block_weights(f);
    const std::vector<int> sizes = B == 32 ? std::vector<int>{1, 3, 16, 17, 37} : std::vector<int>{1, 3};
    for (int k : sizes) {
      // 23 rows: one interleaved group (VNNI: all but Q5_0, Q5_1) and 7 rows in the file's layout.
      const int in = B * k, out = 23;
      const Weights ws = maker.make(f, in, out);
      std::vector<float> bias(out);
      for (int r = 0; r < out; ++r) bias[r] = 0.125f * static_cast<float>(r) - 0.25f;
      const QuantLinear lin(ws.blocks.data(), f, in, out, bias);
      const std::vector<float> x = make_acts(kRows, in, rng);
      const Reference rf = reference(ws, x, kRows, in, out, bias);
      for (const Path& p : paths) {
        const std::string what = std::string(kernels::quant_format_name(f)) + " " + p.name +
                                 " in=" + std::to_string(in);
        std::vector<float> alone(static_cast<size_t>(kRows) * out);  // [kRows, out] row by row
        for (int i = 0; i < kRows; ++i) {
          lin.forward_dot(x.data() + static_cast<size_t>(i) * in, 1,
                          alone.data() + static_cast<size_t>(i) * out, p.isa);
        }
        for (int n = 1; n <= kRows; ++n) {
          std::vector<float> y(static_cast<size_t>(n) * out, NAN);
          lin.forward_dot(x.data(), n, y.data(), p.isa);
          for (int i = 0; i < n; ++i) {
            const float* got = y.data() + static_cast<size_t>(i) * out;
            const float* want = alone.data() + static_cast<size_t>(i) * out;
            for (int r = 0; r < out; ++r) {
              ASSERT_EQ(std::memcmp(got + r, want + r, sizeof(float)), 0)
                  << what << " n=" << n << " row " << i << " output " << r << ": " << got[r]
                  << " batched vs " << want[r] << " alone";
              const size_t at = static_cast<size_t>(i) * out + r;
              ASSERT_LE(std::fabs(got[r] - rf.y[at]), rf.tol_dot[at])
                  << what << " n=" << n << " row " << i << " output " << r << ": " << got[r]
                  << " vs " << rf.y[at];
            }
          }
        }
      }
    }
  }
}

// The prefill tiles' dequantiser to bf16: the portable decoder is within bf16 rounding of the
// definition (2^-9 relative, plus f32's 2 ε), and the AVX512-BF16 code gives exactly its bits,
// on rows of odd block counts (1..9 blocks, 1..3 super-blocks) where the CPU has avx512bf16.
TEST(QuantLinear, Bf16DequantMatchesPortableBitExactly) {
  std::mt19937 rng(23);
  BlockMaker maker(rng);
  for (QuantFormat f : kAllFormats) {
    const int B = kernels::quant_block_weights(f);
    for (int nb : {1, 2, 3, 5, 7, 9}) {
      if (B == 256 && nb > 3) continue;
      const int in = B * nb, out = 3;
      const Weights ws = maker.make(f, in, out);
      const int64_t row_bytes = static_cast<int64_t>(nb) * kernels::quant_block_bytes(f);
      std::vector<uint16_t> port(static_cast<size_t>(in)), fast(port.size());
      for (int r = 0; r < out; ++r) {
        const uint8_t* row = ws.blocks.data() + r * row_bytes;
        kernels::quant_dequantize_row_bf16(f, row, in, port.data(), QuantIsa::kPortable);
        for (int j = 0; j < in; ++j) {
          const double want = ws.w[static_cast<size_t>(r) * in + j];
          const double a = ws.a[static_cast<size_t>(r) * in + j];
          ASSERT_NEAR(bf16_to_f32(port[j]), want, std::ldexp(a, -8) + 1e-30)
              << kernels::quant_format_name(f) << " in " << in << " row " << r << " " << j;
        }
        if (!kernels::quant_bf16_dequant_available()) continue;
        std::fill(fast.begin(), fast.end(), uint16_t{0x7FC1});
        kernels::quant_dequantize_row_bf16(f, row, in, fast.data(), QuantIsa::kAvx512);
        for (int j = 0; j < in; ++j) {
          ASSERT_EQ(port[j], fast[j]) << kernels::quant_format_name(f) << " in " << in << " row "
                                      << r << " element " << j;
        }
      }
    }
  }
  if (!kernels::quant_bf16_dequant_available()) GTEST_SKIP() << "portable checked; no AVX512-BF16 here";
}

// kAuto runs the AVX-512 kernel where the CPU has AVX-512BW, unless FASTKV_PORTABLE_KERNELS=1
// (CTest runs this binary a second time with it set: QuantLinearPortableKernels).
// The prefill tiles' rows of a layer (dequantize_rows_bf16) are each row's bf16 as the row
// dequantiser gives it from the file's bytes, bit for bit: over ranges that start and end inside
// and between the interleaved groups (whole groups are decoded 16 rows at once where the layer
// has them), for every format, rows of 1, 5 and 37 blocks (K-quants 1 and 3 super-blocks).
TEST(QuantLinear, TileRowsAreTheRowDequantiserBits) {
  std::mt19937 rng(41);
  BlockMaker maker(rng);
  for (QuantFormat f : kAllFormats) {
    const int B = kernels::quant_block_weights(f);
    for (int k : B == 32 ? std::vector<int>{1, 5, 37} : std::vector<int>{1, 3}) {
      const int in = B * k, out = 53;  // three groups of 16 and 5 rows
      const Weights ws = maker.make(f, in, out);
      const QuantLinear lin(ws.blocks.data(), f, in, out, {});
      const int64_t row_bytes = static_cast<int64_t>(in / B) * kernels::quant_block_bytes(f);
      std::vector<uint16_t> want(static_cast<size_t>(out) * in);
      for (int r = 0; r < out; ++r) {
        kernels::quant_dequantize_row_bf16(f, ws.blocks.data() + r * row_bytes, in,
                                           want.data() + static_cast<size_t>(r) * in);
      }
      for (const auto& [r0, rows] : std::vector<std::pair<int, int>>{
               {0, 53}, {0, 16}, {3, 40}, {16, 32}, {17, 1}, {31, 22}, {48, 5}, {10, 0}}) {
        std::vector<uint16_t> got(static_cast<size_t>(rows) * in + 1, 0xFFFF);
        lin.dequantize_rows_bf16(r0, rows, got.data());
        ASSERT_EQ(std::memcmp(got.data(), want.data() + static_cast<size_t>(r0) * in,
                              static_cast<size_t>(rows) * in * sizeof(uint16_t)),
                  0)
            << kernels::quant_format_name(f) << " in=" << in << " rows [" << r0 << ", "
            << r0 + rows << ") interleaved rows " << lin.interleaved_rows();
        EXPECT_EQ(got.back(), 0xFFFF) << "wrote past the rows";
      }
      EXPECT_THROW(lin.dequantize_rows_bf16(50, 4, want.data()), Error);
    }
  }
}

// The prefill's AMX tiles written straight from the groups (dequantize_rows_blocked, oneDNN's
// BA16a64b2a layout) hold every weight with the row decoder's bits at the layout's offset; the
// writer runs exactly where groups and the AVX512-BF16 writer exist, for whole 64-row ranges of
// grouped rows, and refuses (writing nothing) everywhere else.
TEST(QuantLinear, BlockedTilesAreTheRowDequantiserBits) {
  const char* env = std::getenv("FASTKV_PORTABLE_KERNELS");
  const bool forced = env != nullptr && std::string(env) == "1";
  std::mt19937 rng(43);
  BlockMaker maker(rng);
  for (QuantFormat f : kAllFormats) {
    const int B = kernels::quant_block_weights(f);
    for (int k : B == 32 ? std::vector<int>{1, 6} : std::vector<int>{1, 2}) {
      const int in = B * k, out = 200;  // 12 groups (three whole 64-row tiles), 8 tail rows
      const Weights ws = maker.make(f, in, out);
      const QuantLinear lin(ws.blocks.data(), f, in, out, {});
      // (every format with groups: Q8_0, Q4_0, Q4_1 and the K-quants)
      const bool writer = lin.interleaved_rows() > 0 && kernels::quant_bf16_dequant_available() &&
                          !forced;
      const int64_t row_bytes = static_cast<int64_t>(in / B) * kernels::quant_block_bytes(f);
      std::vector<uint16_t> want(static_cast<size_t>(out) * in);
      for (int r = 0; r < out; ++r) {
        kernels::quant_dequantize_row_bf16(f, ws.blocks.data() + r * row_bytes, in,
                                           want.data() + static_cast<size_t>(r) * in);
      }
      for (const auto& [r0, rows, ok] : std::vector<std::tuple<int, int, bool>>{
               {0, 64, true}, {0, 192, true}, {64, 128, true}, {128, 64, true}, {0, 200, false},
               {32, 64, false}, {64, 100, false}, {192, 64, false}, {0, 0, false}}) {
        std::vector<uint16_t> got(static_cast<size_t>(std::max(rows, 1)) * in + 1, 0xFFFF);
        const std::string what = std::string(kernels::quant_format_name(f)) + " in=" +
                                 std::to_string(in) + " rows [" + std::to_string(r0) + ", " +
                                 std::to_string(r0 + rows) + ")";
        ASSERT_EQ(lin.dequantize_rows_blocked(r0, rows, got.data()), writer && ok) << what;
        if (!(writer && ok)) {
          EXPECT_EQ(std::count(got.begin(), got.end(), 0xFFFF), static_cast<long>(got.size()))
              << what << ": wrote although it refused";
          continue;
        }
        for (int n = 0; n < rows; ++n) {
          for (int j = 0; j < in; ++j) {
            const int64_t at = (static_cast<int64_t>(n / 64) * (in / 32) + j / 32) * 2048 +
                               ((j % 32) / 2) * 128 + (n % 64) * 2 + j % 2;
            ASSERT_EQ(got[at], want[static_cast<size_t>(r0 + n) * in + j])
                << what << " weight " << j << " of row " << r0 + n;
          }
        }
        EXPECT_EQ(got.back(), 0xFFFF) << what << ": wrote past the tile";
      }
    }
  }
}

TEST(QuantLinear, AutoFollowsTheEnvironment) {
  const char* env = std::getenv("FASTKV_PORTABLE_KERNELS");
  const bool forced = env != nullptr && std::string(env) == "1";
  const bool avx = kernels::quant_avx512_available() && !forced;
  if (avx) {
    EXPECT_STRNE(kernels::quant_kernel_name(), "portable");
  } else {
    EXPECT_STREQ(kernels::quant_kernel_name(), "portable");
  }
  // The interleaved 16-row groups exist exactly where the VNNI kernel reads them: Q8_0, Q4_0,
  // Q4_1 and the K-quants' layers of at least 16 rows on an AVX512-VNNI CPU, the portable
  // kernels not forced.
  const bool vnni = std::string(kernels::quant_kernel_name()) == "avx512-vnni";
  std::mt19937 rng(9);
  BlockMaker maker(rng);
  for (QuantFormat f : kAllFormats) {
    const int in = 2 * kernels::quant_block_weights(f) + (f == QuantFormat::kQ8_0 ? 32 : 0);
    constexpr int out = 25;  // one group of 16 and 9 rows in the file's layout
    const Weights ws = maker.make(f, in, out);
    const QuantLinear lin(ws.blocks.data(), f, in, out, {});
    const bool grouped = vnni && f != QuantFormat::kQ5_0 && f != QuantFormat::kQ5_1;
    EXPECT_EQ(lin.interleaved_rows(), grouped ? 16 : 0) << kernels::quant_format_name(f);
    EXPECT_EQ(QuantLinear(ws.blocks.data(), f, in, 15, {}).interleaved_rows(), 0)
        << kernels::quant_format_name(f) << ": fewer than 16 rows stay in the file's layout";
    const std::vector<float> x = make_acts(2, in, rng);
    std::vector<float> a(2 * out), b(2 * out);
    lin.forward_dot(x.data(), 2, a.data(), QuantIsa::kAuto);
    lin.forward_dot(x.data(), 2, b.data(), avx ? QuantIsa::kAvx512 : QuantIsa::kPortable);
    EXPECT_EQ(a, b) << kernels::quant_format_name(f);
  }
}

TEST(QuantLinear, BadShapesAreErrors) {
  std::vector<uint8_t> blocks(210 * 8);
  EXPECT_THROW(QuantLinear(blocks.data(), QuantFormat::kQ8_0, 48, 2, {}), Error);
  EXPECT_THROW(QuantLinear(blocks.data(), QuantFormat::kQ8_0, 0, 2, {}), Error);
  EXPECT_THROW(QuantLinear(blocks.data(), QuantFormat::kQ8_0, 32, 0, {}), Error);
  EXPECT_THROW(QuantLinear(nullptr, QuantFormat::kQ8_0, 32, 2, {}), Error);
  EXPECT_THROW(QuantLinear(blocks.data(), QuantFormat::kQ8_0, 32, 2, {1.0f}), Error);
  EXPECT_THROW(QuantLinear(blocks.data(), QuantFormat::kQ5_1, 80, 2, {}), Error);
  // K-quant rows are whole 256-weight super-blocks: 32-multiples that are not are refused.
  for (QuantFormat f : {QuantFormat::kQ4_K, QuantFormat::kQ5_K, QuantFormat::kQ6_K}) {
    for (int in : {32, 128, 576}) {
      try {
        QuantLinear(blocks.data(), f, in, 2, {});
        ADD_FAILURE() << kernels::quant_format_name(f) << " in=" << in << " was accepted";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("multiple of 256"), std::string::npos) << e.what();
      }
    }
    EXPECT_NO_THROW(QuantLinear(blocks.data(), f, 512, 2, {}));
  }
  // kQuant layers come from blocks, never from f32 weights.
  EXPECT_THROW(kernels::Linear(std::vector<float>(64), 32, 2, {}, kernels::Backend::kQuant), Error);
}

TEST(QuantLinear, FormatTable) {
  for (QuantFormat f : kAllFormats) {
    const gguf::TypeInfo* ti = gguf::type_info(static_cast<uint32_t>(gguf_type(f)));
    ASSERT_NE(ti, nullptr);
    EXPECT_EQ(kernels::quant_block_weights(f), static_cast<int>(ti->block_size));
    EXPECT_EQ(kernels::quant_block_bytes(f), static_cast<int>(ti->block_bytes));
    EXPECT_EQ(kernels::quant_format_name(f), gguf::type_name(gguf_type(f)));
  }
}

TEST(QuantLinear, LinearWrapsIt) {
  std::mt19937 rng(3);
  BlockMaker maker(rng);
  const Weights ws = maker.make(QuantFormat::kQ4_K, 256, 5);
  const kernels::Linear l(ws.blocks.data(), QuantFormat::kQ4_K, 256, 5, {});
  EXPECT_EQ(l.backend(), kernels::Backend::kQuant);
  EXPECT_STREQ(kernels::backend_name(l.backend()), "quant");
  EXPECT_EQ(l.weight_bytes(), 5 * 144);
  const QuantLinear q(ws.blocks.data(), QuantFormat::kQ4_K, 256, 5, {});
  const std::vector<float> x = make_acts(1, 256, rng);
  std::vector<float> a(5), b(5);
  l.forward(x.data(), 1, a.data());
  q.forward(x.data(), 1, b.data());
  EXPECT_EQ(a, b);
}

// The model's token embeddings stay in the file's type and are dequantised a looked-up row at a
// time (EmbeddingTable::row through io's dequantize_row): every format gives the definition's
// row (within the reader's f32 rounding, as BlockMakerAgreesWithTheReader).
TEST(QuantLinear, EmbeddingRowsOfEveryFormat) {
  std::mt19937 rng(21);
  BlockMaker maker(rng);
  for (QuantFormat f : kAllFormats) {
    const int dim = 512, rows = 6;
    const Weights ws = maker.make(f, dim, rows);
    EmbeddingTable t;
    t.data = ws.blocks.data();
    t.type = gguf_type(f);
    t.row_bytes = gguf::bytes_for(t.type, dim);
    t.rows = rows;
    t.dim = dim;
    std::vector<float> row(dim);
    for (int r : {0, 3, 5}) {
      t.row(r, row.data());
      for (int j = 0; j < dim; ++j) {
        const size_t at = static_cast<size_t>(r) * dim + j;
        ASSERT_NEAR(row[j], ws.w[at], 3 * kEps * ws.a[at] + 1e-30)
            << kernels::quant_format_name(f) << " row " << r << " element " << j;
      }
    }
    EXPECT_THROW(t.row(rows, row.data()), Error);
    // Tied to an LM head that holds its own (interleaved where the VNNI kernel runs) copy of
    // the blocks: every row has the bits of the row read from the table's own bytes.
    const int vocab = 37;  // two groups of 16 and 5 rows
    const Weights wide = maker.make(f, dim, vocab);
    const QuantLinear head(wide.blocks.data(), f, dim, vocab, {});
    EmbeddingTable own = t, tied = t;
    own.data = tied.data = wide.blocks.data();
    own.rows = tied.rows = vocab;
    tied.tied = &head;
    std::vector<float> want(dim), got(dim);
    for (int r = 0; r < vocab; ++r) {
      own.row(r, want.data());
      tied.row(r, got.data());
      ASSERT_EQ(std::memcmp(got.data(), want.data(), dim * sizeof(float)), 0)
          << kernels::quant_format_name(f) << " row " << r << " interleaved rows "
          << head.interleaved_rows();
    }
    EXPECT_THROW(tied.row(vocab, got.data()), Error);
    std::vector<uint8_t> bytes(static_cast<size_t>(t.row_bytes));
    EXPECT_THROW(head.copy_row(-1, bytes.data()), Error);
  }
}

// forward_shared_input (Q/K/V, gate/up): with every layer quantised and a decode-sized n, one
// quantisation of x and one parallel loop over all output rows give each layer exactly what its
// own forward gives (the same integer dots, in the same order per row); with a prefill-sized n,
// x rounded to bf16 once (where the GEMM is bf16) gives each layer its own forward's bits, as it
// does for layers on oneDNN's bf16 matmul; with an f32 layer among them, each layer's own forward
// runs. Layers of different input widths throw.
TEST(QuantLinear, SharedInputMatchesSeparateForwards) {
  std::mt19937 rng(13);
  BlockMaker maker(rng);
  const int in = 256;
  const Weights wq = maker.make(QuantFormat::kQ8_0, in, 7);
  const Weights wk = maker.make(QuantFormat::kQ4_K, in, 3);
  const Weights wv = maker.make(QuantFormat::kQ4_1, in, 5);
  std::vector<float> bias(3), bias_v(5);
  for (int i = 0; i < 3; ++i) bias[i] = 0.25f * static_cast<float>(i + 1);
  for (int i = 0; i < 5; ++i) bias_v[i] = -0.5f * static_cast<float>(i + 1);
  const kernels::Linear q(wq.blocks.data(), QuantFormat::kQ8_0, in, 7, {});
  const kernels::Linear k(wk.blocks.data(), QuantFormat::kQ4_K, in, 3, bias);
  const kernels::Linear v(wv.blocks.data(), QuantFormat::kQ4_1, in, 5, {});
  const kernels::Linear dense(std::vector<float>(wv.w.begin(), wv.w.end()), in, 5, {},
                              kernels::Backend::kF32);
  const kernels::Linear bf16_q(std::vector<float>(wq.w.begin(), wq.w.end()), in, 7, {},
                               kernels::Backend::kBf16);
  const kernels::Linear bf16_v(std::vector<float>(wv.w.begin(), wv.w.end()), in, 5, bias_v,
                               kernels::Backend::kBf16);
  for (int n : {1, 3, kernels::kQuantDotMaxRows, kernels::kQuantDotMaxRows + 9}) {
    const std::vector<float> x = make_acts(n, in, rng);
    std::vector<float> yq(static_cast<size_t>(n) * 7), yk(static_cast<size_t>(n) * 3),
        yv(static_cast<size_t>(n) * 5), yd(yv.size());
    kernels::forward_shared_input({{&q, yq.data()}, {&k, yk.data()}, {&v, yv.data()}}, x.data(), n);
    std::vector<float> eq(yq.size()), ek(yk.size()), ev(yv.size()), ed(yd.size());
    q.forward(x.data(), n, eq.data());
    k.forward(x.data(), n, ek.data());
    v.forward(x.data(), n, ev.data());
    EXPECT_EQ(yq, eq) << n;
    EXPECT_EQ(yk, ek) << n;
    EXPECT_EQ(yv, ev) << n;
    // A dense layer in the group: each runs on its own.
    kernels::forward_shared_input({{&q, yq.data()}, {&dense, yd.data()}}, x.data(), n);
    dense.forward(x.data(), n, ed.data());
    EXPECT_EQ(yq, eq) << n;
    EXPECT_EQ(yd, ed) << n;
    // Layers on oneDNN's bf16 matmul: x rounded once gives each its own forward's bits.
    std::vector<float> b1(yq.size()), b2(yv.size()), e1(yq.size()), e2(yv.size());
    kernels::forward_shared_input({{&bf16_q, b1.data()}, {&bf16_v, b2.data()}}, x.data(), n);
    bf16_q.forward(x.data(), n, e1.data());
    bf16_v.forward(x.data(), n, e2.data());
    EXPECT_EQ(b1, e1) << n;
    EXPECT_EQ(b2, e2) << n;
  }
  // Layers of different widths cannot share an input.
  const Weights w2 = maker.make(QuantFormat::kQ8_0, 64, 2);
  const kernels::Linear narrow(w2.blocks.data(), QuantFormat::kQ8_0, 64, 2, {});
  std::vector<float> x(in), a(7), b(2);
  EXPECT_THROW(kernels::forward_shared_input({{&q, a.data()}, {&narrow, b.data()}}, x.data(), 1),
               Error);
  const int np = kernels::kQuantDotMaxRows + 9;  // the GEMM path
  std::vector<float> xp(static_cast<size_t>(np) * in), ap(static_cast<size_t>(np) * 7),
      bp(static_cast<size_t>(np) * 2);
  EXPECT_THROW(
      kernels::forward_shared_input({{&q, ap.data()}, {&narrow, bp.data()}}, xp.data(), np), Error);
  const kernels::Linear bf16_narrow(std::vector<float>(w2.w.begin(), w2.w.end()), 64, 2, {},
                                    kernels::Backend::kBf16);
  EXPECT_THROW(kernels::forward_shared_input({{&bf16_q, ap.data()}, {&bf16_narrow, bp.data()}},
                                             xp.data(), np),
               Error);
}

// The prefill path keeps oneDNN primitives per row count: a server sees ever new prompt lengths,
// so at most 32 shapes stay cached, and a shape dropped earlier gives the same result again.
TEST(QuantLinear, GemmPrimitiveCacheIsBounded) {
  if (!QuantLinear::gemm_uses_bf16()) GTEST_SKIP() << "no native bf16: the sgemm path caches nothing";
  std::mt19937 rng(17);
  BlockMaker maker(rng);
  const int in = 64, out = 8;
  const Weights ws = maker.make(QuantFormat::kQ4_0, in, out);
  const QuantLinear lin(ws.blocks.data(), QuantFormat::kQ4_0, in, out, {});
  const std::vector<float> x = make_acts(80, in, rng);
  std::vector<float> first(static_cast<size_t>(25) * out), again(first.size());
  lin.forward_gemm(x.data(), 25, first.data());
  for (int n = 26; n <= 80; ++n) {
    std::vector<float> y(static_cast<size_t>(n) * out);
    lin.forward_gemm(x.data(), n, y.data());
    EXPECT_LE(lin.cached_gemm_shapes(), 32u) << n;
  }
  EXPECT_EQ(lin.cached_gemm_shapes(), 32u);
  lin.forward_gemm(x.data(), 25, again.data());  // rebuilt after being dropped
  EXPECT_EQ(first, again);
}

// A layer wider than one GEMM tile (an 8B Llama's MLP) is split into tiles of output rows, each
// multiplied into a dense block and copied into its columns of y: every column has the bits of
// the same rows as a layer of their own, which is one tile written straight into y.
TEST(QuantLinear, LayersWiderThanOneTileGiveEachTilesColumns) {
  if (!QuantLinear::gemm_uses_bf16()) GTEST_SKIP() << "no native bf16: the sgemm path has no such tiles";
  std::mt19937 rng(23);
  BlockMaker maker(rng);
  for (QuantFormat f : {QuantFormat::kQ4_0, QuantFormat::kQ6_K}) {
    const int in = 4096;
    const int tile = QuantLinear::kGemmTileWeights / in / 64 * 64;  // rows of the first tile
    const int out = tile + 64 + 16;  // two tiles, the last one with a 16-row tail
    const Weights ws = maker.make(f, in, out);
    const QuantLinear whole(ws.blocks.data(), f, in, out, {});
    const int64_t row_bytes = static_cast<int64_t>(in / kernels::quant_block_weights(f)) *
                              kernels::quant_block_bytes(f);
    const QuantLinear head(ws.blocks.data(), f, in, tile, {});
    const QuantLinear rest(ws.blocks.data() + tile * row_bytes, f, in, out - tile, {});
    for (int n : {24, 70}) {
      const std::vector<float> x = make_acts(n, in, rng);
      std::vector<float> y(static_cast<size_t>(n) * out, NAN);
      std::vector<float> yh(static_cast<size_t>(n) * tile), yr(static_cast<size_t>(n) * (out - tile));
      whole.forward_gemm(x.data(), n, y.data());
      head.forward_gemm(x.data(), n, yh.data());
      rest.forward_gemm(x.data(), n, yr.data());
      for (int i = 0; i < n; ++i) {
        for (int j = 0; j < out; ++j) {
          const float want = j < tile ? yh[static_cast<size_t>(i) * tile + j]
                                      : yr[static_cast<size_t>(i) * (out - tile) + (j - tile)];
          ASSERT_EQ(y[static_cast<size_t>(i) * out + j], want)
              << kernels::quant_format_name(f) << " n=" << n << " row " << i << " column " << j;
        }
      }
    }
  }
}

}  // namespace
}  // namespace fastkv
