#include "bench/bench.h"


#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <sstream>
#include <utility>

#include <sys/resource.h>

#include "common/error.h"
#include "common/rng.h"
#include "io/quant.h"
#include "kernels/parallel.h"
#include "kernels/avx512_intrinsics.h"

namespace fastkv::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A prompt of n token ids drawn uniformly from the vocabulary: the cost of a prefill does not
// depend on what the tokens say, and no tokenizer is needed.
std::vector<int32_t> random_prompt(int n, int n_vocab, uint64_t seed) {
  std::vector<int32_t> t(n);
  Rng rng(seed);
  for (int i = 0; i < n; ++i) t[i] = static_cast<int32_t>(rng.uniform(0, n_vocab - 1));
  return t;
}

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::string human_mib(int64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", b / 1048576.0);
  return buf;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int64_t last_level_cache_bytes() {
  int64_t best = 0;
  for (int idx = 0; idx < 8; ++idx) {
    std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(idx) + "/size");
    std::string s;
    if (!(in >> s) || s.empty()) continue;
    int64_t v = std::atoll(s.c_str());
    if (s.back() == 'K') v <<= 10;
    if (s.back() == 'M') v <<= 20;
    best = std::max(best, v);
  }
  return best;
}

int64_t bandwidth_probe_bytes() {
  return std::max<int64_t>(int64_t{1} << 30, 2 * last_level_cache_bytes());
}

namespace {

#ifdef _OPENMP
int omp_thread() { return omp_get_thread_num(); }
int omp_threads() { return omp_get_num_threads(); }
#else
int omp_thread() { return 0; }
int omp_threads() { return 1; }
#endif

// Words [begin, end) of thread t's part of an n-word buffer split among nt threads in whole
// 64-byte lines (the last thread takes the remainder).
std::pair<int64_t, int64_t> thread_part(int64_t n, int t, int nt) {
  const int64_t lines = n / 8;
  const int64_t per = lines / nt;
  const int64_t begin = t * per * 8;
  return {begin, t == nt - 1 ? n : begin + per * 8};
}

uint64_t read_sum_portable(const uint64_t* p, int64_t begin, int64_t end) {
  // Eight independent sums, so the loop is not one chain of dependent adds (GCC turns it into
  // vector adds on whatever the baseline ISA has).
  uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += p[i + j];
  }
  uint64_t s = 0;
  for (; i < end; ++i) s += p[i];
  for (uint64_t a : acc) s += a;
  return s;
}

#ifdef FASTKV_AVX512_KERNELS
// Four 64-byte loads per iteration into four accumulators (a whole 256-byte stretch of lines in
// flight per iteration); the head up to the first 64-byte boundary and the tail are scalar.
__attribute__((target("avx512f"))) uint64_t read_sum_avx512(const uint64_t* p, int64_t begin,
                                                            int64_t end) {
  uint64_t s = 0;
  int64_t i = begin;
  for (; i < end && (reinterpret_cast<uintptr_t>(p + i) & 63) != 0; ++i) s += p[i];
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (; i + 32 <= end; i += 32) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 8));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 16));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 24));
  }
  for (; i + 8 <= end; i += 8) a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
  s += static_cast<uint64_t>(_mm512_reduce_add_epi64(
      _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3))));
  for (; i < end; ++i) s += p[i];
  return s;
}
#endif

}  // namespace

uint64_t probe_read_sum(const uint64_t* buf, int64_t begin, int64_t end, bool portable) {
#ifdef FASTKV_AVX512_KERNELS
  if (!portable && kernels::cpu_has_avx512f()) return read_sum_avx512(buf, begin, end);
#endif
  return read_sum_portable(buf, begin, end);
}

BandwidthProbe::BandwidthProbe(int64_t bytes) {
  if (bytes < kMinBytes) {
    fail("bandwidth probe: ", bytes, " bytes is too small to measure memory (at least ",
         kMinBytes >> 20, " MiB)");
  }
  n_ = bytes / 64 * 8;
  buf_ = static_cast<uint64_t*>(std::aligned_alloc(64, static_cast<size_t>(n_) * 8));
  if (buf_ == nullptr) fail("bandwidth probe: cannot allocate ", bytes, " bytes");
  // Each thread writes the part it later reads: every page is resident (and on the thread's
  // node) before the first timed pass.
  uint64_t* buf = buf_;
  const int64_t n = n_;
#pragma omp parallel
  {
    const auto [begin, end] = thread_part(n, omp_thread(), omp_threads());
    for (int64_t i = begin; i < end; ++i) buf[i] = static_cast<uint64_t>(i);
  }
}

BandwidthProbe::~BandwidthProbe() { std::free(buf_); }

double BandwidthProbe::measure(int passes) const {
  if (passes < 1) fail("bandwidth probe: passes must be >= 1, got ", passes);
  const uint64_t* buf = buf_;
  const int64_t n = n_;
  double best = 0;
  uint64_t check = 0;
  for (int p = 0; p < passes; ++p) {
    uint64_t total = 0;
    const auto t0 = Clock::now();
#pragma omp parallel reduction(+ : total)
    {
      const auto [begin, end] = thread_part(n, omp_thread(), omp_threads());
      total += probe_read_sum(buf, begin, end, false);
    }
    const double s = seconds_since(t0);
    check += total;
    if (s > 0) best = std::max(best, static_cast<double>(bytes()) / s);
  }
  // The words hold 0..n-1: a read that skipped or repeated a line would change the sum.
  const uint64_t un = static_cast<uint64_t>(n);
  const uint64_t want = un % 2 == 0 ? un / 2 * (un - 1) : un * ((un - 1) / 2);
  if (check != want * static_cast<uint64_t>(passes)) fail("bandwidth probe: the read sum is wrong");
  return best;
}

double measure_read_bandwidth(int64_t bytes, int passes) {
  return BandwidthProbe(bytes).measure(passes);
}

double measure_gemm_ceiling(const Model& m, int rows, int passes) {
  const LayerWeights& lw = m.weights().layers.at(0);
  const std::vector<const kernels::Linear*> shapes = {&lw.wq, &lw.wk,     &lw.wv,   &lw.wo,
                                                      &lw.w_gate, &lw.w_up, &lw.w_down};
  int max_in = 0, max_out = 0;
  double flops = 0;
  for (const kernels::Linear* l : shapes) {
    max_in = std::max(max_in, l->in());
    max_out = std::max(max_out, l->out());
    flops += 2.0 * rows * l->in() * l->out();
  }
  // Each layer's native input: bf16 bits for a kBf16 layer, f32 otherwise (kF32, kQuant; a
  // kQuant model may mix both).
  const size_t n_in = static_cast<size_t>(rows) * max_in;
  std::vector<float> xf(n_in);
  std::vector<uint16_t> xb(n_in);
  Rng rng(7);
  for (size_t i = 0; i < n_in; ++i) {
    xf[i] = static_cast<float>(rng.uniform01() * 2 - 1);
    xb[i] = gguf::f32_to_bf16(xf[i]);
  }
  auto native = [&](const kernels::Linear* l) {
    return l->backend() == kernels::Backend::kBf16 ? static_cast<const void*>(xb.data())
                                                   : static_cast<const void*>(xf.data());
  };
  std::vector<float> y(static_cast<size_t>(rows) * max_out);
  for (const kernels::Linear* l : shapes) l->forward_native(native(l), rows, y.data());  // warm-up
  double best = 0;
  for (int p = 0; p < passes; ++p) {
    const auto t0 = Clock::now();
    for (const kernels::Linear* l : shapes) l->forward_native(native(l), rows, y.data());
    best = std::max(best, flops / seconds_since(t0));
  }
  return best;
}

bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

int64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::atoll(line.c_str() + 6) * 1024;  // "VmHWM:   123456 kB"
    }
  }
  return 0;
}

double trend_pct_per_rep(const std::vector<double>& y) {
  const size_t n = y.size();
  if (n < 2) return 0;
  // slope = Σ (i - ī)(y_i - ȳ) / Σ (i - ī)²
  const double mean_i = (n - 1) / 2.0;
  const double mean_y = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (i - mean_i) * (y[i] - mean_y);
    sxx += (i - mean_i) * (i - mean_i);
  }
  return mean_y != 0 ? 100 * (sxy / sxx) / mean_y : 0;
}

Spread spread(std::vector<double> v) {
  Spread sp;
  if (v.empty()) return sp;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const double pos = q * (v.size() - 1);
    const size_t lo = static_cast<size_t>(pos);
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - lo) * (v[hi] - v[lo]);
  };
  sp.min = v.front();
  sp.q1 = at(0.25);
  sp.median = at(0.5);
  sp.q3 = at(0.75);
  sp.max = v.back();
  return sp;
}

int64_t page_faults() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<int64_t>(ru.ru_minflt) + static_cast<int64_t>(ru.ru_majflt);
}

double cpu_seconds() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int64_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return 0;
}

double Row::ttft_median() const { return median(ttft_s); }
double Row::ttft_min() const { return ttft_s.empty() ? 0 : *std::min_element(ttft_s.begin(), ttft_s.end()); }
double Row::ttft_max() const { return ttft_s.empty() ? 0 : *std::max_element(ttft_s.begin(), ttft_s.end()); }

std::vector<double> Row::decode_tok_s_reps() const {
  std::vector<double> rates;
  for (double s : decode_s) rates.push_back(n_gen > 0 && s > 0 ? n_gen / s : 0.0);
  return rates;
}

double Row::decode_tok_s() const {
  std::vector<double> rates;
  for (double s : decode_s) {
    if (s > 0) rates.push_back(n_gen / s);
  }
  return median(rates);
}

double Row::selection_fraction() const {
  const double total = seconds.total();
  return total > 0 ? (seconds.select + seconds.cache + seconds.gather) / total : 0;
}

void Settings::validate() const {
  if (contexts.empty()) fail("-p/--n-prompt: give at least one prompt length");
  for (int ctx : contexts) {
    if (ctx < 1) fail("-p/--n-prompt: prompt lengths must be >= 1, got ", ctx);
  }
  if (methods.empty()) fail("--methods: no method given");
  if (reps < 1) fail("-r/--repetitions must be >= 1, got ", reps);
  if (n_gen < 0) fail("-n/--n-gen must be >= 0, got ", n_gen);
  if (warmup < 0) fail("--warmup must be >= 0, got ", warmup);
  if (gemm_rows < 1) fail("--gemm-rows must be >= 1, got ", gemm_rows);
  if (bandwidth_bytes < 0) fail("--bandwidth-mib must be >= 0, got ", bandwidth_bytes / (1 << 20));
}

Result run(const Model& model, const std::string& model_path, const Settings& s,
           std::FILE* progress) {
  const ModelConfig& c = model.config();
  s.validate();
  Result r;
  r.model = model_path;
  r.model_name = c.name;
  r.backend = kernels::backend_name(model.backend());
  r.threads = kernels::max_threads();
  r.decode_weight_bytes = model.decode_weight_bytes();
  r.interleaved = s.interleave;
  const BandwidthProbe probe(s.bandwidth_bytes > 0 ? s.bandwidth_bytes : bandwidth_probe_bytes());
  const bool rss_resettable = reset_peak_rss();

  const int n_methods = static_cast<int>(s.methods.size());
  const int total = static_cast<int>(s.contexts.size()) * n_methods;
  int first_cell = 0;  // 0-based number of this context's first (method, context) cell
  for (int ctx : s.contexts) {
    const std::vector<int32_t> prompt = random_prompt(ctx, c.n_vocab, s.seed + ctx);
    const size_t first_row = r.rows.size();
    for (const MethodSpec& spec : s.methods) {
      Row row;
      row.method = spec.label;
      row.ctx = ctx;
      row.reps = s.reps;
      row.n_gen = s.n_gen;
      row.full_prefill_flops = model.full_prefill_flops(ctx);
      r.rows.push_back(std::move(row));
    }
    // One run of method `m`: repetition `rep` (< 0: a warm-up).
    auto run_one = [&](int m, int rep) {
      const MethodSpec& spec = s.methods[m];
      Row& row = r.rows[first_row + m];
      const bool timed = rep >= 0;
      // The machine is shared: probe its limits between runs, keep the best seen.
      const double gemm = measure_gemm_ceiling(model, s.gemm_rows);
      const double bw = probe.measure();
      r.gemm_ceiling_flop_s = std::max(r.gemm_ceiling_flop_s, gemm);
      r.bandwidth_bytes_s = std::max(r.bandwidth_bytes_s, bw);
      if (rss_resettable) reset_peak_rss();

      const int64_t faults0 = page_faults();
      const double cpu0 = cpu_seconds();
      const auto wall0 = Clock::now();
      auto policy = create_policy(spec, c.n_layer);
      KVCache cache;
      cache.set_decode_headroom(s.n_gen);  // the decode steps below append without moving rows
      auto t0 = Clock::now();
      PrefillOutput out = model.prefill(prompt, *policy, cache);
      const double ttft = seconds_since(t0);
      const int64_t kv_before = cache.kv_bytes();
      const int64_t held = cache.bytes();
      int32_t token = argmax(out.logits);
      const double dec_cpu0 = cpu_seconds();
      t0 = Clock::now();
      for (int t = 0; t < s.n_gen; ++t) {
        token = argmax(model.decode(token, out.stats.next_position + t, cache));
      }
      const double dec = seconds_since(t0);
      const double dec_cpu = cpu_seconds() - dec_cpu0;
      const int64_t faults = page_faults() - faults0;
      const double wall = seconds_since(wall0);
      const double share = wall > 0 ? (cpu_seconds() - cpu0) / (wall * r.threads) : 0.0;
      if (progress) {
        std::fprintf(progress,
                     "bench [%d/%d] %s @ %d: %s: TTFT %.3f s, decode %.2f tok/s (%.1f CPU ms "
                     "per token), %lld page faults\n",
                     first_cell + m + 1, total, spec.label.c_str(), ctx,
                     timed ? cat("rep ", rep + 1, "/", s.reps).c_str() : "warm-up", ttft,
                     s.n_gen > 0 && dec > 0 ? s.n_gen / dec : 0.0,
                     s.n_gen > 0 ? 1e3 * dec_cpu / s.n_gen : 0.0,
                     static_cast<long long>(faults));
        std::fflush(progress);
      }
      if (!timed) return;
      row.ttft_s.push_back(ttft);
      row.decode_s.push_back(dec);
      row.decode_cpu_s.push_back(dec_cpu);
      row.page_faults.push_back(faults);
      row.cpu_share.push_back(share);
      row.bandwidth_probe.push_back(bw);
      row.gemm_probe.push_back(gemm);
      // The probe's buffer stays resident for the whole run: it is not the model's memory.
      row.rss_after.push_back(std::max<int64_t>(0, rss_bytes() - probe.bytes()));
      row.kv_bytes = held;
      row.kv_read_bytes = (kv_before + cache.kv_bytes()) / 2;
      row.peak_rss_bytes = std::max(
          row.peak_rss_bytes,
          rss_resettable ? std::max<int64_t>(0, peak_rss_bytes() - probe.bytes()) : 0);
      const PrefillStats& st = out.stats;
      row.prefill_flops = st.linear_flops + st.attention_flops + st.scoring_flops;
      row.propagated = st.propagated;
      row.seconds.add_scaled(st.seconds, 1.0 / s.reps);
    };
    if (s.interleave) {
      for (int rep = -s.warmup; rep < s.reps; ++rep) {
        for (int m = 0; m < n_methods; ++m) run_one(m, rep);
      }
    } else {
      for (int m = 0; m < n_methods; ++m) {
        for (int rep = -s.warmup; rep < s.reps; ++rep) run_one(m, rep);
      }
    }
    first_cell += n_methods;
  }
  return r;
}

namespace {

const Row* full_row(const Result& r, int ctx) {
  for (const Row& row : r.rows) {
    if (row.ctx == ctx && row.method == "full") return &row;
  }
  return nullptr;
}

double bound_tok_s(const Result& r, const Row& row) {
  const double bytes = static_cast<double>(r.decode_weight_bytes + row.kv_read_bytes);
  return bytes > 0 ? r.bandwidth_bytes_s / bytes : 0;
}

}  // namespace

nlohmann::json to_json(const Result& r) {
  nlohmann::json list = nlohmann::json::array();
  for (const Row& row : r.rows) {
    const double ttft = row.ttft_median();
    nlohmann::json j;
    j["model"] = r.model;
    j["model_name"] = r.model_name;
    j["backend"] = r.backend;
    j["threads"] = r.threads;
    j["method"] = row.method;
    j["ctx"] = row.ctx;
    j["reps"] = row.reps;
    j["n_gen"] = row.n_gen;
    j["ttft_s"] = ttft;
    j["ttft_min_s"] = row.ttft_min();
    j["ttft_max_s"] = row.ttft_max();
    j["prefill_tok_s"] = ttft > 0 ? row.ctx / ttft : 0.0;
    j["decode_tok_s"] = row.decode_tok_s();
    j["kv_bytes"] = row.kv_bytes;
    j["peak_rss_bytes"] = row.peak_rss_bytes;
    j["prefill_flops"] = row.prefill_flops;
    j["gemm_ceiling_flop_s"] = r.gemm_ceiling_flop_s;
    j["prefill_utilisation"] =
        ttft > 0 && r.gemm_ceiling_flop_s > 0 ? row.prefill_flops / ttft / r.gemm_ceiling_flop_s : 0.0;
    j["predicted_speedup_vs_full"] =
        row.prefill_flops > 0 ? row.full_prefill_flops / row.prefill_flops : 0.0;
    if (const Row* full = full_row(r, row.ctx); full && ttft > 0) {
      j["ttft_speedup_vs_full"] = full->ttft_median() / ttft;
      const double full_dec = full->decode_tok_s();
      if (full_dec > 0) j["decode_speedup_vs_full"] = row.decode_tok_s() / full_dec;
    }
    j["decode_bytes_per_token"] = r.decode_weight_bytes + row.kv_read_bytes;
    j["decode_weight_bytes"] = r.decode_weight_bytes;
    j["decode_kv_bytes_per_token"] = row.kv_read_bytes;
    j["bandwidth_bytes_s"] = r.bandwidth_bytes_s;
    const double bound = bound_tok_s(r, row);
    j["bandwidth_bound_tok_s"] = bound;
    j["decode_fraction_of_bound"] = bound > 0 ? row.decode_tok_s() / bound : 0.0;
    j["propagated_tokens"] = row.propagated;
    j["selection_fraction_of_ttft"] = row.selection_fraction();
    // The repetitions in the order they ran, and what they say about drift and noise.
    j["interleaved"] = r.interleaved;
    const std::vector<double> tg = row.decode_tok_s_reps();
    j["ttft_reps_s"] = row.ttft_s;
    j["decode_tok_s_reps"] = tg;
    // CPU time per decoded token: the decode's cost on a machine whose cores are shared
    std::vector<double> cpu_ms;
    for (double c : row.decode_cpu_s) cpu_ms.push_back(row.n_gen > 0 ? 1e3 * c / row.n_gen : 0.0);
    j["decode_cpu_ms_per_token_reps"] = cpu_ms;
    j["page_faults_reps"] = row.page_faults;
    j["rss_after_reps_bytes"] = row.rss_after;
    j["cpu_share_reps"] = row.cpu_share;
    j["bandwidth_probe_reps_bytes_s"] = row.bandwidth_probe;
    j["gemm_probe_reps_flop_s"] = row.gemm_probe;
    j["bandwidth_probe_trend_pct_per_rep"] = trend_pct_per_rep(row.bandwidth_probe);
    j["ttft_trend_pct_per_rep"] = trend_pct_per_rep(row.ttft_s);
    j["decode_trend_pct_per_rep"] = trend_pct_per_rep(tg);
    auto spread_json = [](const Spread& sp) {
      return nlohmann::json{{"min", sp.min},       {"q1", sp.q1},  {"median", sp.median},
                            {"q3", sp.q3},         {"max", sp.max}};
    };
    j["ttft_spread_s"] = spread_json(spread(row.ttft_s));
    j["decode_tok_s_spread"] = spread_json(spread(tg));
    j["prefill_seconds"] = {{"qkv", row.seconds.qkv},       {"attention", row.seconds.attention},
                            {"select", row.seconds.select}, {"cache", row.seconds.cache},
                            {"mlp", row.seconds.mlp},       {"gather", row.seconds.gather},
                            {"lm_head", row.seconds.lm_head}};
    list.push_back(std::move(j));
  }
  return list;
}

std::string table(const Result& r) {
  std::ostringstream o;
  o << "model: " << r.model << " (" << r.model_name << "), backend " << r.backend << ", "
    << r.threads << " threads\n";
  o << "GEMM ceiling (best probe on the model's projection shapes): "
    << fmt("%.3f", r.gemm_ceiling_flop_s / 1e12) << " TFLOP/s; memory read bandwidth: "
    << fmt("%.2f", r.bandwidth_bytes_s / 1e9) << " GB/s; decode reads "
    << human_mib(r.decode_weight_bytes) << " MiB of weights per token\n\n";
  o << "| method | ctx | TTFT s | min-max s | pp t/s | util | pred x | got x | select % | tg t/s "
       "| tg x | bound t/s | of bound | KV MiB | RSS MiB |\n";
  o << "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const Row& row : r.rows) {
    const double ttft = row.ttft_median();
    const Row* full = full_row(r, row.ctx);
    const double bound = bound_tok_s(r, row);
    o << "| " << row.method << " | " << row.ctx << " | " << fmt("%.3f", ttft) << " | "
      << fmt("%.3f", row.ttft_min()) << "-" << fmt("%.3f", row.ttft_max()) << " | "
      << fmt("%.1f", ttft > 0 ? row.ctx / ttft : 0) << " | "
      << fmt("%.0f%%", ttft > 0 && r.gemm_ceiling_flop_s > 0
                           ? 100 * row.prefill_flops / ttft / r.gemm_ceiling_flop_s
                           : 0)
      << " | " << fmt("%.2f", row.prefill_flops > 0 ? row.full_prefill_flops / row.prefill_flops : 0)
      << " | " << (full && ttft > 0 ? fmt("%.2f", full->ttft_median() / ttft) : std::string("-"))
      << " | " << fmt("%.2f", 100 * row.selection_fraction()) << " | "
      << fmt("%.2f", row.decode_tok_s()) << " | "
      << (full && full->decode_tok_s() > 0 ? fmt("%.2f", row.decode_tok_s() / full->decode_tok_s())
                                           : std::string("-"))
      << " | " << fmt("%.2f", bound) << " | "
      << fmt("%.0f%%", bound > 0 ? 100 * row.decode_tok_s() / bound : 0) << " | "
      << human_mib(row.kv_bytes) << " | " << human_mib(row.peak_rss_bytes) << " |\n";
  }
  // The repetitions: spread, and the trend over the repetitions in the order they ran.
  o << "\nrepetitions (" << (r.interleaved ? "interleaved: A B A B ..." : "grouped: A A B B ...")
    << "); trend = least-squares slope over the repetitions, % of the mean per repetition\n\n";
  o << "| method | ctx | reps | TTFT min / q1 / med / q3 / max s | TTFT trend | tg min / q1 / "
       "med / q3 / max t/s | tg trend | faults first / med / last | RSS MiB first / last | CPU "
       "share min / med | bw probe trend |\n";
  o << "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  auto five = [](const Spread& sp, const char* f) {
    return fmt(f, sp.min) + " / " + fmt(f, sp.q1) + " / " + fmt(f, sp.median) + " / " +
           fmt(f, sp.q3) + " / " + fmt(f, sp.max);
  };
  for (const Row& row : r.rows) {
    const std::vector<double> tg = row.decode_tok_s_reps();
    std::vector<double> faults(row.page_faults.begin(), row.page_faults.end());
    o << "| " << row.method << " | " << row.ctx << " | " << row.ttft_s.size() << " | "
      << five(spread(row.ttft_s), "%.3f") << " | " << fmt("%+.2f%%", trend_pct_per_rep(row.ttft_s))
      << " | " << five(spread(tg), "%.2f") << " | " << fmt("%+.2f%%", trend_pct_per_rep(tg))
      << " | "
      << (faults.empty() ? std::string("-")
                         : fmt("%.0f", faults.front()) + " / " + fmt("%.0f", median(faults)) +
                               " / " + fmt("%.0f", faults.back()))
      << " | "
      << (row.rss_after.empty() ? std::string("-")
                                : human_mib(row.rss_after.front()) + " / " +
                                      human_mib(row.rss_after.back()))
      << " | "
      << (row.cpu_share.empty()
              ? std::string("-")
              : fmt("%.0f%%", 100 * spread(row.cpu_share).min) + " / " +
                    fmt("%.0f%%", 100 * spread(row.cpu_share).median))
      << " | " << fmt("%+.2f%%", trend_pct_per_rep(row.bandwidth_probe)) << " |\n";
  }
  return o.str();
}

}  // namespace fastkv::bench
