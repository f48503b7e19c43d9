// Counters and histograms of `fastkv serve`, rendered in Prometheus' text exposition format
// (version 0.0.4). Thread-safe: every method locks one mutex (updates are a few per request).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace fastkv::server {

// A cumulative histogram: counts[i] = observations <= bounds[i]; +Inf is `count`.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends the _bucket, _sum and _count lines of metric `name`.
  void render(std::string& out, const std::string& name) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative (summed when rendering)
  uint64_t count_ = 0;
  double sum_ = 0;
};

// Values read at scrape time from the slot pool.
struct LiveGauges {
  int64_t kv_cache_bytes = 0;  // cache bytes held by the requests running now
  int slots_total = 0;
  int slots_busy = 0;
  int queued = 0;
  bool ready = false;  // the model is loaded (/health answers 200)
};

class Metrics {
 public:
  Metrics();
  // One finished HTTP exchange; `endpoint` is a route ("/v1/completions") or "other".
  void count_request(const std::string& endpoint, int status);
  // One generation: tokens, time to first token, decode time (all steps after the first
  // token) and whether the client went away before it finished.
  void record_generation(int64_t prompt_tokens, int64_t completion_tokens, double ttft_s,
                         double decode_s, int decode_steps, bool cancelled);
  void count_rejected_queue_full();
  // One batched decode step of the engine over `rows` running requests (rows >= 1).
  void count_decode_step(int rows);
  std::string render(const LiveGauges& g) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0, completion_tokens_ = 0, generations_ = 0, cancelled_ = 0;
  uint64_t queue_full_ = 0;
  uint64_t decode_steps_ = 0, decode_rows_ = 0;
  Histogram ttft_, decode_, per_token_;
};

}  // namespace fastkv::server
