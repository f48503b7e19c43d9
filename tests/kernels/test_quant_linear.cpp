// QuantLinear (Q8_0, Q4_0, Q4_1 weights read in place) against a double-precision reference
// computed from the dequantised weights (io/quant's dequantize_row) and the original f32
// activations.
//
// Tolerances, per output y[i, r] (ε = 2^-24, the f32 unit round-off):
//   integer-dot path: the activations of block b are replaced by s_b · qx with
//     s_b = max|x_b| / 127 and |x_j - s_b · qx_j| <= s_b / 2 (round to nearest), so the exact
//     result moves by at most sum_b (s_b / 2) · sum_{j in b} |w_j|. The integer block dots are
//     exact; each block's term d · s · dot (+ m · s · sum qx) is at most
//     A_b · sum_j (|x_j| + s_b) with A_b = |d| · Qmax + |m| (Qmax = 128 for Q8_0, 8 for Q4_0,
//     15 for Q4_1), and summing nb such terms in f32 (plus a few roundings per term and the
//     16-lane reduction) costs at most (nb + 16) · ε times their sum. We allow 1.01 × the
//     first bound plus 2 × the second.
//   dequantise + GEMM path, f32 sgemm (CPUs without native bf16): the f32 weights equal
//     dequantize_row's exactly (same formula), so only the f32 dot product of `in` terms
//     differs: at most in · ε · sum_j |w_j x_j| (γ_in); we allow twice that.
//   dequantise + GEMM path, oneDNN bf16 (native bf16 CPUs): weights and activations rounded to
//     bf16 (8 significand bits, 2^-9 relative each, 2^-8 per product), f32 accumulation: as in
//     test_backend_bf16.cpp we allow 2^-7 · sum_j |w_j x_j|, twice the worst case.
// Every dot-path case runs on the portable kernel and, where the CPU has AVX-512BW, on both
// AVX-512 kernels (VNNI where the CPU has it, and BW).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/quant.h"
#include "kernels/linear.h"
#include "kernels/quant_linear.h"

namespace fastkv {
namespace {

using kernels::QuantFormat;
using kernels::QuantIsa;
using kernels::QuantLinear;

constexpr double kEps = 1.0 / (1 << 24);

struct Weights {
  std::vector<uint8_t> blocks;  // [out, in/32] blocks
  std::vector<float> deq;       // [out, in] dequantised by io/quant
};

// Q4_1 blocks built by hand (io/quant does not write Q4_1): d = (max - min) / 15, m = min, both
// stored as f16; q = round((x - m) / d) clamped to 0..15 against the stored values.
std::vector<uint8_t> quantize_q4_1(const std::vector<float>& w) {
  std::vector<uint8_t> out(w.size() / 32 * 20);
  for (size_t b = 0; b < w.size() / 32; ++b) {
    const float* x = w.data() + 32 * b;
    uint8_t* blk = out.data() + 20 * b;
    const float lo = *std::min_element(x, x + 32), hi = *std::max_element(x, x + 32);
    const uint16_t dh = gguf::f32_to_f16((hi - lo) / 15), mh = gguf::f32_to_f16(lo);
    const float d = gguf::f16_to_f32(dh), m = gguf::f16_to_f32(mh);
    blk[0] = dh & 0xFF, blk[1] = dh >> 8, blk[2] = mh & 0xFF, blk[3] = mh >> 8;
    auto q = [&](float v) {
      return d == 0 ? 0 : static_cast<int>(std::clamp(std::nearbyint((v - m) / d), 0.0f, 15.0f));
    };
    for (int j = 0; j < 16; ++j) blk[4 + j] = static_cast<uint8_t>(q(x[j]) | (q(x[j + 16]) << 4));
  }
  return out;
}

gguf::TensorType gguf_type(QuantFormat f) {
  return f == QuantFormat::kQ8_0
             ? gguf::TensorType::Q8_0
             : (f == QuantFormat::kQ4_0 ? gguf::TensorType::Q4_0 : gguf::TensorType::Q4_1);
}

Weights make_weights(QuantFormat f, int in, int out, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(in) * out);
  for (float& v : w) v = nd(rng);
  // Some rows with a wider range, and (Q4_1) a shifted one, so scales and mins vary.
  for (int r = 0; r < out; r += 5) {
    for (int k = 0; k < in; ++k) w[static_cast<size_t>(r) * in + k] *= 20.0f;
  }
  if (out > 3) {
    for (int k = 0; k < in; ++k) w[3 * static_cast<size_t>(in) + k] += 0.7f;
  }
  Weights ws;
  ws.blocks = f == QuantFormat::kQ4_1
                  ? quantize_q4_1(w)
                  : gguf::quantize(gguf_type(f), w.data(), static_cast<int64_t>(w.size()));
  if (f == QuantFormat::kQ8_0) {
    // The format allows q = -128, which the quantiser never writes: plant some.
    for (size_t b = 0; b < ws.blocks.size() / 34; b += 3) ws.blocks[34 * b + 2 + b % 32] = 0x80;
  }
  EXPECT_EQ(ws.blocks.size(), static_cast<size_t>(out) * (in / 32) * kernels::quant_block_bytes(f));
  ws.deq.resize(w.size());
  gguf::dequantize_row(gguf_type(f), ws.blocks.data(), ws.deq.data(),
                       static_cast<int64_t>(w.size()));
  return ws;
}

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

// |w| · Qmax + |m| of block b of row r (see the header comment).
double block_bound(QuantFormat f, const uint8_t* row, int b) {
  auto f16 = [](const uint8_t* p) {
    return static_cast<double>(gguf::f16_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8))));
  };
  switch (f) {
    case QuantFormat::kQ8_0:
      return std::fabs(f16(row + 34 * b)) * 128;
    case QuantFormat::kQ4_0:
      return std::fabs(f16(row + 18 * b)) * 8;
    case QuantFormat::kQ4_1:
      return std::fabs(f16(row + 20 * b)) * 15 + std::fabs(f16(row + 20 * b + 2));
  }
  return 0;
}

struct Path {
  const char* name;
  bool dot;
  QuantIsa isa;       // dot paths
  bool bf16 = false;  // GEMM paths: the oneDNN bf16 tiles (else f32 sgemm)
};

TEST(QuantLinear, MatchesDoubleReference) {
  std::mt19937 rng(11);
  std::vector<Path> paths = {{"portable", true, QuantIsa::kPortable},
                             {"sgemm", false, QuantIsa::kAuto, false}};
  if (QuantLinear::gemm_uses_bf16()) paths.push_back({"bf16gemm", false, QuantIsa::kAuto, true});
  if (kernels::quant_avx512_available()) {
    paths.push_back({"avx512", true, QuantIsa::kAvx512});  // VNNI where the CPU has it
    paths.push_back({"avx512bw", true, QuantIsa::kAvx512Bw});
  }
  std::vector<double> worst(paths.size(), 0);  // max |error| / tolerance per path
  std::printf("dot kernel here: %s; GEMM path in %s\n", kernels::quant_kernel_name(),
              QuantLinear::gemm_uses_bf16() ? "bf16 (oneDNN)" : "f32 (sgemm)");
  for (QuantFormat f : {QuantFormat::kQ8_0, QuantFormat::kQ4_0, QuantFormat::kQ4_1}) {
    for (int k : {1, 2, 33}) {
      const int in = 32 * k, nb = k;
      for (int out : {1, 7, 257}) {
        const Weights ws = make_weights(f, in, out, rng);
        std::vector<float> bias(out);
        for (int r = 0; r < out; ++r) bias[r] = 0.25f * static_cast<float>(r % 5) - 0.5f;
        const QuantLinear lin(ws.blocks.data(), f, in, out, bias);
        EXPECT_EQ(lin.weight_bytes(), static_cast<int64_t>(ws.blocks.size() + 4 * out));
        const int64_t row_bytes = static_cast<int64_t>(nb) * kernels::quant_block_bytes(f);
        for (int n : {1, 3, 17, 200}) {
          const std::vector<float> x = make_acts(n, in, rng);
          // Reference and bounds, [n, out] each.
          std::vector<double> ref(static_cast<size_t>(n) * out), tol_dot(ref.size()),
              tol_sgemm(ref.size()), tol_bf16(ref.size());
          for (int i = 0; i < n; ++i) {
            const float* xi = x.data() + static_cast<size_t>(i) * in;
            for (int r = 0; r < out; ++r) {
              const float* wr = ws.deq.data() + static_cast<size_t>(r) * in;
              double y = bias[r], l1 = 0, quant = 0, terms = 0;
              for (int b = 0; b < nb; ++b) {
                double amax = 0, wsum = 0, xsum = 0;
                for (int j = 0; j < 32; ++j)
                  amax = std::max(amax, std::fabs(double{xi[32 * b + j]}));
                const double s = amax / 127;
                for (int j = 0; j < 32; ++j) {
                  const double wv = wr[32 * b + j], xv = xi[32 * b + j];
                  y += wv * xv;
                  l1 += std::fabs(wv * xv);
                  wsum += std::fabs(wv);
                  xsum += std::fabs(xv) + s;
                }
                quant += s / 2 * wsum;
                terms += block_bound(f, ws.blocks.data() + r * row_bytes, b) * xsum;
              }
              const size_t at = static_cast<size_t>(i) * out + r;
              ref[at] = y;
              tol_dot[at] = 1.01 * quant + 2 * (nb + 16) * kEps * terms + 1e-6;
              tol_sgemm[at] = 2 * (in + 2) * kEps * (l1 + std::fabs(bias[r])) + 1e-6;
              tol_bf16[at] = l1 / 128 + 2 * (in + 2) * kEps * std::fabs(bias[r]) + 1e-6;
            }
          }
          for (size_t pi = 0; pi < paths.size(); ++pi) {
            const Path& p = paths[pi];
            std::vector<float> y(static_cast<size_t>(n) * out, NAN);
            if (p.dot) {
              lin.forward_dot(x.data(), n, y.data(), p.isa);
            } else {
              lin.forward_gemm(x.data(), n, y.data(), p.bf16);
            }
            const std::vector<double>& tol = p.dot ? tol_dot : (p.bf16 ? tol_bf16 : tol_sgemm);
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
  }
  for (size_t pi = 0; pi < paths.size(); ++pi) {
    std::printf("%-9s worst |error| / tolerance %.3f\n", paths[pi].name, worst[pi]);
  }
}

// The AVX-512 and portable kernels add the same exact integer block dots; only the f32
// summation order differs, so they agree to a few ulps of the summed magnitude.
TEST(QuantLinear, Avx512AgreesWithPortable) {
  if (!kernels::quant_avx512_available()) GTEST_SKIP() << "no AVX-512BW here";
  std::mt19937 rng(5);
  for (QuantFormat f : {QuantFormat::kQ8_0, QuantFormat::kQ4_0, QuantFormat::kQ4_1}) {
    const int in = 576, out = 96, n = 2;
    const Weights ws = make_weights(f, in, out, rng);
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

// kAuto runs the AVX-512 kernel where the CPU has AVX-512BW, unless FASTKV_PORTABLE_KERNELS=1
// (CTest runs this binary a second time with it set: QuantLinearPortableKernels).
TEST(QuantLinear, AutoFollowsTheEnvironment) {
  const char* env = std::getenv("FASTKV_PORTABLE_KERNELS");
  const bool forced = env != nullptr && std::string(env) == "1";
  const bool avx = kernels::quant_avx512_available() && !forced;
  if (avx) {
    EXPECT_STRNE(kernels::quant_kernel_name(), "portable");
  } else {
    EXPECT_STREQ(kernels::quant_kernel_name(), "portable");
  }
  std::mt19937 rng(9);
  const Weights ws = make_weights(QuantFormat::kQ4_1, 96, 9, rng);
  const QuantLinear lin(ws.blocks.data(), QuantFormat::kQ4_1, 96, 9, {});
  const std::vector<float> x = make_acts(2, 96, rng);
  std::vector<float> a(18), b(18);
  lin.forward_dot(x.data(), 2, a.data(), QuantIsa::kAuto);
  lin.forward_dot(x.data(), 2, b.data(), avx ? QuantIsa::kAvx512 : QuantIsa::kPortable);
  EXPECT_EQ(a, b);
}

TEST(QuantLinear, BadShapesAreErrors) {
  std::vector<uint8_t> blocks(34 * 4);
  EXPECT_THROW(QuantLinear(blocks.data(), QuantFormat::kQ8_0, 48, 2, {}), Error);
  EXPECT_THROW(QuantLinear(blocks.data(), QuantFormat::kQ8_0, 0, 2, {}), Error);
  EXPECT_THROW(QuantLinear(blocks.data(), QuantFormat::kQ8_0, 32, 0, {}), Error);
  EXPECT_THROW(QuantLinear(nullptr, QuantFormat::kQ8_0, 32, 2, {}), Error);
  EXPECT_THROW(QuantLinear(blocks.data(), QuantFormat::kQ8_0, 32, 2, {1.0f}), Error);
  // kQuant layers come from blocks, never from f32 weights.
  EXPECT_THROW(kernels::Linear(std::vector<float>(64), 32, 2, {}, kernels::Backend::kQuant), Error);
}

TEST(QuantLinear, LinearWrapsIt) {
  std::mt19937 rng(3);
  const Weights ws = make_weights(QuantFormat::kQ4_0, 64, 5, rng);
  const kernels::Linear l(ws.blocks.data(), QuantFormat::kQ4_0, 64, 5, {});
  EXPECT_EQ(l.backend(), kernels::Backend::kQuant);
  EXPECT_STREQ(kernels::backend_name(l.backend()), "quant");
  EXPECT_EQ(l.weight_bytes(), 5 * 2 * 18);
  const QuantLinear q(ws.blocks.data(), QuantFormat::kQ4_0, 64, 5, {});
  const std::vector<float> x = make_acts(1, 64, rng);
  std::vector<float> a(5), b(5);
  l.forward(x.data(), 1, a.data());
  q.forward(x.data(), 1, b.data());
  EXPECT_EQ(a, b);
}

// forward_shared_input (Q/K/V, gate/up): with every layer quantised and a decode-sized n, one
// quantisation of x and one parallel loop over all output rows give each layer exactly what its
// own forward gives (the same integer dots, in the same order per row); with a dense layer among
// them, or a prefill-sized n, each layer's own forward runs.
TEST(QuantLinear, SharedInputMatchesSeparateForwards) {
  std::mt19937 rng(13);
  const int in = 96;
  const Weights wq = make_weights(QuantFormat::kQ8_0, in, 7, rng);
  const Weights wk = make_weights(QuantFormat::kQ4_0, in, 3, rng);
  const Weights wv = make_weights(QuantFormat::kQ4_1, in, 5, rng);
  std::vector<float> bias(3);
  for (int i = 0; i < 3; ++i) bias[i] = 0.25f * static_cast<float>(i + 1);
  const kernels::Linear q(wq.blocks.data(), QuantFormat::kQ8_0, in, 7, {});
  const kernels::Linear k(wk.blocks.data(), QuantFormat::kQ4_0, in, 3, bias);
  const kernels::Linear v(wv.blocks.data(), QuantFormat::kQ4_1, in, 5, {});
  const kernels::Linear dense(std::vector<float>(wv.deq), in, 5, {}, kernels::Backend::kF32);
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
  }
  // Layers of different widths cannot share an input.
  const Weights w2 = make_weights(QuantFormat::kQ8_0, 64, 2, rng);
  const kernels::Linear narrow(w2.blocks.data(), QuantFormat::kQ8_0, 64, 2, {});
  std::vector<float> x(in), a(7), b(2);
  EXPECT_THROW(kernels::forward_shared_input({{&q, a.data()}, {&narrow, b.data()}}, x.data(), 1),
               Error);
}

}  // namespace
}  // namespace fastkv
