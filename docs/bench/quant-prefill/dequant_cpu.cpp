// Measurement tool for docs/bench/quant-prefill/dequant-cpu.txt (not part of the build): CPU time
// of QuantLinear's bf16 row dequantiser, portable and AVX512-BF16, over a 2048 x 2048 layer.
// g++ -O2 -std=c++17 -Isrc dequant_cpu.cpp -o dq build/libfastkv_core.a -ldnnl -lopenblas -fopenmp
// OMP_NUM_THREADS=1 ./dq
#include "kernels/quant_linear.h"
#include "io/quant.h"
#include <ctime>
#include <cstdio>
#include <vector>
#include <random>
double cpu() { timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + 1e-9*t.tv_nsec; }
int main() {
  using namespace fastkv;
  const int in = 2048, out = 2048;
  std::vector<float> w(in * out); std::mt19937 rng(1); std::normal_distribution<float> nd;
  for (auto& x : w) x = nd(rng) * 0.02f;
  struct F { const char* n; gguf::TensorType t; kernels::QuantFormat f; } fs[] = {
    {"q4_0", gguf::TensorType::Q4_0, kernels::QuantFormat::kQ4_0}, {"q8_0", gguf::TensorType::Q8_0, kernels::QuantFormat::kQ8_0},
    {"q4_k", gguf::TensorType::Q4_K, kernels::QuantFormat::kQ4_K}, {"q6_k", gguf::TensorType::Q6_K, kernels::QuantFormat::kQ6_K},
    {"q5_k", gguf::TensorType::Q5_K, kernels::QuantFormat::kQ5_K}, {"q5_0", gguf::TensorType::Q5_0, kernels::QuantFormat::kQ5_0}};
  std::vector<uint16_t> dst(in * out);
  for (auto& f : fs) {
    auto blocks = gguf::quantize(f.t, w.data(), (int64_t)in * out);
    const int64_t rb = blocks.size() / out;
    for (auto isa : {kernels::QuantIsa::kPortable, kernels::QuantIsa::kAvx512}) {
      double best = 1e9;
      for (int rep = 0; rep < 5; ++rep) {
        double c0 = cpu();
        for (int r = 0; r < out; ++r) kernels::quant_dequantize_row_bf16(f.f, blocks.data() + r * rb, in, dst.data() + (size_t)r * in, isa);
        best = std::min(best, cpu() - c0);
      }
      printf("%s %s: %.2f ms per 2048x2048 (%.3f ns/weight)\n", f.n, isa == kernels::QuantIsa::kPortable ? "portable" : "avx512", best * 1e3, best * 1e9 / (in * out));
    }
  }
}
