// A linear layer y = x · Wᵀ (+ b) whose GEMM backend is chosen at load:
//   kF32  — f32 weights, OpenBLAS sgemm/sgemv: the tested reference path;
//   kBf16 — bf16 weights prepacked for oneDNN (AMX / AVX512-BF16), f32 accumulation;
//   kQuant — Q8_0/Q4_0/Q4_1 blocks read in place from the GGUF mapping (QuantLinear); a model
//            loaded with kQuant keeps other weight types on bf16 (or f32 without native bf16).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "kernels/gemm_onednn.h"
#include "kernels/quant_linear.h"

namespace fastkv::kernels {

enum class Backend { kF32, kBf16, kQuant };

// "f32" | "bf16" | "quant": the names `--backend` takes and reports print.
inline const char* backend_name(Backend b) {
  return b == Backend::kBf16 ? "bf16" : (b == Backend::kQuant ? "quant" : "f32");
}

struct LinearOut;

class Linear {
 public:
  Linear() = default;
  // w: [out, in] row-major; bias: [out] or empty.
  // backend: kF32 or kBf16 (kQuant layers are built from their blocks, below).
  Linear(std::vector<float> w, int in, int out, std::vector<float> bias, Backend backend);
  // A kQuant layer over quantised blocks (see QuantLinear: not owned, must outlive the layer).
  Linear(const uint8_t* blocks, QuantFormat format, int in, int out, std::vector<float> bias);

  // y[n, out] = x[n, in] · Wᵀ (+ bias)
  void forward(const float* x, int n, float* y) const;
  // The same from inputs already in the backend's element type (f32 for kF32 and kQuant, bf16
  // bits for kBf16): the bare GEMM, which `fastkv bench` times as the machine's ceiling.
  void forward_native(const void* x, int n, float* y) const;
  Backend backend() const {
    return quant_ ? Backend::kQuant : (fast_ ? Backend::kBf16 : Backend::kF32);
  }

  int in() const { return in_; }
  int out() const { return out_; }
  int64_t weight_bytes() const;
  // Whether the layer holds its own copy of its quantised blocks (QuantLinear's interleaved
  // groups), so the blocks it was built from are no longer read.
  bool owns_blocks() const { return quant_ && quant_->interleaved_rows() > 0; }
  // The quantised layer of a kQuant layer, else null.
  const QuantLinear* quant() const { return quant_.get(); }

 private:
  friend void forward_shared_input(std::initializer_list<LinearOut> outs, const float* x, int n);
  int in_ = 0, out_ = 0;
  std::vector<float> w_;     // [out, in] (f32 backend only)
  std::vector<float> bias_;  // [out] or empty (f32 backend; oneDNN keeps its own copy)
  std::unique_ptr<OneDnnLinear> fast_;
  std::unique_ptr<QuantLinear> quant_;
};

// One output of forward_shared_input: the layer and where its [n, out] result goes.
struct LinearOut {
  const Linear* layer;
  float* y;
};

// Several layers that read the same input (Q/K/V; gate/up): outs[i].y[n, out_i] = x[n, in] ·
// W_iᵀ (+ b_i). Where every layer is kQuant and n takes the integer-dot path (decode), x is
// quantised once and one parallel loop runs over the output rows of all of them: one fork/join
// instead of one per layer, the per-token overhead that dominates small models' decode. Where
// every layer is kQuant and n takes the GEMM path (prefill), or every layer is kBf16, x is
// rounded to bf16 once for all of them (QuantLinear::forward_gemm_group, matmul_input_bf16).
// Otherwise each layer's forward runs in turn. Each layer's weights stay where they are (no fused
// copy). Layers of different input widths throw fastkv::Error.
void forward_shared_input(std::initializer_list<LinearOut> outs, const float* x, int n);

}  // namespace fastkv::kernels
