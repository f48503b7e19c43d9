// Scores of the evaluation tasks. Every function returns a fraction in [0, 1] for one
// prediction against one reference (the task layer takes the maximum over references and
// reports percentages).
//
// LongBench's metrics follow the definitions of LongBench's metrics.py (English tasks) and the
// pinned reference packages it calls: rouge==1.0.1 for ROUGE-L and fuzzywuzzy==0.18.0 with
// python-Levenshtein for the code similarity; tests/fixtures/longbench_metrics.json holds the
// values those packages give (scripts/make-metric-fixtures.py).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fastkv::eval {

// Lower case, ASCII punctuation removed, the articles a/an/the removed (whole words), runs of
// whitespace collapsed to one space.
std::string normalize_answer(std::string_view s);

// Token F1 of the normalized answers (multiset overlap of whitespace-separated words).
double qa_f1_score(std::string_view prediction, std::string_view truth);

// ROUGE-L F as rouge 1.0.1 computes it by default: both texts cut into "sentences" at every
// '.', whitespace collapsed; summary-level union LCS over word *sets* (its `exclusive` mode),
// F = 2PR / (P + R + 1e-8). An empty prediction or reference (no sentence) scores 0, as
// LongBench's wrapper turns the package's error into 0.
double rouge_l_score(std::string_view prediction, std::string_view truth);

// LongBench's classification score (trec): 1 / (number of class names found in the
// prediction, after dropping names that are proper substrings of the truth) when the truth is
// among them, else 0. Reproduces the reference's in-loop list removal, which skips the entry
// after each removed one.
double classification_score(std::string_view prediction, std::string_view truth,
                            const std::vector<std::string>& all_classes);

// Fraction of the numbers (runs of decimal digits) in the prediction that equal the number
// after "Paragraph " in the truth (passage_retrieval_en); 0 without numbers.
double retrieval_score(std::string_view prediction, std::string_view truth);

// Fraction of the numbers in the prediction equal to the truth (passage_count).
double count_score(std::string_view prediction, std::string_view truth);

// Indel-normalised similarity of two strings of code points: 1 - indel_distance / (|a| + |b|)
// (python-Levenshtein's ratio). Two empty strings give 1.
double levenshtein_ratio(std::string_view a, std::string_view b);

// fuzzywuzzy's fuzz.ratio: 100 for equal strings, 0 when either is empty, else
// round-half-even(100 * levenshtein_ratio). An integer in [0, 100].
int fuzz_ratio(std::string_view a, std::string_view b);

// LongBench's code similarity (lcc, repobench-p): the first line of the prediction (leading
// newlines dropped) that contains none of '`', '#', "//" (or "" when there is none), compared
// with fuzz_ratio / 100.
double code_sim_score(std::string_view prediction, std::string_view truth);

// RULER's string_match_all for one sample: fraction of the references that occur in the
// prediction, case-insensitively. No references: 0.
double string_match_all(std::string_view prediction, const std::vector<std::string>& references);

// Needle-in-a-haystack score: fraction of the reference's words (lower case, ASCII
// punctuation stripped, each occurrence counted) that occur among the answer's words.
double niah_word_score(std::string_view answer, std::string_view reference);

// LongBench metric by name.
enum class LongBenchMetric { kQaF1, kRougeL, kClassification, kRetrieval, kCount, kCodeSim };
const char* metric_name(LongBenchMetric m);
double longbench_metric(LongBenchMetric m, std::string_view prediction, std::string_view truth,
                        const std::vector<std::string>& all_classes);

}  // namespace fastkv::eval
