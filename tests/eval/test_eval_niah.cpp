// `fastkv eval niah` (src/eval/niah.cpp, tools/fastkv/cmd_eval.cpp): needle placement at
// sentence boundaries, the default grids, and a short end-to-end run on stories260K that
// checks every output file and that a rerun skips the samples already done.
#include <cairo.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "eval/metrics.h"
#include "eval/niah.h"
#include "eval_test_util.h"

namespace fastkv::eval {
namespace {
namespace fs = std::filesystem;
using test::CommandResult;
using test::describe;
using test::run_fastkv;

TEST(EvalNiahPlacement, MovesBackToTheSentenceEnd) {
  const std::string text = "First one. Second sentence here! Third? Fourth part";
  // Aimed inside "Second ...": goes back to just after "First one."
  EXPECT_EQ(needle_position(text, 15), 10u);
  // Exactly after a sentence end: stays.
  EXPECT_EQ(needle_position(text, 10), 10u);
  // Inside "Fourth": after "Third?"
  EXPECT_EQ(needle_position(text, text.size() - 2),
            std::string("First one. Second sentence here! Third?").size());
  // No sentence end before the target: the start.
  EXPECT_EQ(needle_position(text, 5), 0u);
  EXPECT_EQ(needle_position(text, 0), 0u);
  // At or past the end: the end.
  EXPECT_EQ(needle_position(text, text.size()), text.size());
  // Closing quotes belong to the sentence; a dot inside a number is no sentence end.
  const std::string q = "He said \"stop.\" Then 3.5 more";
  EXPECT_EQ(needle_position(q, q.size() - 2), std::string("He said \"stop.\"").size());
}

TEST(EvalNiahGrid, Defaults) {
  EXPECT_EQ(default_niah_depths(), (std::vector<int>{0, 11, 22, 33, 44, 56, 67, 78, 89, 100}));
  const std::vector<int> l = default_niah_lengths(8192);
  ASSERT_EQ(l.size(), 8u);
  EXPECT_EQ(l.front(), 1024);
  EXPECT_EQ(l.back(), 8192);
  for (size_t i = 1; i < l.size(); ++i) EXPECT_GT(l[i], l[i - 1]);
  EXPECT_EQ(default_niah_lengths(2048).back(), 2048);
}

TEST(EvalNiahGrid, EssaysInFileNameOrder) {
  const std::string dir = test::shared_path("data/PaulGrahamEssays");
  const std::string all = load_essays(dir);
  const std::string first = test::read_all(dir + "/addiction.txt");  // alphabetically first
  ASSERT_GT(all.size(), first.size());
  EXPECT_EQ(all.compare(0, first.size(), first), 0);
  const std::string last = test::read_all(dir + "/worked.txt");
  EXPECT_EQ(all.compare(all.size() - last.size(), last.size(), last), 0);
}

class EvalNiahCli : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = test::temp_dir();
    ASSERT_FALSE(out_.empty());
  }
  void TearDown() override { fs::remove_all(out_); }
  std::string args(const std::string& methods = "full,fastkv:retain_rate=0.2",
                   const std::string& depths = "0,100") const {
    return "eval niah -m " + test::shell_quote(test::stories_model()) + " --lengths 256 --depths " +
           depths + " --methods " + methods + " -t 1 --data " +
           test::shell_quote(test::shared_path("data")) + " --out " + test::shell_quote(out_);
  }
  std::string out_;
};

TEST_F(EvalNiahCli, WritesResultsTablePictureAndResumes) {
  const CommandResult r = run_fastkv(args());
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("ETA"), std::string::npos) << "progress bar with ETA on stderr\n" << r.err;
  EXPECT_NE(r.out.find("fastkv:retain_rate=0.2"), std::string::npos) << r.out;  // the table

  // Per-sample records: 2 samples x 2 methods, with score, KV bytes and TTFT.
  const auto recs = test::read_jsonl(out_ + "/niah.jsonl");
  ASSERT_EQ(recs.size(), 4u);
  std::set<std::string> seen;
  for (const auto& rec : recs) {
    seen.insert(rec["method"].get<std::string>() + " " + rec["id"].get<std::string>());
    EXPECT_EQ(rec["length"], 256);
    EXPECT_TRUE(rec["depth"] == 0 || rec["depth"] == 100);
    EXPECT_LE(rec["prompt_tokens"].get<int>(), 256);
    EXPECT_GT(rec["prompt_tokens"].get<int>(), 200);
    EXPECT_GT(rec["kv_bytes"].get<int64_t>(), 0);
    EXPECT_GT(rec["ttft_s"].get<double>(), 0.0);
    // The stored score is the needle score of the stored prediction.
    EXPECT_DOUBLE_EQ(rec["score"].get<double>(),
                     100.0 * niah_word_score(rec["prediction"].get<std::string>(), kNiahAnswer));
    if (rec["depth"] == 0) {
      EXPECT_EQ(rec["needle_char"], 0);
    }
  }
  EXPECT_EQ(seen.size(), 4u);
  // FastKV at retain 0.2 keeps less than the full cache.
  int64_t full_kv = 0, fastkv_kv = 0;
  for (const auto& rec : recs) {
    (rec["method"] == "full" ? full_kv : fastkv_kv) += rec["kv_bytes"].get<int64_t>();
  }
  EXPECT_LT(fastkv_kv, full_kv);

  // Summary JSON.
  const nlohmann::json j = test::read_json(out_ + "/niah.json");
  EXPECT_EQ(j["task"], "niah");
  EXPECT_EQ(j["model"], "stories260K.gguf");
  EXPECT_EQ(j["lengths"], nlohmann::json({256}));
  EXPECT_EQ(j["depths"], nlohmann::json({0, 100}));
  for (const char* m : {"full", "fastkv:retain_rate=0.2"}) {
    const auto& jm = j["methods"][m];
    ASSERT_TRUE(jm.is_object()) << m;
    EXPECT_EQ(jm["samples"], 2);
    EXPECT_EQ(jm["scores"].size(), 2u);     // depths
    EXPECT_EQ(jm["scores"][0].size(), 1u);  // lengths
    EXPECT_TRUE(jm["mean"].is_number());
    EXPECT_GT(jm["mean_kv_bytes"].get<double>(), 0.0);
    EXPECT_GT(jm["mean_ttft_s"].get<double>(), 0.0);
    // decode steps over decode seconds of the method's records
    double steps = 0, secs = 0;
    for (const auto& rec : recs) {
      if (rec["method"] != m) continue;
      steps += rec["decode_steps"].get<double>();
      secs += rec["decode_s"].get<double>();
    }
    ASSERT_GT(secs, 0.0) << m;
    EXPECT_DOUBLE_EQ(jm["decode_tok_s"].get<double>(), steps / secs) << m;
  }
  EXPECT_EQ(j["methods"]["fastkv:retain_rate=0.2"]["options"]["retain_rate"], "0.2");

  // Table.
  const std::string table = test::read_all(out_ + "/niah.txt");
  EXPECT_NE(table.find("method"), std::string::npos);
  EXPECT_NE(table.find("256"), std::string::npos);
  EXPECT_NE(table.find("KV MiB"), std::string::npos);
  EXPECT_NE(table.find("tg t/s"), std::string::npos);

  // Picture: a PNG cairo can read, wide enough for two panels and the colour bar.
  const std::string png = test::read_all(out_ + "/niah.png");
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  cairo_surface_t* s = cairo_image_surface_create_from_png((out_ + "/niah.png").c_str());
  ASSERT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
  EXPECT_GE(cairo_image_surface_get_width(s), 300);
  EXPECT_GE(cairo_image_surface_get_height(s), 150);
  cairo_surface_destroy(s);

  // A second run finds everything done: nothing new is appended, the same summary comes out.
  const CommandResult again = run_fastkv(args());
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_NE(again.err.find("4 of 4 runs already in"), std::string::npos) << again.err;
  EXPECT_EQ(test::read_jsonl(out_ + "/niah.jsonl").size(), 4u);
  EXPECT_EQ(test::read_json(out_ + "/niah.json")["methods"], j["methods"]);
}

TEST_F(EvalNiahCli, ResumesAfterAnInterruptedWrite) {
  // A run that died while writing: one complete record and half of another.
  fs::create_directories(out_);
  ASSERT_EQ(run_fastkv(args("full", "0")).exit_code, 0);
  const std::string first = test::read_all(out_ + "/niah.jsonl");
  {
    std::ofstream f(out_ + "/niah.jsonl", std::ios::app);
    f << "{\"id\": \"L256/D100\", \"meth";
  }
  const CommandResult r = run_fastkv(args("full"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("1 of 2 runs already in"), std::string::npos) << r.err;
  const auto recs = test::read_jsonl(out_ + "/niah.jsonl");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0]["id"], "L256/D0");
  EXPECT_EQ(recs[1]["id"], "L256/D100");
}

// --samples K: K haystacks per cell, each from another place in the essays; the cell is their
// mean, and a later run with fewer samples reports only those.
TEST_F(EvalNiahCli, SamplesReadOtherHaystacksAndAverage) {
  const CommandResult r = run_fastkv(args("full", "50") + " --samples 3");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto recs = test::read_jsonl(out_ + "/niah.jsonl");
  ASSERT_EQ(recs.size(), 3u);
  std::set<int64_t> needle_chars;
  double sum = 0;
  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(recs[s]["id"], s == 0 ? "L256/D50" : "L256/D50/S" + std::to_string(s));
    EXPECT_EQ(recs[s]["sample"], s);
    EXPECT_GT(recs[s]["prompt_tokens"].get<int>(), 200);
    needle_chars.insert(recs[s]["needle_char"].get<int64_t>());
    sum += recs[s]["score"].get<double>();
  }
  // Other text around the needle: the sentence end before the 50% mark moves.
  EXPECT_EQ(needle_chars.size(), 3u);
  nlohmann::json j = test::read_json(out_ + "/niah.json");
  EXPECT_EQ(j["methods"]["full"]["samples"], 3);
  EXPECT_NEAR(j["methods"]["full"]["scores"][0][0].get<double>(), sum / 3, 1e-9);

  const CommandResult one = run_fastkv(args("full", "50"));
  ASSERT_EQ(one.exit_code, 0) << describe(one);
  EXPECT_NE(one.err.find("1 of 1 runs already in"), std::string::npos) << one.err;
  j = test::read_json(out_ + "/niah.json");
  EXPECT_EQ(j["methods"]["full"]["samples"], 1);
  EXPECT_DOUBLE_EQ(j["methods"]["full"]["scores"][0][0].get<double>(),
                   recs[0]["score"].get<double>());
}

TEST_F(EvalNiahCli, BadInputsAreOneLineErrors) {
  test::expect_eval_error(run_fastkv(args("full", "50") + " --samples 9"), "--samples");
  test::expect_eval_error(run_fastkv(args("full", "50") + " --samples 0"), "--samples");
  test::expect_eval_error(
      run_fastkv("eval ruler -m " + test::shell_quote(test::stories_model()) + " --samples 2 --out " +
                 out_),
      "--samples is for niah");
  const std::string m = test::shell_quote(test::stories_model());
  test::expect_eval_error(run_fastkv("eval niah -m " + m + " --lengths 99999 --out " + out_),
                          "--lengths");
  test::expect_eval_error(run_fastkv("eval niah -m " + m + " --depths 120 --out " + out_),
                          "--depths");
  test::expect_eval_error(run_fastkv("eval niah -m " + m + " --methods nosuch --out " + out_),
                          "nosuch");
  test::expect_eval_error(run_fastkv("eval niah -m " + m + " --data /nonexistent --out " + out_),
                          "/nonexistent/PaulGrahamEssays");
  test::expect_eval_error(run_fastkv("eval nosuch -m " + m), "unknown task");
  // Results of another setup are never mixed in.
  ASSERT_EQ(run_fastkv(args("full", "0")).exit_code, 0);
  test::expect_eval_error(run_fastkv(args("full", "0") + " --chat"), "another setup");
}

}  // namespace
}  // namespace fastkv::eval
