#include "server/metrics.h"

#include <algorithm>
#include <cstdio>

namespace fastkv::server {
namespace {

// Prometheus wants Go-style floats: "0.005", "1", "+Inf".
std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const char* type, const char* help) {
  out += "# HELP " + name + " " + help + "\n";
  out += "# TYPE " + name + " " + type + "\n";
}

void scalar(std::string& out, const std::string& name, const char* type, const char* help,
            double v) {
  header(out, name, type, help);
  out += name + " " + num(v) + "\n";
}

// Label values escape backslash, double quote and newline.
std::string label(const std::string& v) {
  std::string s;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      s += '\\';
      s += c;
    } else if (c == '\n') {
      s += "\\n";
    } else {
      s += c;
    }
  }
  return s;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}

void Histogram::observe(double v) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);  // first bound >= v
  if (it != bounds_.end()) ++counts_[it - bounds_.begin()];
  ++count_;
  sum_ += v;
}

void Histogram::render(std::string& out, const std::string& name) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + num(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics()
    : ttft_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      decode_({0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}),
      per_token_(
          {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}) {}

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::record_generation(int64_t prompt_tokens, int64_t completion_tokens, double ttft_s,
                                double decode_s, int decode_steps, bool cancelled) {
  std::lock_guard<std::mutex> lock(mu_);
  ++generations_;
  if (cancelled) ++cancelled_;
  prompt_tokens_ += static_cast<uint64_t>(std::max<int64_t>(prompt_tokens, 0));
  completion_tokens_ += static_cast<uint64_t>(std::max<int64_t>(completion_tokens, 0));
  if (completion_tokens > 0) ttft_.observe(ttft_s);
  if (decode_steps > 0) {
    decode_.observe(decode_s);
    per_token_.observe(decode_s / decode_steps);
  }
}

void Metrics::count_rejected_queue_full() {
  std::lock_guard<std::mutex> lock(mu_);
  ++queue_full_;
}

void Metrics::count_decode_step(int rows) {
  std::lock_guard<std::mutex> lock(mu_);
  ++decode_steps_;
  decode_rows_ += static_cast<uint64_t>(rows);
}

std::string Metrics::render(const LiveGauges& g) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  header(out, "fastkv_requests_total", "counter",
         "HTTP requests answered, by endpoint and status.");
  for (const auto& [key, n] : requests_) {
    out += "fastkv_requests_total{endpoint=\"" + label(key.first) + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
  }
  scalar(out, "fastkv_prompt_tokens_total", "counter", "Prompt tokens prefilled.",
         static_cast<double>(prompt_tokens_));
  scalar(out, "fastkv_completion_tokens_total", "counter", "Tokens generated.",
         static_cast<double>(completion_tokens_));
  scalar(out, "fastkv_generations_total", "counter", "Generations run (requests that got a slot).",
         static_cast<double>(generations_));
  scalar(out, "fastkv_generations_cancelled_total", "counter",
         "Generations stopped early because the client disconnected.",
         static_cast<double>(cancelled_));
  scalar(out, "fastkv_queue_rejections_total", "counter",
         "Requests answered 503 because the wait queue was full.",
         static_cast<double>(queue_full_));
  scalar(out, "fastkv_decode_batch_steps_total", "counter",
         "Batched decode calls run (one token for each of their rows).",
         static_cast<double>(decode_steps_));
  scalar(out, "fastkv_decode_batch_rows_total", "counter",
         "Tokens decoded by batched steps (rows / steps = the mean batch size).",
         static_cast<double>(decode_rows_));
  header(out, "fastkv_time_to_first_token_seconds", "histogram",
         "Prefill plus the first sampled token, per generation.");
  ttft_.render(out, "fastkv_time_to_first_token_seconds");
  header(out, "fastkv_decode_seconds", "histogram",
         "Decode time of a generation: every step after the first token.");
  decode_.render(out, "fastkv_decode_seconds");
  header(out, "fastkv_time_per_output_token_seconds", "histogram",
         "Mean decode time per step of a generation.");
  per_token_.render(out, "fastkv_time_per_output_token_seconds");
  scalar(out, "fastkv_kv_cache_bytes", "gauge", "KV cache bytes held by running requests now.",
         static_cast<double>(g.kv_cache_bytes));
  scalar(out, "fastkv_slots", "gauge", "Generation slots (requests served at once).",
         g.slots_total);
  scalar(out, "fastkv_slots_busy", "gauge", "Slots running a request now.", g.slots_busy);
  scalar(out, "fastkv_queue_length", "gauge", "Requests waiting for a slot now.", g.queued);
  scalar(out, "fastkv_ready", "gauge", "1 once the model is loaded and requests are served.",
         g.ready ? 1 : 0);
  return out;
}

}  // namespace fastkv::server
