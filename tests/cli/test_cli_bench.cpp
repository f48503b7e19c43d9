// `fastkv bench` end to end on a small shared model: the JSON has every field of the issue with
// consistent values, the table is printed, and bad flags fail with a clear message. No timing
// is asserted (this machine is shared); only relations that hold whatever the speed.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "model/model.h"
#include "test_util.h"

namespace fastkv {
namespace {

std::string tiny_model() { return test::shared_path("models/tiny-llama-gqa.gguf"); }

// Small probes so the test stays fast: 16 MiB bandwidth probe, 64-row GEMM probe.
const char* kQuick = " --bandwidth-mib 16 --gemm-rows 64 ";

TEST(CliBench, WritesOneJsonObjectPerMethodAndContextWithConsistentFields) {
  const std::string dir = test::temp_dir();
  const std::string json = dir + "/bench.json";
  test::CommandResult r = test::run_fastkv(
      "bench -m " + tiny_model() + " -p 200,300 -n 3 -r 2 --methods full,fastkv,snapkv --json " +
      json + kQuick);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Progress lines (stderr) and the table (stdout).
  EXPECT_NE(r.err.find("bench [6/6] snapkv @ 300: rep 2/2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("warm-up"), std::string::npos);
  EXPECT_NE(r.out.find("| method | ctx | TTFT s |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| fastkv | 300 |"), std::string::npos) << r.out;

  std::ifstream in(json);
  ASSERT_TRUE(in) << json;
  const nlohmann::json list = nlohmann::json::parse(in);
  ASSERT_TRUE(list.is_array());
  ASSERT_EQ(list.size(), 6u);
  // The same model on the backend the bench chose (auto: bf16 where the CPU has it).
  ASSERT_TRUE(list[0]["backend"] == "bf16" || list[0]["backend"] == "f32") << list[0]["backend"];
  LoadOptions lo;
  lo.backend = list[0]["backend"] == "bf16" ? kernels::Backend::kBf16 : kernels::Backend::kF32;
  auto model = Model::load(tiny_model(), lo);
  std::map<std::pair<std::string, int>, nlohmann::json> by;
  for (const auto& o : list) {
    for (const char* key :
         {"model", "method", "ctx", "reps", "ttft_s", "ttft_min_s", "ttft_max_s", "prefill_tok_s",
          "decode_tok_s", "kv_bytes", "peak_rss_bytes", "prefill_flops", "gemm_ceiling_flop_s",
          "prefill_utilisation", "predicted_speedup_vs_full", "decode_bytes_per_token",
          "bandwidth_bytes_s", "bandwidth_bound_tok_s"}) {
      EXPECT_TRUE(o.contains(key)) << key;
    }
    const int ctx = o["ctx"];
    EXPECT_EQ(o["model"], tiny_model());
    EXPECT_EQ(o["reps"], 2);
    const double ttft = o["ttft_s"], lo = o["ttft_min_s"], hi = o["ttft_max_s"];
    EXPECT_GT(lo, 0);
    EXPECT_LE(lo, ttft);
    EXPECT_LE(ttft, hi);
    EXPECT_NEAR(static_cast<double>(o["prefill_tok_s"]), ctx / ttft, 1e-6 * ctx / ttft);
    EXPECT_GT(o["decode_tok_s"].get<double>(), 0);
    EXPECT_GT(o["kv_bytes"].get<int64_t>(), 0);
    EXPECT_GT(o["peak_rss_bytes"].get<int64_t>(), 0);
    EXPECT_GT(o["gemm_ceiling_flop_s"].get<double>(), 0);
    EXPECT_GT(o["bandwidth_bytes_s"].get<double>(), 0);
    const double flops = o["prefill_flops"];
    EXPECT_NEAR(static_cast<double>(o["prefill_utilisation"]),
                flops / ttft / o["gemm_ceiling_flop_s"].get<double>(), 1e-9);
    EXPECT_NEAR(static_cast<double>(o["predicted_speedup_vs_full"]),
                model->full_prefill_flops(ctx) / flops, 1e-9);
    // Decode reads every weight once per token plus the kept K/V rows.
    EXPECT_GT(o["decode_bytes_per_token"].get<int64_t>(), model->decode_weight_bytes());
    EXPECT_NEAR(static_cast<double>(o["bandwidth_bound_tok_s"]),
                o["bandwidth_bytes_s"].get<double>() / o["decode_bytes_per_token"].get<double>(),
                1e-6);
    by[{o["method"], ctx}] = o;
  }
  for (int ctx : {200, 300}) {
    const auto& full = by.at({"full", ctx});
    const auto& fast = by.at({"fastkv", ctx});
    // The uncompressed prefill is the reference of the prediction: exactly 1 for itself.
    EXPECT_NEAR(static_cast<double>(full["predicted_speedup_vs_full"]), 1.0, 1e-12);
    // FastKV propagates 20% of the tokens after its TSP layer and keeps 10% of the rows.
    EXPECT_GT(static_cast<double>(fast["predicted_speedup_vs_full"]), 1.2);
    EXPECT_LT(fast["kv_bytes"].get<int64_t>(), full["kv_bytes"].get<int64_t>() / 3);
    EXPECT_LT(fast["decode_bytes_per_token"].get<int64_t>(),
              full["decode_bytes_per_token"].get<int64_t>());
    EXPECT_TRUE(fast.contains("ttft_speedup_vs_full"));
  }
}

// The methods of each progress line marked "rep", in the order the runs happened.
std::vector<std::string> rep_order(const std::string& err) {
  std::vector<std::string> order;
  size_t at = 0;
  while ((at = err.find("bench [", at)) != std::string::npos) {
    const size_t eol = err.find('\n', at);
    const std::string line = err.substr(at, eol - at);
    at = eol;
    if (line.find(": rep ") == std::string::npos) continue;
    const size_t name = line.find("] ") + 2;
    order.push_back(line.substr(name, line.find(" @ ") - name));
  }
  return order;
}

TEST(CliBench, InterleaveRunsTheMethodsInTurnAndReportsTrendAndSpread) {
  const std::string dir = test::temp_dir();
  const std::string json = dir + "/bench.json";
  test::CommandResult r = test::run_fastkv("bench -m " + tiny_model() +
                                           " -p 64 -n 2 -r 3 --warmup 1 --methods full,fastkv "
                                           "--interleave --json " + json + kQuick);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(rep_order(r.err),
            (std::vector<std::string>{"full", "fastkv", "full", "fastkv", "full", "fastkv"}))
      << r.err;
  // Both warm-ups come before the first timed run.
  EXPECT_LT(r.err.rfind("warm-up"), r.err.find(": rep 1/3"));
  EXPECT_NE(r.err.find("page faults"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("repetitions (interleaved"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| full | 64 | 3 |"), std::string::npos) << r.out;

  std::ifstream in(json);
  ASSERT_TRUE(in) << json;
  const nlohmann::json list = nlohmann::json::parse(in);
  ASSERT_EQ(list.size(), 2u);
  for (const auto& o : list) {
    EXPECT_EQ(o["interleaved"], true);
    const std::vector<double> ttft = o["ttft_reps_s"], tg = o["decode_tok_s_reps"];
    ASSERT_EQ(ttft.size(), 3u);
    ASSERT_EQ(tg.size(), 3u);
    ASSERT_EQ(o["page_faults_reps"].size(), 3u);
    ASSERT_EQ(o["rss_after_reps_bytes"].size(), 3u);
    for (int64_t f : o["page_faults_reps"]) EXPECT_GE(f, 0);
    for (int64_t b : o["rss_after_reps_bytes"]) EXPECT_GT(b, 0);
    ASSERT_EQ(o["cpu_share_reps"].size(), 3u);
    for (double c : o["cpu_share_reps"]) EXPECT_GE(c, 0);
    // CPU milliseconds per decoded token, one value per repetition.
    ASSERT_EQ(o["decode_cpu_ms_per_token_reps"].size(), 3u);
    for (double c : o["decode_cpu_ms_per_token_reps"]) EXPECT_GE(c, 0);
    // Each repetition's probes are at most the best probe of the run.
    ASSERT_EQ(o["bandwidth_probe_reps_bytes_s"].size(), 3u);
    for (double b : o["bandwidth_probe_reps_bytes_s"]) {
      EXPECT_GT(b, 0);
      EXPECT_LE(b, o["bandwidth_bytes_s"].get<double>());
    }
    ASSERT_EQ(o["gemm_probe_reps_flop_s"].size(), 3u);
    for (double g : o["gemm_probe_reps_flop_s"]) {
      EXPECT_GT(g, 0);
      EXPECT_LE(g, o["gemm_ceiling_flop_s"].get<double>());
    }
    // The spread and trend are those of the listed repetitions.
    const auto& sp = o["ttft_spread_s"];
    EXPECT_DOUBLE_EQ(sp["min"].get<double>(), o["ttft_min_s"].get<double>());
    EXPECT_DOUBLE_EQ(sp["max"].get<double>(), o["ttft_max_s"].get<double>());
    EXPECT_DOUBLE_EQ(sp["median"].get<double>(), o["ttft_s"].get<double>());
    EXPECT_LE(sp["min"].get<double>(), sp["q1"].get<double>());
    EXPECT_LE(sp["q1"].get<double>(), sp["median"].get<double>());
    EXPECT_LE(sp["median"].get<double>(), sp["q3"].get<double>());
    EXPECT_LE(sp["q3"].get<double>(), sp["max"].get<double>());
    EXPECT_DOUBLE_EQ(o["decode_tok_s_spread"]["median"].get<double>(),
                     o["decode_tok_s"].get<double>());
    EXPECT_NEAR(o["ttft_trend_pct_per_rep"].get<double>(), bench::trend_pct_per_rep(ttft), 1e-9);
    EXPECT_NEAR(o["decode_trend_pct_per_rep"].get<double>(), bench::trend_pct_per_rep(tg), 1e-9);
  }
}

TEST(CliBench, WithoutInterleaveEachMethodsRepetitionsRunTogether) {
  test::CommandResult r = test::run_fastkv("bench -m " + tiny_model() +
                                           " -p 64 -n 1 -r 2 --warmup 0 --methods fastkv,full" +
                                           kQuick);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(rep_order(r.err), (std::vector<std::string>{"fastkv", "fastkv", "full", "full"}))
      << r.err;
  EXPECT_NE(r.out.find("repetitions (grouped"), std::string::npos) << r.out;
}

TEST(CliBench, BadFlagsFailWithAClearMessage) {
  const std::string m = " -m " + tiny_model() + kQuick;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bench" + m + "-p 0", "prompt lengths must be >= 1"},
      {"bench" + m + "-p abc", "'abc' is not a non-negative integer"},
      {"bench" + m + "-p 64 -r 0", "-r/--repetitions must be >= 1"},
      {"bench" + m + "-p 64 -r 0 --interleave", "-r/--repetitions must be >= 1"},
      {"bench" + m + "-p 64 --interleave --methods full,nosuch", "nosuch"},
      {"bench" + m + "-p 64 -n -1", "-n/--n-gen must be >= 0"},
      {"bench" + m + "-p 64 --warmup -2", "--warmup must be >= 0"},
      {"bench" + m + "-p 64 --methods nosuch", "nosuch"},
      {"bench" + m + "-p 64 --backend fp8", "--backend must be f32, bf16, quant or auto"},
      {"bench" + m + "-p 9000", "exceed the context of 8192 tokens"},
      {"bench" + m + "-p 64 --json /nonexistent-dir/x.json", "cannot write"},
      {"bench -m /nonexistent.gguf -p 64", "/nonexistent.gguf"},
      {"bench -m " + tiny_model() + " -p 64 --bandwidth-mib -1", "--bandwidth-mib must be >= 0"},
  };
  for (const auto& [args, want] : cases) {
    test::CommandResult r = test::run_fastkv(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << args << "\n" << r.err;
    EXPECT_EQ(r.err.find("bench ["), std::string::npos) << "ran anyway: " << args;
  }
}

}  // namespace
}  // namespace fastkv
