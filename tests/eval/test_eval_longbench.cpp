// LongBench (src/eval/longbench.cpp): the official templates and generation lengths, scoring
// with post-processing, the category average, and `fastkv eval longbench` end to end on
// stories260K with two multi_news samples (middle truncation to the 2K window).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "eval/longbench.h"
#include "eval/methods.h"
#include "eval/metrics.h"
#include "eval_test_util.h"

namespace fastkv::eval {
namespace {
namespace fs = std::filesystem;
using test::CommandResult;
using test::describe;
using test::run_fastkv;

TEST(EvalLongBench, DatasetTable) {
  ASSERT_EQ(longbench_datasets().size(), 16u);
  const auto& mn = longbench_dataset("multi_news");
  EXPECT_EQ(mn.max_new_tokens, 512);
  EXPECT_EQ(mn.metric, LongBenchMetric::kRougeL);
  EXPECT_TRUE(mn.chat);
  EXPECT_STREQ(mn.category, "Summarization");
  for (const char* no_chat : {"trec", "triviaqa", "samsum", "lcc", "repobench-p"}) {
    EXPECT_FALSE(longbench_dataset(no_chat).chat) << no_chat;
  }
  for (const char* first : {"trec", "triviaqa", "samsum"})
    EXPECT_TRUE(longbench_dataset(first).first_line);
  EXPECT_EQ(longbench_dataset("hotpotqa").max_new_tokens, 32);
  EXPECT_EQ(longbench_dataset("qasper").max_new_tokens, 128);
  EXPECT_EQ(longbench_dataset("passage_retrieval_en").metric, LongBenchMetric::kRetrieval);
  EXPECT_THROW(longbench_dataset("dureader"), Error);  // Chinese: not supported
}

TEST(EvalLongBench, PromptFillsTemplateOnly) {
  const auto& d = longbench_dataset("multi_news");
  EXPECT_EQ(longbench_prompt(d, "A {input} B", "unused"),
            "You are given several news passages. Write a one-page summary of all news. \n\n"
            "News:\nA {input} B\n\nNow, write a one-page summary of all the news.\n\nSummary:");
  EXPECT_EQ(longbench_prompt(longbench_dataset("repobench-p"), "ctx\n", "in\n"),
            "Please complete the code given below. \nctx\nin\nNext line of code:\n");
}

TEST(EvalLongBench, SampleScores) {
  const auto& trivia = longbench_dataset("triviaqa");
  // First line only; the best of several answers.
  EXPECT_DOUBLE_EQ(
      longbench_sample_score(trivia, "\n\nParis\nQuestion: what", {"London", "Paris"}, {}), 100.0);
  EXPECT_DOUBLE_EQ(longbench_sample_score(trivia, "", {"Paris"}, {}), 0.0);
  const auto& count = longbench_dataset("passage_count");
  EXPECT_DOUBLE_EQ(longbench_sample_score(count, "3 and 4", {"4"}, {}), 50.0);
}

class EvalLongBenchCli : public ::testing::Test {
 protected:
  void SetUp() override { out_ = test::temp_dir(); }
  void TearDown() override { fs::remove_all(out_); }
  std::string out_;
};

TEST_F(EvalLongBenchCli, MultiNewsEndToEnd) {
  const std::string args = "eval longbench -m " + test::shell_quote(test::stories_model()) +
                           " -t 1 --limit 2 --methods full,fastkv --data " +
                           test::shell_quote(test::shared_path("data")) + " --out " +
                           test::shell_quote(out_);
  const CommandResult r = run_fastkv(args);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto recs = test::read_jsonl(out_ + "/longbench.jsonl");
  ASSERT_EQ(recs.size(), 4u);
  // The records' answers, to recompute the scores.
  std::map<std::string, std::vector<std::string>> answers;
  {
    std::ifstream in(test::shared_path("data/LongBench/multi_news.jsonl"));
    std::string line;
    for (int i = 0; i < 2 && std::getline(in, line); ++i) {
      auto j = nlohmann::json::parse(line);
      answers["multi_news/" + j["_id"].get<std::string>()] =
          j["answers"].get<std::vector<std::string>>();
    }
  }
  for (const auto& rec : recs) {
    EXPECT_EQ(rec["dataset"], "multi_news");
    EXPECT_EQ(rec["truncated"], true) << "multi_news contexts are longer than 2K tokens";
    EXPECT_LE(rec["prompt_tokens"].get<int>() + 512, 2048);
    ASSERT_TRUE(answers.count(rec["id"])) << rec["id"];
    double best = 0;
    for (const auto& a : answers[rec["id"]])
      best = std::max(best, rouge_l_score(rec["prediction"].get<std::string>(), a));
    EXPECT_NEAR(rec["score"].get<double>(), 100 * best, 1e-9);
  }
  const nlohmann::json j = test::read_json(out_ + "/longbench.json");
  EXPECT_EQ(j["datasets"], nlohmann::json({"multi_news"}));
  const auto& full = j["methods"]["full"];
  EXPECT_EQ(full["datasets"]["multi_news"]["metric"], "rouge_l");
  EXPECT_EQ(full["datasets"]["multi_news"]["samples"], 2);
  // One category here, so the average is that category's mean, which is the dataset's.
  EXPECT_DOUBLE_EQ(full["average"].get<double>(),
                   full["categories"]["Summarization"].get<double>());
  EXPECT_DOUBLE_EQ(full["average"].get<double>(),
                   full["datasets"]["multi_news"]["score"].get<double>());
  EXPECT_NE(test::read_all(out_ + "/longbench.txt").find("multi_news"), std::string::npos);
}

TEST(EvalMethods, SpecsAndSharedOptions) {
  auto specs = parse_method_list("full, fastkv:retain_rate=0.2:--tsp-rate=0.3 ,fastkv");
  ASSERT_EQ(specs.size(), 3u);
  EXPECT_EQ(specs[1].options.at("retain_rate"), "0.2");
  EXPECT_EQ(specs[1].options.at("tsp_rate"), "0.3");
  std::vector<std::string> notes;
  resolve_methods(specs, {{"retain_rate", "0.1"}}, 5, &notes);
  EXPECT_EQ(specs[0].label, "full");  // full takes no options: runs without, with a note
  EXPECT_EQ(specs[1].label, "fastkv:retain_rate=0.2:tsp_rate=0.3");  // its own value wins
  EXPECT_EQ(specs[2].label, "fastkv:retain_rate=0.1");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("full"), std::string::npos);

  EXPECT_THROW(parse_method_list(""), Error);
  EXPECT_THROW(parse_method_list("fastkv:retain_rate"), Error);
  auto dup = parse_method_list("fastkv,fastkv");
  EXPECT_THROW(resolve_methods(dup, {}, 5, nullptr), Error);
  auto bad = parse_method_list("fastkv:retain_rate=2");
  EXPECT_THROW(resolve_methods(bad, {}, 5, nullptr), Error);
  auto unknown = parse_method_list("nosuch");
  EXPECT_THROW(resolve_methods(unknown, {}, 5, nullptr), Error);
  // A shared option no listed method takes (or a bad value) is an error.
  auto only_full = parse_method_list("full");
  EXPECT_THROW(resolve_methods(only_full, {{"retain_rate", "0.1"}}, 5, nullptr), Error);
  auto fk = parse_method_list("fastkv");
  EXPECT_THROW(resolve_methods(fk, {{"retain_rate", "7"}}, 5, nullptr), Error);
}

}  // namespace
}  // namespace fastkv::eval
