// bf16 linear layers on oneDNN (AMX / AVX512-BF16 where the CPU has them, oneDNN's own
// fallbacks elsewhere): Y[n, out] = bf16(X[n, in]) · bf16(W[out, in])ᵀ accumulated in f32.
//
// The weights are converted to bf16 once, into the blocked layout oneDNN prefers for the
// model's projection shape (chosen with format_tag::any for a prefill-sized M), and a matmul
// primitive is cached per row count M, so changing live-token counts (N, then T after TSP, then
// 1 while decoding) never rebuild primitives on every call.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fastkv::kernels {

// Whether oneDNN picks a native bf16 kernel (AMX or AVX512-BF16) on this CPU.
bool cpu_has_native_bf16();

// x[count] rounded to bf16 (to_bf16, in parallel chunks) into the calling thread's buffer, cache-
// line aligned (common/aligned.h): the src of a bf16 matmul. Valid until the next call on this
// thread. Layers that read the same input round it once (forward_shared_input).
const uint16_t* matmul_input_bf16(const float* x, int64_t count);

class OneDnnLinear {
 public:
  // w: [out, in] row-major f32; bias: [out] or nullptr.
  OneDnnLinear(const float* w, int in, int out, const float* bias);
  ~OneDnnLinear();
  OneDnnLinear(const OneDnnLinear&) = delete;
  OneDnnLinear& operator=(const OneDnnLinear&) = delete;

  // y[n, out] = x[n, in] · Wᵀ (+ bias). Thread-safe.
  void forward(const float* x, int n, float* y) const;
  // The same from bf16 inputs xb[n, in] (no conversion; what `fastkv bench` times as the
  // machine's GEMM ceiling).
  void forward_bf16(const uint16_t* xb, int n, float* y) const;

  int in() const { return in_; }
  int out() const { return out_; }
  int64_t weight_bytes() const;
  // oneDNN's implementation name for n rows (e.g. "brg:avx512_core_amx_bf16").
  std::string impl_name(int n) const;

  // A oneDNN primitive is built for each row count n and cached; at most this many row counts
  // stay cached (least recently used out), so memory does not grow with every new prompt length.
  static constexpr size_t kMaxCachedRowCounts = 32;
  // How many are cached now.
  int cached_row_counts() const;

 private:
  struct Impl;
  int in_, out_;
  std::vector<float> bias_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fastkv::kernels
