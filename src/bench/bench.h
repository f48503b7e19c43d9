// `fastkv bench`: time-to-first-token, prefill and decode throughput of compression methods at
// several prompt lengths, next to the machine's own limits measured in the same run — the GEMM
// ceiling on the model's projection shapes (for prefill) and the memory read bandwidth (for
// decode) — so every number comes with the bound it should be compared to.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "method/method_list.h"
#include "model/model.h"

namespace fastkv::bench {

// ---- Probes of the machine -------------------------------------------------------------------

// Size of the last-level cache from sysfs, 0 when unknown.
int64_t last_level_cache_bytes();

// Steady-state memory read bandwidth: every OpenMP thread reads its own contiguous part of one
// buffer, allocated and written once (each thread writes the part it later reads, so every page
// is resident before any timing), with 64-byte vector loads into several independent
// accumulators (AVX-512 where the CPU has it, else a portable loop GCC vectorises), and the
// best of `passes` timed passes is kept. The buffer lives as long as the probe, so probing
// between benchmark runs neither faults nor frees a gigabyte each time.
class BandwidthProbe {
 public:
  // Throws fastkv::Error unless `bytes` >= kMinBytes.
  explicit BandwidthProbe(int64_t bytes);
  ~BandwidthProbe();
  BandwidthProbe(const BandwidthProbe&) = delete;
  BandwidthProbe& operator=(const BandwidthProbe&) = delete;

  // Bytes/s of the best of `passes` (>= 1, else fastkv::Error) full reads of the buffer.
  double measure(int passes = 5) const;
  int64_t bytes() const { return n_ * static_cast<int64_t>(sizeof(uint64_t)); }

  static constexpr int64_t kMinBytes = int64_t{1} << 20;

 private:
  uint64_t* buf_ = nullptr;  // [n_] words, 64-byte aligned
  int64_t n_ = 0;            // bytes / 8, rounded down to whole 64-byte lines
};

// One-shot form: a BandwidthProbe of `bytes`, measured once.
double measure_read_bandwidth(int64_t bytes, int passes = 5);

// The sum of the words [begin, end) of `buf` as the probe reads them (the vector kernel where
// the CPU has it, the portable loop when `portable`); exposed so the tests can check that both
// read every word exactly once.
uint64_t probe_read_sum(const uint64_t* buf, int64_t begin, int64_t end, bool portable = false);

// Bytes the bandwidth probe reads: twice the last-level cache, at least 1 GiB, so that the
// read comes from memory.
int64_t bandwidth_probe_bytes();

// FLOP/s of the bare GEMMs of layer 0's projections (Q, K, V, O, gate, up, down) of `m` on
// `rows` rows of input already in the backend's element type: the best of `passes` passes.
double measure_gemm_ceiling(const Model& m, int rows, int passes = 3);

// Resets the kernel's peak-RSS counter of this process (false where /proc does not allow it).
bool reset_peak_rss();
// Peak resident set size (VmHWM) since the last reset, in bytes; 0 when unknown.
int64_t peak_rss_bytes();

// ---- Statistics of repetitions ---------------------------------------------------------------

// The least-squares slope of y against its index 0, 1, ..., n-1, as a percentage of the mean of
// y per step: -2 means each repetition is 2% of the mean below the one before, on the fitted
// line. 0 for fewer than two values or a zero mean.
double trend_pct_per_rep(const std::vector<double>& y);

// Minimum, quartiles and maximum; quartiles interpolate linearly between the sorted values
// (q at position p·(n-1)), so the median of an even count is the mean of the middle two.
struct Spread {
  double min = 0, q1 = 0, median = 0, q3 = 0, max = 0;
};
Spread spread(std::vector<double> v);

// Page faults (minor + major) of this process so far (getrusage), all threads.
int64_t page_faults();
// CPU time (user + system) of this process so far, all threads, in seconds.
double cpu_seconds();
// Resident set size (VmRSS) now, in bytes; 0 when unknown.
int64_t rss_bytes();

// ---- The benchmark ---------------------------------------------------------------------------

struct Settings {
  std::vector<int> contexts;               // prompt lengths (tokens)
  std::vector<MethodSpec> methods;         // resolved method specs
  int n_gen = 128;                         // decoded tokens per repetition
  int reps = 3;                            // timed repetitions per (method, context)
  int warmup = 1;                          // untimed runs before them
  int gemm_rows = 1024;                    // rows of the GEMM-ceiling probe
  int64_t bandwidth_bytes = 0;             // bandwidth probe size (0 = bandwidth_probe_bytes())
  uint64_t seed = 1;                       // prompt tokens are drawn from this seed
  // Order of the runs at each prompt length. false: every method's warm-up and repetitions
  // together (A A A B B B, as llama-bench). true: the warm-ups, then repetition 1 of every
  // method, repetition 2 of every method, ... (A B A B ...), so that a drift of the process or
  // the machine over the minutes of a run falls on every method alike.
  bool interleave = false;

  // Throws fastkv::Error naming the `fastkv bench` flag of the first bad value. The front end
  // calls it before loading the model; run() calls it too.
  void validate() const;
};

// One (method, context) cell. Times are wall-clock seconds.
struct Row {
  std::string method;  // label, e.g. "fastkv" or "fastkv:retain_rate=0.2"
  int ctx = 0;
  int reps = 0;
  int n_gen = 0;
  std::vector<double> ttft_s;       // [reps] in the order they ran
  std::vector<double> decode_s;     // [reps] time of n_gen decode steps
  std::vector<double> decode_cpu_s; // [reps] CPU time of the process (all threads, user +
                                    // system) during those steps: what the steps cost whatever
                                    // other processes took of the cores
  std::vector<int64_t> page_faults; // [reps] page faults (minor + major) of the prefill and decode
  std::vector<double> cpu_share;    // [reps] CPU time of the process during the prefill and
                                    // decode / (their wall time × threads): below 1 when other
                                    // processes took the cores (or the threads waited)
  std::vector<double> bandwidth_probe;  // [reps] the bandwidth probe just before, bytes/s
  std::vector<double> gemm_probe;       // [reps] the GEMM probe just before, FLOP/s
  std::vector<int64_t> rss_after;   // [reps] resident set (VmRSS) after the decode, less the
                                    // probe's buffer, bytes
  int64_t kv_bytes = 0;             // KV cache held after prefill (K, V, positions)
  int64_t kv_read_bytes = 0;        // K + V bytes a decode step reads, averaged over the steps
  // max over reps of the peak RSS during prefill + decode, less the bandwidth probe's buffer
  // (resident for the whole run, see BandwidthProbe)
  int64_t peak_rss_bytes = 0;
  double prefill_flops = 0;         // linear + attention + scoring FLOPs of this prefill
  double full_prefill_flops = 0;    // the same for an uncompressed prefill of ctx tokens
  int propagated = 0;               // live tokens after the last layer
  PrefillStats::Seconds seconds;    // mean over reps of the per-step prefill times

  double ttft_median() const;
  double ttft_min() const;
  double ttft_max() const;
  double decode_tok_s() const;      // median over reps
  std::vector<double> decode_tok_s_reps() const;  // [reps] n_gen / decode_s (0 where n_gen is 0)
  // Scoring, cache writes and TSP gather as a fraction of the prefill's step times.
  double selection_fraction() const;
};

struct Result {
  std::string model;              // the path as given
  std::string model_name;         // general.name
  std::string backend;            // "f32" | "bf16"
  int threads = 0;
  int64_t decode_weight_bytes = 0;  // weights one decode step reads
  double gemm_ceiling_flop_s = 0;   // best of the interleaved probes
  double bandwidth_bytes_s = 0;     // best of the interleaved probes
  bool interleaved = false;         // Settings::interleave
  std::vector<Row> rows;
};

// Runs every context × method: warm-up, then reps of (GEMM probe, bandwidth probe, prefill,
// decode). One progress line per run goes to `progress` (nullptr = quiet).
Result run(const Model& model, const std::string& model_path, const Settings& s,
           std::FILE* progress);

// One object per (method, context), with the field names of the issue (ttft_s, ...).
nlohmann::json to_json(const Result& r);

// A Markdown table in the spirit of llama-bench's, with the bounds beside the measurements.
std::string table(const Result& r);

}  // namespace fastkv::bench
