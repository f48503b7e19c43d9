#include "eval/metrics.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <map>
#include <set>

#include "common/strings.h"
#include "eval/text.h"

namespace fastkv::eval {
namespace {

bool is_article(const U32& w) {
  return w == U"a" || w == U"an" || w == U"the";
}

// Maximal runs of decimal digits (re.findall(r"\d+", s)).
std::vector<U32> find_numbers(const U32& s) {
  std::vector<U32> out;
  size_t i = 0;
  while (i < s.size()) {
    if (!is_decimal_digit(s[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < s.size() && is_decimal_digit(s[i])) ++i;
    out.push_back(s.substr(start, i - start));
  }
  return out;
}

double fraction_equal(const std::vector<U32>& numbers, const U32& target) {
  if (numbers.empty()) return 0.0;
  size_t right = std::count(numbers.begin(), numbers.end(), target);
  return static_cast<double>(right) / static_cast<double>(numbers.size());
}

// rouge 1.0.1's preprocessing: split at '.', keep non-empty pieces, collapse whitespace
// (a piece of only spaces becomes an empty sentence, which still counts).
std::vector<U32> rouge_sentences(const U32& text) {
  std::vector<U32> out;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == U'.') {
      if (i > start) out.push_back(collapse_ws(text.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

// Words of a collapsed sentence: split at single spaces (an empty sentence is one empty word).
std::vector<U32> rouge_words(const U32& sentence) {
  std::vector<U32> out;
  size_t start = 0;
  for (size_t i = 0; i <= sentence.size(); ++i) {
    if (i == sentence.size() || sentence[i] == U' ') {
      out.push_back(sentence.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

// Words of one longest common subsequence of x and y, chosen by the reference's walk back
// through the DP table: take a match, else go up when the cell above is strictly larger,
// else go left.
std::vector<U32> lcs_words(const std::vector<U32>& x, const std::vector<U32>& y) {
  const size_t n = x.size(), m = y.size();
  std::vector<int> t((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> int& { return t[i * (m + 1) + j]; };
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      at(i, j) = x[i - 1] == y[j - 1] ? at(i - 1, j - 1) + 1 : std::max(at(i - 1, j), at(i, j - 1));
    }
  }
  std::vector<U32> out;
  size_t i = n, j = m;
  while (i > 0 && j > 0) {
    if (x[i - 1] == y[j - 1]) {
      out.push_back(x[i - 1]);
      --i, --j;
    } else if (at(i - 1, j) > at(i, j - 1)) {
      --i;
    } else {
      --j;
    }
  }
  return out;  // reversed order; only the set of words matters
}

}  // namespace

std::string normalize_answer(std::string_view s) {
  U32 text = lower(to_u32(s));
  U32 no_punct;
  for (char32_t c : text) {
    if (!is_ascii_punct(c)) no_punct.push_back(c);
  }
  // Articles as whole words (\b(a|an|the)\b) become a space.
  U32 no_articles;
  size_t i = 0;
  while (i < no_punct.size()) {
    if (!is_word(no_punct[i])) {
      no_articles.push_back(no_punct[i++]);
      continue;
    }
    size_t start = i;
    while (i < no_punct.size() && is_word(no_punct[i])) ++i;
    U32 w = no_punct.substr(start, i - start);
    no_articles += is_article(w) ? U32(U" ") : w;
  }
  return to_utf8(collapse_ws(no_articles));
}

double qa_f1_score(std::string_view prediction, std::string_view truth) {
  std::vector<U32> p = split_ws(to_u32(normalize_answer(prediction)));
  std::vector<U32> g = split_ws(to_u32(normalize_answer(truth)));
  std::map<U32, int> pc, gc;
  for (const U32& w : p) ++pc[w];
  for (const U32& w : g) ++gc[w];
  int same = 0;
  for (const auto& [w, c] : pc) {
    auto it = gc.find(w);
    if (it != gc.end()) same += std::min(c, it->second);
  }
  if (same == 0) return 0.0;
  double precision = 1.0 * same / static_cast<double>(p.size());
  double recall = 1.0 * same / static_cast<double>(g.size());
  return (2 * precision * recall) / (precision + recall);
}

double rouge_l_score(std::string_view prediction, std::string_view truth) {
  std::vector<U32> hyp = rouge_sentences(to_u32(prediction));
  std::vector<U32> ref = rouge_sentences(to_u32(truth));
  if (hyp.empty() || ref.empty()) return 0.0;
  std::vector<std::vector<U32>> hyp_words, ref_words;
  std::set<U32> hyp_set, ref_set;
  for (const U32& s : hyp) {
    hyp_words.push_back(rouge_words(s));
    hyp_set.insert(hyp_words.back().begin(), hyp_words.back().end());
  }
  for (const U32& s : ref) {
    ref_words.push_back(rouge_words(s));
    ref_set.insert(ref_words.back().begin(), ref_words.back().end());
  }
  const double m = static_cast<double>(ref_set.size());
  const double n = static_cast<double>(hyp_set.size());
  // Union over all (reference sentence, hypothesis sentence) pairs of their LCS words, as a
  // set: its size is the summed union-LCS count of the exclusive mode.
  std::set<U32> uni;
  for (const auto& r : ref_words) {
    for (const auto& h : hyp_words) {
      for (U32& w : lcs_words(r, h)) uni.insert(std::move(w));
    }
  }
  const double llcs = static_cast<double>(uni.size());
  const double r_lcs = llcs / m;
  const double p_lcs = llcs / n;
  return 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8));
}

double classification_score(std::string_view prediction, std::string_view truth,
                            const std::vector<std::string>& all_classes) {
  std::vector<std::string> matches;
  for (const std::string& c : all_classes) {
    if (prediction.find(c) != std::string_view::npos) matches.push_back(c);
  }
  // A Python for-loop over a list that is shrunk inside the loop: the index runs on, so the
  // entry that moves into the removed slot is never looked at.
  for (size_t idx = 0; idx < matches.size(); ++idx) {
    const std::string term = matches[idx];
    if (truth.find(term) != std::string_view::npos && term != truth) {
      matches.erase(std::find(matches.begin(), matches.end(), term));  // list.remove: first
    }
  }
  if (std::find(matches.begin(), matches.end(), truth) == matches.end()) return 0.0;
  return 1.0 / static_cast<double>(matches.size());
}

double retrieval_score(std::string_view prediction, std::string_view truth) {
  // The paragraph id: the digits after the first "Paragraph " that is followed by digits.
  const U32 t = to_u32(truth);
  const U32 key = U"Paragraph ";
  U32 id;
  for (size_t pos = t.find(key); pos != U32::npos; pos = t.find(key, pos + 1)) {
    size_t i = pos + key.size();
    while (i < t.size() && is_decimal_digit(t[i])) ++i;
    if (i > pos + key.size()) {
      id = t.substr(pos + key.size(), i - pos - key.size());
      break;
    }
  }
  if (id.empty()) return 0.0;
  return fraction_equal(find_numbers(to_u32(prediction)), id);
}

double count_score(std::string_view prediction, std::string_view truth) {
  return fraction_equal(find_numbers(to_u32(prediction)), to_u32(truth));
}

double levenshtein_ratio(std::string_view a, std::string_view b) {
  const U32 x = to_u32(a), y = to_u32(b);
  const size_t lensum = x.size() + y.size();
  if (lensum == 0) return 1.0;
  // Indel distance = |x| + |y| - 2 * LCS(x, y); LCS by two DP rows.
  std::vector<int> prev(y.size() + 1, 0), cur(y.size() + 1, 0);
  for (size_t i = 1; i <= x.size(); ++i) {
    for (size_t j = 1; j <= y.size(); ++j) {
      cur[j] = x[i - 1] == y[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    }
    std::swap(prev, cur);
  }
  const size_t dist = lensum - 2 * static_cast<size_t>(prev[y.size()]);
  return 1.0 - static_cast<double>(dist) / static_cast<double>(lensum);
}

int fuzz_ratio(std::string_view a, std::string_view b) {
  if (a == b) return 100;
  if (a.empty() || b.empty()) return 0;
  // Python's round(): to nearest, ties to even (the default floating-point rounding mode).
  return static_cast<int>(std::nearbyint(100 * levenshtein_ratio(a, b)));
}

double code_sim_score(std::string_view prediction, std::string_view truth) {
  size_t b = 0;
  while (b < prediction.size() && prediction[b] == '\n') ++b;
  std::string line;
  for (const std::string& l : split(prediction.substr(b), "\n")) {
    if (l.find('`') == std::string::npos && l.find('#') == std::string::npos &&
        l.find("//") == std::string::npos) {
      line = l;
      break;
    }
  }
  return fuzz_ratio(line, truth) / 100.0;
}

double string_match_all(std::string_view prediction, const std::vector<std::string>& references) {
  if (references.empty()) return 0.0;
  const std::string p = lower(prediction);
  size_t found = 0;
  for (const std::string& r : references) {
    if (p.find(lower(r)) != std::string::npos) ++found;
  }
  return static_cast<double>(found) / static_cast<double>(references.size());
}

double niah_word_score(std::string_view answer, std::string_view reference) {
  auto words = [](std::string_view s) {
    std::vector<U32> out;
    for (const U32& w : split_ws(lower(to_u32(s)))) {
      U32 clean;
      for (char32_t c : w) {
        if (!is_ascii_punct(c)) clean.push_back(c);
      }
      if (!clean.empty()) out.push_back(clean);
    }
    return out;
  };
  std::vector<U32> ref = words(reference);
  if (ref.empty()) return 0.0;
  std::vector<U32> ans = words(answer);
  std::set<U32> have(ans.begin(), ans.end());
  size_t found = 0;
  for (const U32& w : ref) found += have.count(w);
  return static_cast<double>(found) / static_cast<double>(ref.size());
}

const char* metric_name(LongBenchMetric m) {
  switch (m) {
    case LongBenchMetric::kQaF1:
      return "qa_f1";
    case LongBenchMetric::kRougeL:
      return "rouge_l";
    case LongBenchMetric::kClassification:
      return "classification";
    case LongBenchMetric::kRetrieval:
      return "retrieval";
    case LongBenchMetric::kCount:
      return "count";
    case LongBenchMetric::kCodeSim:
      return "code_sim";
  }
  return "?";
}

double longbench_metric(LongBenchMetric m, std::string_view prediction, std::string_view truth,
                        const std::vector<std::string>& all_classes) {
  switch (m) {
    case LongBenchMetric::kQaF1:
      return qa_f1_score(prediction, truth);
    case LongBenchMetric::kRougeL:
      return rouge_l_score(prediction, truth);
    case LongBenchMetric::kClassification:
      return classification_score(prediction, truth, all_classes);
    case LongBenchMetric::kRetrieval:
      return retrieval_score(prediction, truth);
    case LongBenchMetric::kCount:
      return count_score(prediction, truth);
    case LongBenchMetric::kCodeSim:
      return code_sim_score(prediction, truth);
  }
  return 0.0;
}

}  // namespace fastkv::eval
