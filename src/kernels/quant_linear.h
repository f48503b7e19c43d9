// A linear layer y = x · Wᵀ (+ b) over weights kept in a GGUF block format (Q8_0, Q4_0, Q4_1),
// read in place (from the file's mapping): no f32 or bf16 copy of the matrix is held, so a decode
// step streams ~1.06 (Q8_0), ~0.56 (Q4_0) or ~0.63 (Q4_1) bytes per parameter instead of 2.
//
// Block formats (32 weights each, little-endian, rows of `in` weights in in/32 whole blocks):
//   Q8_0, 34 bytes: { f16 d; int8 q[32] }             w[j] = d · q[j]
//   Q4_0, 18 bytes: { f16 d; uint8 qs[16] }           w[j] = d · (nib[j] - 8)
//   Q4_1, 20 bytes: { f16 d; f16 m; uint8 qs[16] }    w[j] = d · nib[j] + m
// where nib[j] = qs[j] & 15 and nib[j + 16] = qs[j] >> 4 for j < 16.
//
// forward() picks one of two paths by the row count n:
//   n <= kQuantDotMaxRows (decode): each activation row is quantised once to 32-element int8
//     blocks with an f32 scale (symmetric, round to nearest: x ≈ s · qx, |qx| <= 127), then every
//     output row is a sum over blocks of integer dot products times d · s (OpenMP over output
//     rows). AVX-512 (VNNI dpbusd where the CPU has avx512vnni, else AVX-512BW maddubs/madd) or
//     portable scalar code, chosen at run time; FASTKV_PORTABLE_KERNELS=1 in the environment forces
//     the portable code.
//   larger n (prefill): the weights are dequantised to f32 a tile of output rows at a time and
//     multiplied with OpenBLAS sgemm (exact f32 weights, f32 activations).
#pragma once

#include <cstdint>
#include <vector>

namespace fastkv::kernels {

// The block formats QuantLinear reads (the kernels' own names: the kernels layer does not see
// io/; the model converts gguf::TensorType).
enum class QuantFormat { kQ8_0, kQ4_0, kQ4_1 };

// "Q8_0" | "Q4_0" | "Q4_1"
const char* quant_format_name(QuantFormat f);
// Bytes of one 32-weight block: 34, 18, 20.
int quant_block_bytes(QuantFormat f);

// Which integer-dot kernel runs: kAuto = AVX-512 where the CPU has AVX-512BW and
// FASTKV_PORTABLE_KERNELS is not 1, else portable. kAvx512 = VNNI dpbusd where the CPU has
// avx512vnni, else AVX-512BW maddubs/madd; kAvx512Bw = the BW kernel even where VNNI exists
// (so tests cover both).
enum class QuantIsa { kAuto, kPortable, kAvx512, kAvx512Bw };
// Whether the AVX-512 kernel can run here (built in, CPU has avx512bw).
bool quant_avx512_available();
// The kernel kAuto resolves to ("avx512-vnni", "avx512bw" or "portable").
const char* quant_kernel_name();

// Row counts up to this take the integer-dot path; more take dequantise + sgemm. Measured once
// on one 2048 × 2048 Q4_0 layer (AVX-512 VNNI, 2 cores, load average ~3), best of 5, ms:
//   n          1     2     4     8     12    16    32
//   dot        0.29  0.51  1.46  3.09  4.49  5.06  10.2
//   sgemm      4.10  3.96  8.18  9.37  9.33  9.12  11.3
// (the portable dot: 3.2 ms at n = 1; oneDNN bf16: 0.79 ms at n = 1). The dot path grows ~0.3 ms
// a row, the tile path is dominated by dequantising the whole matrix: they cross near n = 35.
constexpr int kQuantDotMaxRows = 32;

class QuantLinear {
 public:
  // blocks: [out, in/32] blocks of `format`, row after row (a GGUF tensor with ne = [in, out]);
  // not owned: must outlive the layer. bias: [out] or empty. Throws fastkv::Error when in is not
  // a positive multiple of 32 or out < 1.
  QuantLinear(const uint8_t* blocks, QuantFormat format, int in, int out, std::vector<float> bias);

  // y[n, out] = x[n, in] · Wᵀ (+ bias), by the path n selects (above).
  void forward(const float* x, int n, float* y) const;
  // The integer-dot path for any n (activations quantised to q8 blocks), on kernel `isa`
  // (kAvx512 where unavailable throws fastkv::Error).
  void forward_dot(const float* x, int n, float* y, QuantIsa isa = QuantIsa::kAuto) const;
  // The dequantise + sgemm path for any n.
  void forward_gemm(const float* x, int n, float* y) const;

  int in() const { return in_; }
  int out() const { return out_; }
  QuantFormat format() const { return format_; }
  // The quantised weight bytes (out · in/32 · block bytes) plus the bias.
  int64_t weight_bytes() const;

 private:
  const uint8_t* blocks_;   // [out, in/32] blocks (not owned)
  QuantFormat format_;
  int in_, out_;
  int64_t row_bytes_;       // in/32 · block bytes
  std::vector<float> bias_;  // [out] or empty
};

}  // namespace fastkv::kernels
