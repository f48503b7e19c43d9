// Micro-benchmarks of the kernels (Google Benchmark), at the shapes of llama-3.2-1b:
// d_model D = 2048, H = 32 query heads, G = 8 KV heads, head_dim d = 64, FFN F = 8192.
//
//   build/fastkv_kernel_bench                                        # everything (minutes)
//   build/fastkv_kernel_bench --benchmark_filter='Linear/bf16/.*/M1/' # one family
//   build/fastkv_kernel_bench --benchmark_repetitions=5 --benchmark_format=json
//
// Every case reports wall time (the kernels run on the OpenMP pool, so the main thread's CPU
// time would understate them) and FLOP/s and/or bytes/s counters computed from the shapes.
// Inputs are random with fixed seeds; weights and inputs are built once per shape, outside the
// timed loop. Names: BM_<Kernel>/<variant>/<shape>/real_time, e.g.
// BM_Linear/bf16/gate_up/M512/real_time (the harness appends /real_time to cases timed by the
// wall clock).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "io/quant.h"
#include "kernels/attention.h"
#include "kernels/gemm_onednn.h"
#include "kernels/linear.h"
#include "kernels/ops.h"
#include "kernels/quant_linear.h"
#include "kernels/scoring.h"
#include "kernels/vec.h"

namespace {

using fastkv::kernels::Backend;

constexpr int kDModel = 2048;  // D
constexpr int kHeads = 32;     // H
constexpr int kKvHeads = 8;    // G
constexpr int kHeadDim = 64;   // d
constexpr int kFfn = 8192;     // F

// n values with a fixed seed: N(0, scale²).
std::vector<float> random_floats(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = nd(rng);
  return v;
}

// Adds a counter that the harness turns into "per second of wall time" (the value is per
// iteration; it is multiplied by the iteration count and divided by the elapsed time).
void rate_counter(benchmark::State& state, const char* name, double per_iteration) {
  state.counters[name] = benchmark::Counter(
      per_iteration, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// ---- Linear (both GEMM backends) ---------------------------------------------------------

struct Projection {
  const char* name;
  int in, out;
};

// The projections of one llama-3.2-1b block (o_proj has q's shape).
constexpr Projection kProjections[] = {
    {"q", kDModel, kHeads* kHeadDim},     // 2048 -> 2048
    {"kv", kDModel, kKvHeads* kHeadDim},  // 2048 -> 512 (k and v each)
    {"gate_up", kDModel, kFfn},           // 2048 -> 8192 (gate and up each)
    {"down", kFfn, kDModel},              // 8192 -> 2048
};

// One Linear per (backend, projection), built on first use and kept for the whole run, so
// repeated runs of a case (the harness calls a case several times while sizing its iteration
// count) do not rebuild and re-pack the weights.
const fastkv::kernels::Linear& cached_linear(Backend backend, const Projection& p) {
  static std::map<std::tuple<int, int, int>, std::unique_ptr<fastkv::kernels::Linear>> cache;
  auto key = std::make_tuple(static_cast<int>(backend), p.in, p.out);
  auto it = cache.find(key);
  if (it == cache.end()) {
    // Weights at the scale of a trained layer (std 1/sqrt(in)), so outputs stay O(1).
    std::vector<float> w = random_floats(static_cast<int64_t>(p.in) * p.out, 11,
                                         1.0f / std::sqrt(static_cast<float>(p.in)));
    auto lin = std::make_unique<fastkv::kernels::Linear>(std::move(w), p.in, p.out,
                                                         std::vector<float>{}, backend);
    it = cache.emplace(key, std::move(lin)).first;
  }
  return *it->second;
}

void BM_Linear(benchmark::State& state, Backend backend, Projection p, int m) {
  const fastkv::kernels::Linear& lin = cached_linear(backend, p);
  const std::vector<float> x = random_floats(static_cast<int64_t>(m) * p.in, 12);
  std::vector<float> y(static_cast<size_t>(m) * p.out);
  lin.forward(x.data(), m, y.data());  // warm-up: oneDNN builds its primitive for this M
  for (auto _ : state) {
    lin.forward(x.data(), m, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  rate_counter(state, "FLOP/s", 2.0 * m * p.in * p.out);
  if (m == 1) {
    // A single row is a GEMV: bound by reading the weights once (as stored by the backend).
    state.SetBytesProcessed(state.iterations() * lin.weight_bytes());
  }
  if (backend == Backend::kBf16) {
    // oneDNN runs bf16 without AMX / AVX512-BF16 too (converting in software, slower); say
    // which kind of CPU the number comes from.
    state.SetLabel(fastkv::kernels::cpu_has_native_bf16() ? "native bf16"
                                                          : "no native bf16 (oneDNN fallback)");
  }
}

// ---- Quantised linear (--backend quant) ---------------------------------------------------

// One 2048 x 2048 layer (the Llama-3.2-1B shape of Q and O) in block format `fmt` (random
// weights quantised by gguf::quantize): `dot` is the integer block-dot path decode takes, `gemm`
// the dequantise-tiles-and-GEMM path prefill takes, at `m` rows. For Q4_0 a series of m: where
// the two cross is what kQuantDotMaxRows is set from, and M1024 against BM_Linear/bf16 is the
// cost of dequantising every tile on each prefill call. For every format, M1 (decode: bytes/s =
// the layer's weight bytes over the time, to compare with the memory bandwidth) and M512; for
// the 32-weight formats also M1 on SmolLM2-135M's 576 -> 1536 (18 blocks a row).
struct QuantBenchFormat {
  const char* name;
  fastkv::kernels::QuantFormat fmt;
  fastkv::gguf::TensorType type;
};
constexpr QuantBenchFormat kQuantBenchFormats[] = {
    {"q4_0", fastkv::kernels::QuantFormat::kQ4_0, fastkv::gguf::TensorType::Q4_0},
    {"q8_0", fastkv::kernels::QuantFormat::kQ8_0, fastkv::gguf::TensorType::Q8_0},
    {"q4_1", fastkv::kernels::QuantFormat::kQ4_1, fastkv::gguf::TensorType::Q4_1},
    {"q5_0", fastkv::kernels::QuantFormat::kQ5_0, fastkv::gguf::TensorType::Q5_0},
    {"q5_1", fastkv::kernels::QuantFormat::kQ5_1, fastkv::gguf::TensorType::Q5_1},
    {"q4_k", fastkv::kernels::QuantFormat::kQ4_K, fastkv::gguf::TensorType::Q4_K},
    {"q5_k", fastkv::kernels::QuantFormat::kQ5_K, fastkv::gguf::TensorType::Q5_K},
    {"q6_k", fastkv::kernels::QuantFormat::kQ6_K, fastkv::gguf::TensorType::Q6_K},
};

// gguf::quantize does not write Q4_1, so its layer is made directly: every block { d = 2^-7,
// m = -2^-6, 16 random nibble bytes } (the kernel's time does not depend on the values).
std::vector<uint8_t> random_q4_1(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(static_cast<size_t>(n / 32) * 20);
  for (size_t b = 0; b < out.size(); b += 20) {
    out[b] = 0x00, out[b + 1] = 0x20;      // d: f16 0x2000
    out[b + 2] = 0x00, out[b + 3] = 0xA4;  // m: f16 0xA400
    for (int j = 4; j < 20; ++j) out[b + j] = static_cast<uint8_t>(rng());
  }
  return out;
}

// kIn x kOut: the layer's input and output widths.
void BM_QuantLinear(benchmark::State& state, const QuantBenchFormat& f, bool dot, int m,
                    int kIn = 2048, int kOut = 2048) {
  // One layer per format and shape, built on first use: [kOut, kIn / B] blocks.
  static std::map<std::string, std::vector<uint8_t>> blocks_of;
  std::vector<uint8_t>& blocks =
      blocks_of[std::string(f.name) + "/" + std::to_string(kIn) + "x" + std::to_string(kOut)];
  if (blocks.empty()) {
    blocks = f.type == fastkv::gguf::TensorType::Q4_1
                 ? random_q4_1(int64_t{kIn} * kOut, 91)
                 : fastkv::gguf::quantize(f.type, random_floats(int64_t{kIn} * kOut, 91).data(),
                                          int64_t{kIn} * kOut);
  }
  const fastkv::kernels::QuantLinear lin(blocks.data(), f.fmt, kIn, kOut, {});
  const std::vector<float> x = random_floats(static_cast<int64_t>(m) * kIn, 92);
  std::vector<float> y(static_cast<size_t>(m) * kOut);
  auto run = [&] {
    if (dot) {
      lin.forward_dot(x.data(), m, y.data());
    } else {
      lin.forward_gemm(x.data(), m, y.data());
    }
  };
  run();  // warm-up (oneDNN primitive for this M)
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  rate_counter(state, "FLOP/s", 2.0 * m * kIn * kOut);
  if (m == 1) state.SetBytesProcessed(state.iterations() * lin.weight_bytes());
}

// Decode as it streams from memory: one row (M = 1) through the Llama-3.2-1B MLP shapes
// (`up`: 2048 -> 8192, as gate and up; `down`: 8192 -> 2048) in block format f, where each
// iteration takes the next of enough copies of the layer (together at least 128 MiB, four
// times this machine's 32 MiB L3) that its weights come from DRAM, as in a real decode step,
// not from the cache the 2048 x 2048 cases above stay in. bytes/s = weight bytes per second:
// set it against the machine's read bandwidth (`fastkv bench` prints the probe) for the
// fraction of the bound a kernel reaches.
void BM_QuantDecode(benchmark::State& state, const QuantBenchFormat& f, int kIn, int kOut) {
  static std::map<std::string, std::vector<uint8_t>> copies_of;  // [copies, kOut, kIn/B] blocks
  const int64_t n = int64_t{kIn} * kOut;
  std::vector<uint8_t>& all =
      copies_of[std::string(f.name) + "/" + std::to_string(kIn) + "x" + std::to_string(kOut)];
  const std::vector<uint8_t> one =
      all.empty() ? (f.type == fastkv::gguf::TensorType::Q4_1
                         ? random_q4_1(n, 93)
                         : fastkv::gguf::quantize(f.type, random_floats(n, 93).data(), n))
                  : std::vector<uint8_t>{};
  const size_t layer_bytes =
      static_cast<size_t>(n / fastkv::kernels::quant_block_weights(f.fmt)) *
      static_cast<size_t>(fastkv::kernels::quant_block_bytes(f.fmt));
  const size_t copies = ((size_t{128} << 20) + layer_bytes - 1) / layer_bytes;
  if (all.empty()) {
    all.resize(copies * layer_bytes);
    for (size_t c = 0; c < copies; ++c) std::memcpy(all.data() + c * layer_bytes, one.data(), layer_bytes);
  }
  std::vector<fastkv::kernels::QuantLinear> layers;
  for (size_t c = 0; c < copies; ++c) {
    layers.emplace_back(all.data() + c * layer_bytes, f.fmt, kIn, kOut, std::vector<float>{});
  }
  const std::vector<float> x = random_floats(kIn, 94);
  std::vector<float> y(static_cast<size_t>(kOut));
  size_t next = 0;
  for (auto _ : state) {
    layers[next].forward_dot(x.data(), 1, y.data());
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(layer_bytes));
  state.SetLabel(fastkv::kernels::quant_kernel_name());
}

// ---- Attention ----------------------------------------------------------------------------

// The attention implementations under test, each registered as BM_CausalAttention/<name>/n<N>
// and BM_AttendRows/<name>/len<L>: the f32 reference tiles and the bf16 fast path (oneDNN
// tiles; decode over a bf16 cache, whose rows are converted outside the timed part).
struct CausalAttentionImpl {
  const char* name;
  void (*fn)(const float* q, const float* k, const float* v, int n, int H, int G, int d,
             float* out);
};
// The kernels without a window (a default argument does not reach a function pointer).
void causal_attention_f32(const float* q, const float* k, const float* v, int n, int H, int G,
                          int d, float* out) {
  fastkv::kernels::causal_attention(q, k, v, n, H, G, d, out);
}
void causal_attention_bf16(const float* q, const float* k, const float* v, int n, int H, int G,
                           int d, float* out) {
  fastkv::kernels::causal_attention_bf16(q, k, v, n, H, G, d, out);
}
constexpr CausalAttentionImpl kCausalAttentionImpls[] = {
    {"f32", &causal_attention_f32},
    {"bf16", &causal_attention_bf16},
};

struct AttendRowsImpl {
  const char* name;
  void (*fn)(const float* q, int g, const float* k, const float* v, int64_t len, int64_t stride,
             int d, float* out);
};
// bf16 cache rows: K and V are converted once, outside the timed loop.
void attend_rows_bf16_rows(const float* q, int g, const float* k, const float* v, int64_t len,
                           int64_t stride, int d, float* out) {
  static std::vector<uint16_t> kb, vb;
  static const float* converted = nullptr;
  static int64_t converted_len = 0;
  if (converted != k || converted_len != len) {
    kb.resize(static_cast<size_t>(len) * stride);
    vb.resize(kb.size());
    fastkv::kernels::to_bf16(k, 1.0f, kb.data(), static_cast<int64_t>(kb.size()));
    fastkv::kernels::to_bf16(v, 1.0f, vb.data(), static_cast<int64_t>(vb.size()));
    converted = k;
    converted_len = len;
  }
  fastkv::kernels::attend_rows(q, g, kb.data(), vb.data(), len, stride, d, out);
}

void attend_rows_f32(const float* q, int g, const float* k, const float* v, int64_t len,
                     int64_t stride, int d, float* out) {
  fastkv::kernels::attend_rows(q, g, k, v, len, stride, d, out);
}
constexpr AttendRowsImpl kAttendRowsImpls[] = {
    {"f32", &attend_rows_f32},
    {"bf16", &attend_rows_bf16_rows},
};

// Prefill attention over n tokens: q [n, H, d], k/v [n, G, d].
void BM_CausalAttention(benchmark::State& state, CausalAttentionImpl impl, int n) {
  const int64_t q_size = static_cast<int64_t>(n) * kHeads * kHeadDim;
  const int64_t kv_size = static_cast<int64_t>(n) * kKvHeads * kHeadDim;
  const std::vector<float> q = random_floats(q_size, 21), k = random_floats(kv_size, 22),
                           v = random_floats(kv_size, 23);
  std::vector<float> out(static_cast<size_t>(q_size));
  for (auto _ : state) {
    impl.fn(q.data(), k.data(), v.data(), n, kHeads, kKvHeads, kHeadDim, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  // Q·Kᵀ and P·V over the n(n+1)/2 visible (query, key) pairs, 2 FLOPs per multiply-add each.
  rate_counter(state, "FLOP/s", 4.0 * kHeads * kHeadDim * (static_cast<double>(n) * (n + 1) / 2));
}

// Decode attention: the g = H/G query heads of one KV head against len cached rows of d floats
// (a HeadCache: K and V stored [len, d], stride d). Bound by reading K and V.
void BM_AttendRows(benchmark::State& state, AttendRowsImpl impl, int64_t len) {
  constexpr int g = kHeads / kKvHeads;
  const std::vector<float> q = random_floats(g * kHeadDim, 31);
  const std::vector<float> k = random_floats(len * kHeadDim, 32),
                           v = random_floats(len * kHeadDim, 33);
  std::vector<float> out(g * kHeadDim);
  for (auto _ : state) {
    impl.fn(q.data(), g, k.data(), v.data(), len, kHeadDim, kHeadDim, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * len * kHeadDim *
                          static_cast<int64_t>(sizeof(float)));
  rate_counter(state, "FLOP/s", 4.0 * g * kHeadDim * static_cast<double>(len));
}

// ---- FastKV scoring -----------------------------------------------------------------------

constexpr int kScoreTokens = 16384;  // n: prompt length being compressed
constexpr int kScoreWindow = 8;      // w: the observation window (FastKV's default)
constexpr int kScorePoolKernel = 7;  // FastKV's default pooling kernel

// q [n, H, d] and k [n, G, d] for the scoring cases, built once (160 MiB at n = 16384).
struct ScoringInputs {
  std::vector<float> q, k;
  static const ScoringInputs& get() {
    static const ScoringInputs in{
        random_floats(static_cast<int64_t>(kScoreTokens) * kHeads * kHeadDim, 41),
        random_floats(static_cast<int64_t>(kScoreTokens) * kKvHeads * kHeadDim, 42)};
    return in;
  }
};

// 2 FLOPs per multiply-add of the w queries' dot products with the keys each one sees.
double window_score_flops() {
  double pairs = 0;
  for (int r = 0; r < kScoreWindow; ++r) pairs += kScoreTokens - kScoreWindow + r + 1;
  return 2.0 * kHeads * kHeadDim * pairs;
}

void BM_WindowScores(benchmark::State& state) {
  const ScoringInputs& in = ScoringInputs::get();
  std::vector<float> out(static_cast<size_t>(kHeads) * (kScoreTokens - kScoreWindow));
  for (auto _ : state) {
    fastkv::kernels::window_scores(in.q.data(), in.k.data(), kScoreTokens, kHeads, kKvHeads,
                                   kHeadDim, kScoreWindow, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  rate_counter(state, "FLOP/s", window_score_flops());
}

// Window scores + pooling + the sum over each KV head's query heads (FastKV's whole score).
void BM_GroupedWindowScores(benchmark::State& state, fastkv::kernels::PoolType pool) {
  const ScoringInputs& in = ScoringInputs::get();
  std::vector<float> out(static_cast<size_t>(kKvHeads) * (kScoreTokens - kScoreWindow));
  for (auto _ : state) {
    fastkv::kernels::grouped_window_scores(in.q.data(), in.k.data(), kScoreTokens, kHeads, kKvHeads,
                                           kHeadDim, kScoreWindow, kScorePoolKernel, pool,
                                           out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  rate_counter(state, "FLOP/s", window_score_flops());
}

// Pooling alone, over the H rows of window scores that grouped_window_scores pools.
void BM_Pool1d(benchmark::State& state, fastkv::kernels::PoolType pool) {
  const int len = kScoreTokens - kScoreWindow;
  const std::vector<float> in = random_floats(static_cast<int64_t>(kHeads) * len, 51);
  std::vector<float> out(in.size());
  for (auto _ : state) {
    for (int h = 0; h < kHeads; ++h) {
      fastkv::kernels::pool1d(in.data() + static_cast<int64_t>(h) * len, len, kScorePoolKernel,
                              pool, out.data() + static_cast<int64_t>(h) * len);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * 2 * static_cast<int64_t>(in.size()) *
                          static_cast<int64_t>(sizeof(float)));
}

// Top 10% of one KV head's n scores (what FastKV keeps at retain_rate 0.1).
void BM_TopK(benchmark::State& state) {
  const int len = kScoreTokens;
  const int k = len / 10;
  const std::vector<float> values = random_floats(len, 61);
  for (auto _ : state) {
    std::vector<int32_t> idx = fastkv::kernels::topk(values.data(), len, k);
    benchmark::DoNotOptimize(idx.data());
  }
  state.SetItemsProcessed(state.iterations() * len);
}

// ---- Element-wise ops on [4096, 2048] -----------------------------------------------------

constexpr int kOpRows = 4096;

void BM_RmsNorm(benchmark::State& state) {
  const int64_t size = static_cast<int64_t>(kOpRows) * kDModel;
  const std::vector<float> x = random_floats(size, 71);
  const std::vector<float> weight = random_floats(kDModel, 72);
  std::vector<float> out(static_cast<size_t>(size));
  for (auto _ : state) {
    fastkv::kernels::rmsnorm(x.data(), weight.data(), kOpRows, kDModel, 1e-5f, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  // Reads x, writes out.
  state.SetBytesProcessed(state.iterations() * 2 * size * static_cast<int64_t>(sizeof(float)));
}

void BM_SwiGlu(benchmark::State& state) {
  const int64_t size = static_cast<int64_t>(kOpRows) * kDModel;
  const std::vector<float> gate = random_floats(size, 81), up = random_floats(size, 82);
  std::vector<float> out(static_cast<size_t>(size));
  for (auto _ : state) {
    fastkv::kernels::swiglu(gate.data(), up.data(), size, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  // Reads gate and up, writes out.
  state.SetBytesProcessed(state.iterations() * 3 * size * static_cast<int64_t>(sizeof(float)));
}

void register_all() {
  using benchmark::kMicrosecond;
  using benchmark::kMillisecond;
  using fastkv::kernels::PoolType;
  // Every case is timed by the wall clock and reported in `unit`.
  auto reg = [](const std::string& name, benchmark::TimeUnit unit, auto fn) {
    benchmark::RegisterBenchmark(name.c_str(), fn)->UseRealTime()->Unit(unit);
  };

  for (Backend backend : {Backend::kF32, Backend::kBf16}) {
    for (const Projection& p : kProjections) {
      for (int m : {1, 512}) {
        reg(std::string("BM_Linear/") + backend_name(backend) + "/" + p.name + "/M" +
                std::to_string(m),
            m == 1 ? kMicrosecond : kMillisecond,
            [=](benchmark::State& s) { BM_Linear(s, backend, p, m); });
      }
    }
  }
  for (bool dot : {true, false}) {
    for (int m : {1, 8, 16, 24, 32, 48, 1024}) {
      if (dot && m > 48) continue;
      reg(std::string("BM_QuantLinear/q4_0/") + (dot ? "dot" : "gemm") + "/2048x2048/M" +
              std::to_string(m),
          kMicrosecond,
          [=](benchmark::State& s) { BM_QuantLinear(s, kQuantBenchFormats[0], dot, m); });
    }
  }
  // Every format at the two row counts forward() serves by different paths (q4_0's M1 above).
  for (const QuantBenchFormat& f : kQuantBenchFormats) {
    if (std::string(f.name) != "q4_0") {
      reg(std::string("BM_QuantLinear/") + f.name + "/dot/2048x2048/M1", kMicrosecond,
          [&f](benchmark::State& s) { BM_QuantLinear(s, f, true, 1); });
    }
    reg(std::string("BM_QuantLinear/") + f.name + "/gemm/2048x2048/M512", kMillisecond,
        [&f](benchmark::State& s) { BM_QuantLinear(s, f, false, 512); });
    // SmolLM2-135M's MLP up projection (in 576 = 18 blocks, out 1536): a tail step of 2 blocks
    // after one of 16 in the 32-weight formats (K-quants need in % 256 == 0).
    if (fastkv::kernels::quant_block_weights(f.fmt) == 32) {
      reg(std::string("BM_QuantLinear/") + f.name + "/dot/576x1536/M1", kMicrosecond,
          [&f](benchmark::State& s) { BM_QuantLinear(s, f, true, 1, 576, 1536); });
    }
  }
  for (const QuantBenchFormat& f : kQuantBenchFormats) {
    // A layer small enough (0.3-0.6 MB) to stay in the 1 MiB L2: the kernel's compute rate.
    reg(std::string("BM_QuantLinear/") + f.name + "/dot/2048x256/M1", kMicrosecond,
        [&f](benchmark::State& s) { BM_QuantLinear(s, f, true, 1, 2048, 256); });
    // The same with 4 rows (batched decode of 4 sequences): the multi-row kernels unpack each
    // weight block once for the 4, so M4 costs less than 4 × M1.
    reg(std::string("BM_QuantLinear/") + f.name + "/dot/2048x256/M4", kMicrosecond,
        [&f](benchmark::State& s) { BM_QuantLinear(s, f, true, 4, 2048, 256); });
    reg(std::string("BM_QuantDecode/") + f.name + "/up/2048x8192", kMicrosecond,
        [&f](benchmark::State& s) { BM_QuantDecode(s, f, kDModel, kFfn); });
    reg(std::string("BM_QuantDecode/") + f.name + "/down/8192x2048", kMicrosecond,
        [&f](benchmark::State& s) { BM_QuantDecode(s, f, kFfn, kDModel); });
  }
  for (const CausalAttentionImpl& impl : kCausalAttentionImpls) {
    for (int n : {1024, 4096}) {
      reg(std::string("BM_CausalAttention/") + impl.name + "/n" + std::to_string(n), kMillisecond,
          [=](benchmark::State& s) { BM_CausalAttention(s, impl, n); });
    }
  }
  for (const AttendRowsImpl& impl : kAttendRowsImpls) {
    for (int64_t len : {4096, 16384}) {
      reg(std::string("BM_AttendRows/") + impl.name + "/len" + std::to_string(len), kMicrosecond,
          [=](benchmark::State& s) { BM_AttendRows(s, impl, len); });
    }
  }
  const std::string n = "/n" + std::to_string(kScoreTokens);
  reg("BM_WindowScores/w8" + n, kMillisecond, [](benchmark::State& s) { BM_WindowScores(s); });
  for (auto [pool, name] : {std::pair{PoolType::kMax, "max"}, std::pair{PoolType::kAvg, "avg"}}) {
    reg(std::string("BM_GroupedWindowScores/") + name + "/w8" + n, kMillisecond,
        [pool](benchmark::State& s) { BM_GroupedWindowScores(s, pool); });
    reg(std::string("BM_Pool1d/") + name + "/k7/H32" + n, kMicrosecond,
        [pool](benchmark::State& s) { BM_Pool1d(s, pool); });
  }
  reg("BM_TopK/10pct" + n, kMicrosecond, [](benchmark::State& s) { BM_TopK(s); });
  reg("BM_RmsNorm/4096x2048", kMicrosecond, [](benchmark::State& s) { BM_RmsNorm(s); });
  reg("BM_SwiGlu/4096x2048", kMicrosecond, [](benchmark::State& s) { BM_SwiGlu(s); });
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  const size_t ran = benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (ran == 0) {
    // A filter that matches nothing is an error (the smoke test relies on it: a renamed case
    // must not pass silently).
    std::fprintf(stderr, "fastkv_kernel_bench: no benchmark matched the filter\n");
    return 1;
  }
  return 0;
}
