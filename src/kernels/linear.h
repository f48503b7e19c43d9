// A linear layer y = x · Wᵀ (+ b) whose GEMM backend is chosen at load:
//   kF32  — f32 weights, OpenBLAS sgemm/sgemv: the tested reference path;
//   kBf16 — bf16 weights prepacked for oneDNN (AMX / AVX512-BF16), f32 accumulation.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/gemm_onednn.h"

namespace fastkv::kernels {

enum class Backend { kF32, kBf16 };

// "f32" | "bf16": the names `--backend` takes and reports print.
inline const char* backend_name(Backend b) { return b == Backend::kBf16 ? "bf16" : "f32"; }

class Linear {
 public:
  Linear() = default;
  // w: [out, in] row-major; bias: [out] or empty.
  Linear(std::vector<float> w, int in, int out, std::vector<float> bias, Backend backend);

  // y[n, out] = x[n, in] · Wᵀ (+ bias)
  void forward(const float* x, int n, float* y) const;
  // The same from inputs already in the backend's element type (f32 for kF32, bf16 bits for
  // kBf16): the bare GEMM, which `fastkv bench` times as the machine's ceiling.
  void forward_native(const void* x, int n, float* y) const;
  Backend backend() const { return fast_ ? Backend::kBf16 : Backend::kF32; }

  int in() const { return in_; }
  int out() const { return out_; }
  int64_t weight_bytes() const;

 private:
  int in_ = 0, out_ = 0;
  std::vector<float> w_;     // [out, in] (f32 backend only)
  std::vector<float> bias_;  // [out] or empty (f32 backend; oneDNN keeps its own copy)
  std::unique_ptr<OneDnnLinear> fast_;
};

}  // namespace fastkv::kernels
