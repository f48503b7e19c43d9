// A linear layer y = x · Wᵀ (+ b) over weights kept in a GGUF block format (Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), read in place (from the file's mapping): no f32 or bf16 copy of
// the matrix is held, so a decode step streams the format's bytes per parameter instead of 2:
// 1.06 (Q8_0), 0.56 (Q4_0), 0.63 (Q4_1), 0.69 (Q5_0), 0.75 (Q5_1), 0.56 (Q4_K), 0.69 (Q5_K),
// 0.82 (Q6_K).
//
// Block formats (little-endian, f16 = IEEE half; rows of `in` weights in whole blocks):
//   32 weights a block, where nib[j] = qs[j] & 15 and nib[j + 16] = qs[j] >> 4 for j < 16, and
//   hb[j] = bit j of the u32 qh:
//   Q8_0, 34 bytes: { f16 d; int8 q[32] }                      w[j] = d · q[j]
//   Q4_0, 18 bytes: { f16 d; uint8 qs[16] }                    w[j] = d · (nib[j] - 8)
//   Q4_1, 20 bytes: { f16 d; f16 m; uint8 qs[16] }             w[j] = d · nib[j] + m
//   Q5_0, 22 bytes: { f16 d; u32 qh; uint8 qs[16] }            w[j] = d · (nib[j] + 16 hb[j] - 16)
//   Q5_1, 24 bytes: { f16 d; f16 m; u32 qh; uint8 qs[16] }     w[j] = d · (nib[j] + 16 hb[j]) + m
//   256 weights a super-block (`in` a multiple of 256):
//   Q4_K, 144 bytes: { f16 d; f16 dmin; uint8 scales[12]; uint8 qs[128] }: 8 sub-blocks u of 32
//     with 6-bit scale sc[u] and min mn[u] packed in `scales`; sub-block 2g takes the low and 2g+1
//     the high nibbles of qs[32g .. 32g+31]:      w[32u + l] = d · sc[u] · q - dmin · mn[u]
//   Q5_K, 176 bytes: { f16 d; f16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128] }: as Q4_K
//     with q += 16 · (bit u of qh[l])
//   Q6_K, 210 bytes: { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d }: 6-bit q (4 low bits
//     from ql, 2 high from qh, see quant_linear.cpp), one signed scale per 16 weights:
//     w[i] = d · scales[i / 16] · (q[i] - 32)
// docs/gguf.md has the table; src/io/quant.cpp decodes the same layouts for the reader.
//
// forward() picks one of two paths by the row count n:
//   n <= kQuantDotMaxRows (decode): each activation row is quantised once to 32-element int8
//     blocks with an f32 scale (symmetric, round to nearest: x ≈ s · qx, |qx| <= 127), then every
//     output row is a sum of exact integer dot products, one per weight block or (sub-)block
//     (a K-quant sub-block of 32 or 16 lies inside one activation block), each times its
//     d · scale · s, plus min terms m · s · sum(qx) (Q4_1, Q5_1, Q4_K, Q5_K) (OpenMP over output
//     rows, handed out in chunks of about 64 KiB of weights). AVX-512 (VNNI dpbusd where the CPU has avx512vnni, else AVX-512BW maddubs/madd) or
//     portable scalar code, chosen at run time; FASTKV_PORTABLE_KERNELS=1 in the environment forces
//     the portable code. With n >= 2 (batched decode) multi-row kernels unpack each weight block
//     once for up to 4 rows (8 a call); every row's result has exactly the bits it has with n = 1.
//   Interleaved groups (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K where the dot kernels are
//     AVX512-VNNI ones; not Q5_0 / Q5_1): at construction the rows are copied, 16 at a time,
//     into a layout where lane r of a 64-byte vector is row r, so one dpbusd serves 16 output
//     rows and no sum crosses lanes (quant_interleaved_avx512.inc). Group G (rows 16 G ..
//     16 G + 15) is one group-block per block column b (K-quants: per super-block), each of
//     16 · block bytes: the block's f16 fields, field h of the 16 rows at 32 h (d; Q4_1 d, m;
//     Q4_K / Q5_K d, dmin; Q6_K its trailing d), then all its other bytes as 4-byte dwords, dword
//     c of row r at 32 · fields + 64 c + 4 r (Q4_0 / Q4_1: 4 dwords = the block's 16 nibble
//     bytes; Q8_0: 8 dwords = its 32 int8; Q4_K: 3 of scales, 32 of qs; Q5_K: 3 of scales, 8 of
//     qh, 32 of qs; Q6_K: 32 of ql, 16 of qh, 4 of scales). The last out % 16 rows follow the
//     groups in the file's layout. The copy is the layer's own (the same bytes as the file's
//     rows, moved, so the file's pages can be dropped: Model does); the other kernels (portable,
//     BW, the f32 prefill tiles) read a group's rows through a per-row copy back to the file's
//     layout; the bf16 prefill tiles (AVX512-BF16) decode whole groups 16 rows at once
//     (K-quants: each group-block transposed back to 16 file-layout blocks, then the row
//     decoder).
//   larger n (prefill): the weights are dequantised a tile of output rows at a time and
//     multiplied by a GEMM: where the CPU has native bf16 (AMX / AVX512-BF16) the tile (about
//     16 MiB of bf16; AVX512-BF16 decoders for every format, bit-identical to the portable
//     ones) and the activations are rounded to bf16 for a oneDNN matmul (f32 accumulation, as
//     the bf16 backend), the tile handed over plain unless oneDNN wants another layout (AMX's
//     BA16a64b2a: interleaved groups, Q8_0 / Q4_0 / Q4_1 and the K-quants, are decoded straight
//     into it, dequantize_rows_blocked; other tiles are reordered into it by oneDNN); elsewhere an f32 tile (about 1 MiB) goes to OpenBLAS sgemm (exact f32 weights).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace fastkv::kernels {

// The block formats QuantLinear reads (the kernels' own names: the kernels layer does not see
// io/; the model converts gguf::TensorType).
enum class QuantFormat { kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ4_K, kQ5_K, kQ6_K };

// "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"
const char* quant_format_name(QuantFormat f);
// Weights of one block: 32, or 256 for the K-quants (Q4_K, Q5_K, Q6_K).
int quant_block_weights(QuantFormat f);
// Bytes of one block: 34, 18, 20, 22, 24, 144, 176, 210.
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

// The prefill tiles' dequantiser, one row: dst[in] = the bf16 (round to nearest even) of the
// `in` weights of format f at row. kPortable: the portable decoder (f32, then rounded);
// kAvx512 / kAvx512Bw: the AVX512-BF16 code (quant_bf16_dequant_available(), else
// fastkv::Error); kAuto: what forward_gemm uses (AVX512-BF16 where available and
// FASTKV_PORTABLE_KERNELS is not 1). Both give the same bits.
void quant_dequantize_row_bf16(QuantFormat f, const uint8_t* row, int in, uint16_t* dst,
                               QuantIsa isa = QuantIsa::kAuto);
// Whether the AVX512-BF16 dequantiser can run here (built in, CPU has avx512bf16).
bool quant_bf16_dequant_available();

// Row counts up to this take the integer-dot path; more take dequantise + GEMM. Measured on one
// 2048 × 2048 Q4_0 layer with `fastkv_kernel_bench --benchmark_filter=BM_QuantLinear`
// (docs/benchmarks.md has the numbers): the dot path grows ~0.15-0.2 ms a row while the tile
// path is dominated by dequantising the whole matrix, so they meet between 32 and 48 rows on this
// machine; up to 24 the dot path is clearly faster, and beyond that the GEMM path (which rounds
// activations to bf16, not to q8 blocks) costs about the same, so it takes over.
constexpr int kQuantDotMaxRows = 24;

class QuantLinear {
 public:
  // blocks: [out, in / B] blocks of `format` (B = quant_block_weights: 32, or 256 for K-quants),
  // row after row (a GGUF tensor with ne = [in, out]); not owned: must outlive the layer.
  // bias: [out] or empty. Throws fastkv::Error when in is not a positive multiple of B or
  // out < 1.
  QuantLinear(const uint8_t* blocks, QuantFormat format, int in, int out, std::vector<float> bias);
  ~QuantLinear();
  QuantLinear(QuantLinear&&) noexcept;
  QuantLinear& operator=(QuantLinear&&) noexcept;

  // y[n, out] = x[n, in] · Wᵀ (+ bias), by the path n selects (above).
  void forward(const float* x, int n, float* y) const;
  // The integer-dot path for any n (activations quantised to q8 blocks), on kernel `isa`
  // (kAvx512 where unavailable throws fastkv::Error).
  void forward_dot(const float* x, int n, float* y, QuantIsa isa = QuantIsa::kAuto) const;
  // Most layers forward_dot_group takes at once.
  static constexpr int kMaxSharedInput = 8;
  // The integer-dot path of `count` (<= kMaxSharedInput) layers that read the same x[n, in]: x is quantised
  // once and one parallel loop covers every layer's output rows; ys[i] is layer i's [n, out_i].
  static void forward_dot_group(const QuantLinear* const* layers, float* const* ys, int count,
                                const float* x, int n, QuantIsa isa = QuantIsa::kAuto);
  // The dequantise + GEMM path for any n: bf16 oneDNN where gemm_uses_bf16() and allow_bf16,
  // else f32 sgemm (allow_bf16 = false lets tests cover the sgemm code on a bf16 CPU).
  void forward_gemm(const float* x, int n, float* y, bool allow_bf16 = true) const;
  // The GEMM path of `count` (<= kMaxSharedInput) layers that read the same x[n, in]: where the
  // GEMM is bf16 (every layer), x is rounded to bf16 once for all of them, else each layer's
  // forward_gemm runs. ys[i] is layer i's [n, out_i]; the results are each layer's forward_gemm
  // bits.
  static void forward_gemm_group(const QuantLinear* const* layers, float* const* ys, int count,
                                 const float* x, int n);
  // Row-count shapes whose oneDNN primitives the bf16 GEMM path holds: at most 32, the least
  // recently used dropped first (0 without native bf16).
  size_t cached_gemm_shapes() const;
  // Whether the GEMM path rounds to bf16 (this CPU has native bf16).
  static bool gemm_uses_bf16();
  // The bf16 GEMM path's tile: about this many weights (whole multiples of 64 rows), dequantised
  // at once and multiplied by one oneDNN matmul; a layer with more weights is split into tiles of
  // output rows (quant_linear.cpp, forward_gemm_bf16).
  static constexpr int kGemmTileWeights = 4 << 20;

  int in() const { return in_; }
  int out() const { return out_; }
  QuantFormat format() const { return format_; }
  // The quantised weight bytes (out · in/B · block bytes) plus the bias.
  int64_t weight_bytes() const;
  // dst[rows, in] = the bf16 weights of rows [r0, r0 + rows), as the prefill tiles take them
  // (quant_dequantize_row_bf16 of each row in the file's layout, bit for bit; whole interleaved
  // groups are decoded 16 rows at once).
  void dequantize_rows_bf16(int r0, int rows, uint16_t* dst) const;
  // dst = the bf16 weights of rows [r0, r0 + rows) as the [K = in, N = rows] weights of a oneDNN
  // matmul in AMX's blocked layout BA16a64b2a: element (k, n) of the tile (weight k of row r0 + n)
  // at ((n / 64) · (in / 32) + k / 32) · 2048 + ((k % 32) / 2) · 128 + (n % 64) · 2 + k % 2,
  // each with the bits dequantize_rows_bf16 gives it. Only from interleaved groups with an
  // AVX512-BF16 writer, r0 and rows multiples of 64, every row in a group; returns false (and
  // writes nothing) otherwise.
  bool dequantize_rows_blocked(int r0, int rows, uint16_t* dst) const;
  // dst[in / B · block bytes] = row r's blocks in the file's layout (copied back from its
  // interleaved group where it has one): a tied embedding table reads its rows here, so the
  // file's pages of the table need not come back (r outside [0, out) throws fastkv::Error).
  void copy_row(int r, uint8_t* dst) const;
  // Rows held in interleaved groups (a multiple of 16; 0 = the file's layout, read in place).
  int interleaved_rows() const { return 16 * groups_; }

 private:
  const uint8_t* blocks_;  // [out, in/B] blocks (not owned)
  QuantFormat format_;
  int in_, out_;
  int64_t row_bytes_;        // in/B · block bytes
  std::vector<float> bias_;  // [out] or empty
  // Interleaved groups (above): groups_ of them, then the out - 16 groups_ tail rows in the
  // file's layout, all in packed_ (null when groups_ = 0: blocks_ is read in place).
  int groups_ = 0;
  struct AlignedFree {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t[], AlignedFree> packed_;

  // Row r in the file's layout: a pointer into the weights, or, for a row of an interleaved
  // group, `scratch` ([row_bytes_]) filled with it.
  const uint8_t* file_row(int r, uint8_t* scratch) const;
  struct Gemm;               // cached oneDNN primitives (bf16 tile path), null without bf16
  std::unique_ptr<Gemm> gemm_;

  void forward_gemm_bf16(const float* x, int n, float* y) const;
  // The same from activations already rounded to bf16: xb [n, in_].
  void gemm_bf16_from(const uint16_t* xb, int n, float* y) const;
};

}  // namespace fastkv::kernels
