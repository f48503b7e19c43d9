// The evaluation metrics (src/eval/metrics.cpp): LongBench's metrics against the values of the
// pinned reference Python packages (tests/fixtures/longbench_metrics.json, written by
// scripts/make-metric-fixtures.py), plus edge cases of every metric, RULER's string_match_all
// and the needle score.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/strings.h"
#include "eval/longbench.h"
#include "eval/metrics.h"
#include "eval/text.h"
#include "eval_test_util.h"

namespace fastkv::eval {
namespace {

nlohmann::json fixture() {
  return test::read_json(std::string(FASTKV_SOURCE_DIR) + "/tests/fixtures/longbench_metrics.json");
}

LongBenchMetric metric_by_name(const std::string& n) {
  for (auto m : {LongBenchMetric::kQaF1, LongBenchMetric::kRougeL, LongBenchMetric::kClassification,
                 LongBenchMetric::kRetrieval, LongBenchMetric::kCount, LongBenchMetric::kCodeSim}) {
    if (n == metric_name(m)) return m;
  }
  ADD_FAILURE() << "unknown metric " << n;
  return LongBenchMetric::kQaF1;
}

TEST(EvalMetricsFixture, EveryCaseMatchesTheReferencePackages) {
  const nlohmann::json f = fixture();
  EXPECT_EQ(f["packages"]["rouge"], "1.0.1");
  EXPECT_EQ(f["packages"]["fuzzywuzzy"], "0.18.0");
  ASSERT_GE(f["cases"].size(), 60u);
  std::map<std::string, int> per_metric;
  for (const auto& c : f["cases"]) {
    const std::string m = c["metric"];
    std::vector<std::string> classes;
    if (c.contains("all_classes")) classes = c["all_classes"].get<std::vector<std::string>>();
    const double got = longbench_metric(metric_by_name(m), c["prediction"].get<std::string>(),
                                        c["truth"].get<std::string>(), classes);
    EXPECT_NEAR(got, c["expected"].get<double>(), 1e-12)
        << m << "(" << c["prediction"] << ", " << c["truth"] << ")";
    ++per_metric[m];
  }
  for (const char* m : {"qa_f1", "rouge_l", "classification", "retrieval", "count", "code_sim"}) {
    EXPECT_GE(per_metric[m], 5) << m;
  }
}

TEST(EvalMetricsFixture, WholeSampleScoresMatch) {
  const nlohmann::json f = fixture();
  ASSERT_GE(f["samples"].size(), 8u);
  for (const auto& s : f["samples"]) {
    const LongBenchDataset& d = longbench_dataset(s["dataset"].get<std::string>());
    const double got = longbench_sample_score(d, s["prediction"].get<std::string>(),
                                              s["answers"].get<std::vector<std::string>>(),
                                              s["all_classes"].get<std::vector<std::string>>());
    EXPECT_NEAR(got, 100.0 * s["expected"].get<double>(), 1e-9)
        << s["dataset"] << " " << s["prediction"];
  }
}

TEST(EvalMetrics, NormalizeAnswer) {
  EXPECT_EQ(normalize_answer("The  Quick, brown fox!"), "quick brown fox");
  EXPECT_EQ(normalize_answer("an apple a day"), "apple day");
  EXPECT_EQ(normalize_answer("theatre Anthem"), "theatre anthem");  // only whole words go
  EXPECT_EQ(normalize_answer(""), "");
  EXPECT_EQ(normalize_answer("ÉCOLE"), "école");
  EXPECT_EQ(normalize_answer("“quoted”"), "“quoted”");  // only ASCII punctuation goes
}

TEST(EvalMetrics, QaF1EdgeCases) {
  EXPECT_DOUBLE_EQ(qa_f1_score("", ""), 0.0);
  EXPECT_DOUBLE_EQ(qa_f1_score("Paris", "paris."), 1.0);
  EXPECT_DOUBLE_EQ(qa_f1_score("the", "a"), 0.0);  // both normalise to nothing
  EXPECT_NEAR(qa_f1_score("new york city", "new york"), 0.8, 1e-12);
}

TEST(EvalMetrics, RougeLEdgeCases) {
  EXPECT_DOUBLE_EQ(rouge_l_score("", "text"), 0.0);
  EXPECT_DOUBLE_EQ(rouge_l_score("text", ""), 0.0);
  EXPECT_DOUBLE_EQ(rouge_l_score("...", "text"), 0.0);  // no sentence left
  EXPECT_NEAR(rouge_l_score("same words", "same words"), 1.0, 1e-7);
  EXPECT_LT(rouge_l_score("Same words", "same words"), 0.6);  // case-sensitive, as rouge is
}

TEST(EvalMetrics, ClassificationQuirk) {
  const std::vector<std::string> classes = {"Location", "Other location", "City"};
  // Every matched class that is a proper substring of the truth is dropped, except the entry
  // right after a dropped one (the reference's loop skips it).
  EXPECT_DOUBLE_EQ(classification_score("Other location", "Other location", classes), 1.0);
  EXPECT_DOUBLE_EQ(classification_score("City or Location", "City", classes), 0.5);
  EXPECT_DOUBLE_EQ(classification_score("nothing", "City", classes), 0.0);
}

TEST(EvalMetrics, RetrievalAndCount) {
  EXPECT_DOUBLE_EQ(retrieval_score("Paragraph 4", "Paragraph 4"), 1.0);
  EXPECT_DOUBLE_EQ(retrieval_score("4 or 5", "Paragraph 4"), 0.5);
  EXPECT_DOUBLE_EQ(retrieval_score("", "Paragraph 4"), 0.0);
  EXPECT_DOUBLE_EQ(retrieval_score("Paragraph 4", "no id"), 0.0);
  EXPECT_DOUBLE_EQ(count_score("3 3 1", "3"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(count_score("none", "3"), 0.0);
}

TEST(EvalMetrics, LevenshteinAndCodeSim) {
  EXPECT_DOUBLE_EQ(levenshtein_ratio("", ""), 1.0);
  EXPECT_DOUBLE_EQ(levenshtein_ratio("abc", "abc"), 1.0);
  EXPECT_DOUBLE_EQ(levenshtein_ratio("abcd", "abce"), 0.75);
  EXPECT_DOUBLE_EQ(levenshtein_ratio("é", "e"), 0.0);  // code points, not bytes
  EXPECT_EQ(fuzz_ratio("", ""), 100);
  EXPECT_EQ(fuzz_ratio("", "a"), 0);
  EXPECT_EQ(fuzz_ratio("abcd", "dcba"), 25);
  // 100 * 0.125 = 12.5 rounds to the even 12, as Python's round() does.
  EXPECT_EQ(fuzz_ratio("abcdefgh", "aXXXXXXX"), 12);
  EXPECT_DOUBLE_EQ(code_sim_score("\n\n# note\nx = 1\ny", "x = 1"), 1.0);
  EXPECT_DOUBLE_EQ(code_sim_score("// only\n# comments", "x"), 0.0);
}

TEST(EvalMetrics, StringMatchAll) {
  EXPECT_DOUBLE_EQ(string_match_all("The numbers are 123 and 456.", {"123", "456"}), 1.0);
  EXPECT_DOUBLE_EQ(string_match_all("the value is ABC-def", {"abc-DEF", "x"}), 0.5);
  EXPECT_DOUBLE_EQ(string_match_all("", {"1"}), 0.0);
  EXPECT_DOUBLE_EQ(string_match_all("anything", {}), 0.0);
}

TEST(EvalMetrics, NeedleWordScore) {
  const std::string ref = "eat a sandwich and sit in Dolores Park on a sunny day.";
  EXPECT_DOUBLE_EQ(niah_word_score(ref, ref), 1.0);
  EXPECT_DOUBLE_EQ(niah_word_score("Eat a sandwich, and sit in dolores park on a sunny DAY!", ref),
                   1.0);
  EXPECT_DOUBLE_EQ(niah_word_score("", ref), 0.0);
  // 12 reference words; "a" occurs twice and counts twice.
  EXPECT_DOUBLE_EQ(niah_word_score("a sandwich", ref), 3.0 / 12);
  EXPECT_DOUBLE_EQ(niah_word_score("sit in the park", ref), 3.0 / 12);
}

TEST(EvalText, PythonLikeHelpers) {
  EXPECT_EQ(split_ws(std::string("  a\u00a0b\tc\n")), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(lower(std::string("ÀÉÎ ДОМ İ")), "àéî дом i\u0307");
  EXPECT_TRUE(is_decimal_digit(U'٣'));
  EXPECT_FALSE(is_decimal_digit(U'²'));
  EXPECT_EQ(to_utf8(to_u32("bad \xff byte")), "bad \xff byte");  // kept through the round trip
  EXPECT_EQ(strip(" \n x y \t"), "x y");
}

}  // namespace
}  // namespace fastkv::eval
