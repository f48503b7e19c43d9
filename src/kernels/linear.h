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

class Linear {
 public:
  Linear() = default;
  // w: [out, in] row-major; bias: [out] or empty.
  Linear(std::vector<float> w, int in, int out, std::vector<float> bias, Backend backend);

  // y[n, out] = x[n, in] · Wᵀ (+ bias)
  void forward(const float* x, int n, float* y) const;

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
