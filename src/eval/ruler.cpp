#include "eval/ruler.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/error.h"
#include "common/strings.h"
#include "eval/jsonl.h"
#include "eval/metrics.h"
#include "eval/niah.h"
#include "eval/results.h"
#include "eval/text.h"
#include "eval/words.h"
#include "runtime/context.h"

namespace fastkv::eval {
namespace {

// --- RULER's task definitions (synthetic.yaml, constants.py) --------------------------------

enum class Hay { kEssay, kRepeat, kNeedle };
enum class Kind { kNumbers, kWords, kUuids };

struct NiahParams {
  Hay hay;
  Kind key, value;
  int num_k, num_v, num_q;
};

const std::map<std::string, NiahParams>& niah_params() {
  static const std::map<std::string, NiahParams> m = {
      {"niah_single_1", {Hay::kRepeat, Kind::kWords, Kind::kNumbers, 1, 1, 1}},
      {"niah_single_2", {Hay::kEssay, Kind::kWords, Kind::kNumbers, 1, 1, 1}},
      {"niah_single_3", {Hay::kEssay, Kind::kWords, Kind::kUuids, 1, 1, 1}},
      {"niah_multikey_1", {Hay::kEssay, Kind::kWords, Kind::kNumbers, 4, 1, 1}},
      {"niah_multikey_2", {Hay::kNeedle, Kind::kWords, Kind::kNumbers, 1, 1, 1}},
      {"niah_multikey_3", {Hay::kNeedle, Kind::kUuids, Kind::kUuids, 1, 1, 1}},
      {"niah_multivalue", {Hay::kEssay, Kind::kWords, Kind::kNumbers, 1, 4, 1}},
      {"niah_multiquery", {Hay::kEssay, Kind::kWords, Kind::kNumbers, 1, 1, 4}},
  };
  return m;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNumbers:
      return "numbers";
    case Kind::kWords:
      return "words";
    case Kind::kUuids:
      return "uuids";
  }
  return "";
}

constexpr const char* kRepeatSentence =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
constexpr const char* kNeedleFormat =
    "One of the special magic {type_needle_v} for {key} is: {value}.";
constexpr const char* kNiahTemplate =
    "Some special magic {type_needle_v} are hidden within the following text. Make sure to "
    "memorize it. I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all "
    "the special magic {type_needle_v} for {query} mentioned in the provided text?";
constexpr const char* kNiahPrefix =
    " The special magic {type_needle_v} for {query} mentioned in the provided text are";
constexpr const char* kVtTemplate =
    "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n"
    "{context}\nQuestion: Find all variables that are assigned the value {query} in the text "
    "above.";
// (sic: "assgined" is in RULER's template.)
constexpr const char* kVtPrefix =
    " Answer: According to the chain(s) of variable assignment in the text above, {num_v} "
    "variables are assgined the value {query}, they are: ";
constexpr const char* kCweTemplate =
    "Below is a numbered list of words. In these words, some appear more often than others. "
    "Memorize the ones that appear most often.\n{context}\nQuestion: What are the 10 most common "
    "words in the above list?";
constexpr const char* kCwePrefix =
    " Answer: The top 10 words that appear most often in the list are:";
constexpr const char* kFweTemplate =
    "Read the following coded text and track the frequency of each coded word. Find the three "
    "most frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. "
    "Please ignore the dots '....'. What are the three most frequently appeared words in the "
    "above coded text?";
constexpr const char* kFwePrefix =
    " Answer: According to the coded text above, the three most frequently appeared words are:";

constexpr int kVtHops = 4, kVtChains = 1;
constexpr int kCweCommon = 10;
constexpr double kFweAlpha = 2.0;
constexpr int kFweWordLen = 6;

// Replaces {name} placeholders of a template (only in the template itself).
std::string fill(const std::string& tmpl, const std::map<std::string, std::string>& vars) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl[i] == '{') {
      size_t close = tmpl.find('}', i);
      if (close != std::string::npos) {
        auto it = vars.find(tmpl.substr(i + 1, close - i - 1));
        if (it != vars.end()) {
          out += it->second;
          i = close + 1;
          continue;
        }
      }
    }
    out += tmpl[i++];
  }
  return out;
}

std::string random_number(Rng& rng) {
  return std::to_string(rng.uniform(1000000, 9999999));
}

std::string random_word(Rng& rng) {
  const auto& a = adjective_list();
  const auto& n = noun_list();
  return a[rng.uniform(0, a.size() - 1)] + "-" + n[rng.uniform(0, n.size() - 1)];
}

std::string random_uuid(Rng& rng) {
  uint64_t hi = rng.next(), lo = rng.next();
  hi = (hi & ~0xF000ull) | 0x4000ull;                  // version 4
  lo = (lo & ~(0xC000ull << 48)) | (0x8000ull << 48);  // RFC 4122 variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xFFFF),
                static_cast<unsigned long long>(hi & 0xFFFF),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return buf;
}

std::string random_of(Kind k, Rng& rng) {
  switch (k) {
    case Kind::kNumbers:
      return random_number(rng);
    case Kind::kWords:
      return random_word(rng);
    case Kind::kUuids:
      return random_uuid(rng);
  }
  return "";
}

// Sentences of a text: cut after '.', '!' or '?' followed by whitespace (the stand-in for
// NLTK's punkt splitter that RULER uses).
std::vector<std::string> split_sentences(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '.' || c == '!' || c == '?') && (i + 1 == text.size() || text[i + 1] == ' ')) {
      out.push_back(text.substr(start, i + 1 - start));
      start = i + 1;
      while (start < text.size() && text[start] == ' ') ++start;
      i = start - 1;
    }
  }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

// RULER's 40 insertion depths: round(linspace(0, 100, 40)).
std::vector<int> ruler_depths() {
  std::vector<int> d;
  for (int i = 0; i < 40; ++i) d.push_back(static_cast<int>(std::nearbyint(100.0 * i / 39)));
  return d;
}

double zeta(double s) {
  // Direct sum plus the Euler-Maclaurin tail.
  const int n = 10000;
  double sum = 0;
  for (int k = 1; k < n; ++k) sum += std::pow(k, -s);
  const double N = n;
  return sum + std::pow(N, 1 - s) / (s - 1) + 0.5 * std::pow(N, -s) + s / 12 * std::pow(N, -s - 1);
}

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool is_niah(const std::string& t) {
  return niah_params().count(t) > 0;
}

// --- one example per task family (RulerGenerator::make) -------------------------------------

// The essay haystack of a niah task: the first `size` essay words, cut into sentences, with
// the needles inserted at RULER's depths (one depth each, drawn without replacement).
std::string niah_essay_haystack(const std::vector<std::string>& essay_words,
                                const std::vector<std::string>& needles, int64_t size, Rng& rng) {
  const int64_t n = std::min<int64_t>(size, static_cast<int64_t>(essay_words.size()));
  std::string text;
  for (int64_t i = 0; i < n; ++i) {
    if (i) text += ' ';
    text += essay_words[i];
  }
  std::vector<std::string> sents = split_sentences(text);
  const std::vector<int> depths = ruler_depths();
  std::vector<int64_t> pos;
  for (int64_t di :
       rng.sample(static_cast<int64_t>(depths.size()), static_cast<int64_t>(needles.size()))) {
    pos.push_back(static_cast<int64_t>(sents.size() * (depths[di] / 100.0)));
  }
  std::sort(pos.begin(), pos.end());
  pos.insert(pos.begin(), 0);
  pos.push_back(static_cast<int64_t>(sents.size()));
  std::vector<std::string> parts;
  for (size_t i = 1; i < pos.size(); ++i) {
    std::vector<std::string> chunk(sents.begin() + pos[i - 1], sents.begin() + pos[i]);
    parts.push_back(join(chunk, " "));
    if (i - 1 < needles.size()) parts.push_back(needles[i - 1]);
  }
  return join(parts, " ");
}

// The line haystack of a niah task: `size` lines, each the repeated sentence (Hay::kRepeat) or
// a distractor needle with a key that is none of `keys` (Hay::kNeedle), with the needles
// inserted at random lines.
std::string niah_line_haystack(const NiahParams& p, const std::vector<std::string>& keys,
                               const std::vector<std::string>& needles, const std::string& type_v,
                               int64_t size, Rng& rng) {
  std::vector<std::string> sentences;
  for (int64_t i = 0; i < size; ++i) {
    if (p.hay == Hay::kRepeat) {
      sentences.push_back(kRepeatSentence);
    } else {
      // Distractor needles with fresh keys (never one of the real keys).
      std::string key;
      do {
        key = random_of(p.key, rng);
      } while (std::find(keys.begin(), keys.end(), key) != keys.end());
      sentences.push_back(
          fill(kNeedleFormat,
               {{"type_needle_v", type_v}, {"key", key}, {"value", random_of(p.value, rng)}}));
    }
  }
  std::vector<int64_t> idx = rng.sample(size, static_cast<int64_t>(needles.size()));
  std::sort(idx.rbegin(), idx.rend());
  for (size_t i = 0; i < idx.size(); ++i) sentences.insert(sentences.begin() + idx[i], needles[i]);
  return join(sentences, "\n");
}

// niah_*: `p.num_k` keys with `p.num_v` values each as needles in a haystack of `size` words
// (essay) or lines; the question asks for the values of `p.num_q` of the keys.
RulerExample make_niah(const NiahParams& p, const std::vector<std::string>& essay_words,
                       int64_t size, Rng& rng) {
  RulerExample ex;
  const int num_k = std::max(p.num_k, p.num_q);
  const std::string type_v = kind_name(p.value);
  std::vector<std::string> keys, needles;
  std::vector<std::vector<std::string>> values;
  for (int i = 0; i < num_k; ++i) {
    std::string key;
    do {
      key = random_of(p.key, rng);
    } while (std::find(keys.begin(), keys.end(), key) != keys.end());
    keys.push_back(key);
    values.emplace_back();
    for (int j = 0; j < p.num_v; ++j) {
      values.back().push_back(random_of(p.value, rng));
      needles.push_back(
          fill(kNeedleFormat,
               {{"type_needle_v", type_v}, {"key", key}, {"value", values.back().back()}}));
    }
  }
  rng.shuffle(needles);

  const std::string context = p.hay == Hay::kEssay
                                  ? niah_essay_haystack(essay_words, needles, size, rng)
                                  : niah_line_haystack(p, keys, needles, type_v, size, rng);

  std::vector<int64_t> qi = rng.sample(num_k, p.num_q);
  std::vector<std::string> queries;
  for (int64_t i : qi) {
    queries.push_back(keys[i]);
    for (const std::string& v : values[i]) ex.outputs.push_back(v);
  }
  std::string query = queries.back();
  if (queries.size() > 1) {
    query = join(std::vector<std::string>(queries.begin(), queries.end() - 1), ", ") + ", and " +
            queries.back();
  }
  std::string tmpl = kNiahTemplate, prefix = kNiahPrefix, tv = type_v;
  if (p.num_q * p.num_v == 1) {
    // RULER's singular wording for one answer.
    for (std::string* s : {&tmpl, &prefix}) {
      *s = replace_all(*s, "Some", "A");
      *s = replace_all(*s, "are all", "is");
      *s = replace_all(*s, "are", "is");
      *s = replace_all(*s, "answers", "answer");
    }
    tv.pop_back();
  }
  ex.text = fill(tmpl, {{"type_needle_v", tv}, {"context", context}, {"query", query}});
  ex.answer_prefix = fill(prefix, {{"type_needle_v", tv}, {"query", query}});
  return ex;
}

// vt: a chain of kVtHops + 1 variables in `size` noise lines, after one solved example with
// 3-letter names.
RulerExample make_vt(int64_t size, Rng& rng) {
  RulerExample ex;
  auto chain_text = [&](int64_t noises, int letters, std::vector<std::string>* vars_out,
                        std::string* value_out) {
    std::vector<std::string> vars;
    while (static_cast<int>(vars.size()) < (kVtHops + 1) * kVtChains) {
      std::string v;
      for (int i = 0; i < letters; ++i) v += static_cast<char>('A' + rng.uniform(0, 25));
      if (std::find(vars.begin(), vars.end(), v) == vars.end()) vars.push_back(v);
    }
    const std::string value = std::to_string(rng.uniform(10000, 99998));
    std::vector<std::string> chain = {"VAR " + vars[0] + " = " + value};
    for (int j = 0; j < kVtHops; ++j)
      chain.push_back("VAR " + vars[j + 1] + " = VAR " + vars[j] + " ");
    std::vector<std::string> sentences(static_cast<size_t>(noises),
                                       std::string(kRepeatSentence) + "\n");
    std::vector<int64_t> pos =
        rng.sample(static_cast<int64_t>(sentences.size()), static_cast<int64_t>(chain.size()));
    std::sort(pos.begin(), pos.end());
    for (size_t j = 0; j < pos.size(); ++j)
      sentences.insert(sentences.begin() + pos[j] + j, chain[j]);
    std::string context = replace_all(join(sentences, " "), ". \n", ".\n");
    *vars_out = std::vector<std::string>(vars.begin(), vars.begin() + kVtHops + 1);
    *value_out = value;
    return context;
  };
  // RULER puts one short solved example (3-letter names, about 500 tokens) first.
  std::vector<std::string> ex_vars, vars;
  std::string ex_value, value;
  // The chain needs a noise line per assignment; the example gets up to 20 noise lines
  // (RULER sizes it to about 500 tokens), fewer when the whole prompt is short.
  size = std::max<int64_t>(size, kVtHops + 1);
  const int64_t ex_noise = std::clamp<int64_t>(size / 4, kVtHops + 1, 20);
  const std::string ex_context = chain_text(ex_noise, 3, &ex_vars, &ex_value);
  const std::string context = chain_text(size, 5, &vars, &value);
  const std::string nv = std::to_string(kVtHops + 1);
  const std::string example = fill(kVtTemplate, {{"context", ex_context}, {"query", ex_value}}) +
                              fill(kVtPrefix, {{"num_v", nv}, {"query", ex_value}}) +
                              join(ex_vars, " ");
  ex.text = example + "\n\n" + fill(kVtTemplate, {{"context", context}, {"query", value}});
  ex.answer_prefix = fill(kVtPrefix, {{"num_v", nv}, {"query", value}});
  ex.outputs = vars;
  return ex;
}

// cwe: a numbered list of `size` words where kCweCommon of them repeat most, after one solved
// example; below 4096 tokens the repetitions are RULER's short-context ones.
RulerExample make_cwe(const std::vector<std::string>& vocabulary, int64_t size, int length,
                      Rng& rng) {
  RulerExample ex;
  auto list_text = [&](int64_t num_words, int common_reps, int uncommon_reps,
                       std::vector<std::string>* common) {
    num_words = std::min<int64_t>(std::max<int64_t>(num_words, kCweCommon),
                                  static_cast<int64_t>(vocabulary.size()));
    std::vector<std::string> chosen;
    for (int64_t i : rng.sample(static_cast<int64_t>(vocabulary.size()), num_words))
      chosen.push_back(vocabulary[i]);
    std::vector<std::string> list;
    for (int64_t i = 0; i < num_words; ++i) {
      const int reps = i < kCweCommon ? common_reps : uncommon_reps;
      for (int r = 0; r < reps; ++r) list.push_back(chosen[i]);
    }
    rng.shuffle(list);
    *common = std::vector<std::string>(chosen.begin(), chosen.begin() + kCweCommon);
    std::string out;
    for (size_t i = 0; i < list.size(); ++i)
      out += (i ? " " : "") + std::to_string(i + 1) + ". " + list[i];
    return out;
  };
  const bool short_ctx = length < 4096;
  std::vector<std::string> ex_common, common;
  const std::string ex_list =
      short_ctx ? list_text(20, 3, 1, &ex_common) : list_text(40, 10, 3, &ex_common);
  const std::string list =
      short_ctx ? list_text(size, 6, 1, &common) : list_text(size, 30, 3, &common);
  std::string ex_answer;
  for (size_t i = 0; i < ex_common.size(); ++i)
    ex_answer += (i ? " " : "") + std::to_string(i + 1) + ". " + ex_common[i];
  ex.text = fill(kCweTemplate, {{"context", ex_list}}) + kCwePrefix + ex_answer + "\n" +
            fill(kCweTemplate, {{"context", list}});
  ex.answer_prefix = kCwePrefix;
  ex.outputs = common;
  return ex;
}

// fwe: about `size` coded words with Zipf counts over a vocabulary of length / 50 (at least 8).
RulerExample make_fwe(int64_t size, int length, Rng& rng) {
  RulerExample ex;
  const int vocab_size = std::max(8, length / 50);
  std::set<std::string> uniq;
  while (static_cast<int>(uniq.size()) < vocab_size) {
    std::string w;
    for (int i = 0; i < kFweWordLen; ++i) w += static_cast<char>('a' + rng.uniform(0, 25));
    uniq.insert(w);
  }
  std::vector<std::string> vocab(uniq.begin(), uniq.end());
  rng.shuffle(vocab);
  vocab[0] = "...";  // the most frequent "word" is noise
  const double z = zeta(kFweAlpha);
  std::vector<std::string> words;
  for (size_t k = 0; k < vocab.size(); ++k) {
    const int64_t cnt =
        static_cast<int64_t>(size * std::pow(static_cast<double>(k + 1), -kFweAlpha) / z);
    for (int64_t c = 0; c < cnt; ++c) words.push_back(vocab[k]);
  }
  rng.shuffle(words);
  ex.text = fill(kFweTemplate, {{"context", join(words, " ")}});
  ex.answer_prefix = kFwePrefix;
  ex.outputs = {vocab[1], vocab[2], vocab[3]};
  return ex;
}

}  // namespace

// --- Rng -------------------------------------------------------------------------------------


// --- tasks -----------------------------------------------------------------------------------

const std::vector<std::string>& ruler_task_names() {
  static const std::vector<std::string> names = {"niah_single_1",
                                                 "niah_single_2",
                                                 "niah_single_3",
                                                 "niah_multikey_1",
                                                 "niah_multikey_2",
                                                 "niah_multikey_3",
                                                 "niah_multivalue",
                                                 "niah_multiquery",
                                                 "vt",
                                                 "cwe",
                                                 "fwe"};
  return names;
}

int ruler_max_new_tokens(const std::string& task) {
  if (is_niah(task)) return 128;
  if (task == "vt") return 30;
  if (task == "cwe") return 120;
  if (task == "fwe") return 50;
  return 128;
}

RulerGenerator::RulerGenerator(std::string essays, uint64_t seed) : seed_(seed) {
  // RULER: re.sub(r'\s+', " ", essay).split(" ")
  for (U32& w : split_ws(to_u32(essays))) essay_words_.push_back(to_utf8(w));
  std::set<std::string> vocab;
  for (const std::string& w : essay_words_) {
    std::string clean;
    bool alpha = true;
    for (char c : w) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      if (c < 'a' || c > 'z') alpha = false;
      clean += c;
    }
    if (alpha && clean.size() >= 3) vocab.insert(clean);
  }
  vocabulary_.assign(vocab.begin(), vocab.end());
  Rng rng(seed_ ^ 0xC3E5ull);
  rng.shuffle(vocabulary_);
}

int64_t RulerGenerator::max_size(const std::string& task) const {
  if (is_niah(task) && niah_params().at(task).hay == Hay::kEssay) {
    return static_cast<int64_t>(essay_words_.size());
  }
  if (task == "cwe") return static_cast<int64_t>(vocabulary_.size());
  return 50'000'000;
}

uint64_t RulerGenerator::sample_seed(const std::string& task, int length, int index) const {
  uint64_t h = fnv1a(task, seed_ * 0x100000001B3ull + 0x5EED);
  h = fnv1a(std::to_string(length) + "/" + std::to_string(index), h);
  return h;
}

RulerExample RulerGenerator::make(const std::string& task, int64_t size, int length,
                                  Rng& rng) const {
  size = std::max<int64_t>(size, 1);
  if (is_niah(task)) return make_niah(niah_params().at(task), essay_words_, size, rng);
  if (task == "vt") return make_vt(size, rng);
  if (task == "cwe") return make_cwe(vocabulary_, size, length, rng);
  if (task == "fwe") return make_fwe(size, length, rng);
  fail("ruler: unknown task '", task, "' (known: ", join(ruler_task_names(), ", "), ")");
}

int64_t RulerGenerator::fit_size(const std::string& task, int length, const Counter& count) {
  auto key = std::make_pair(task, length);
  if (auto it = size_cache_.find(key); it != size_cache_.end()) return it->second;
  const int gen = ruler_max_new_tokens(task);
  const uint64_t probe_seed = sample_seed(task, length, 0);
  auto tokens_at = [&](int64_t size) {
    Rng rng(probe_seed);
    return count(make(task, size, length, rng));
  };
  // Bracket [lo fits, hi does not] by interpolation on the (nearly linear) token count.
  const int64_t cap = max_size(task);
  int64_t lo = 1;
  const int t1 = tokens_at(1);
  int t_lo = t1;
  if (t_lo + gen > length) {
    fail("ruler: ", task, " does not fit in ", length, " tokens even with the smallest haystack (",
         t_lo, " prompt tokens + ", gen, " generated)");
  }
  int64_t hi = -1;
  int t_hi = 0;
  int64_t probe = std::min<int64_t>(cap, 16);
  while (hi < 0 && probe > lo) {
    const int t = tokens_at(probe);
    if (t + gen > length) {
      hi = probe, t_hi = t;
      break;
    }
    lo = probe, t_lo = t;
    // Next guess from the tokens per unit seen so far.
    const double per = static_cast<double>(t - t1) / static_cast<double>(probe - 1);
    const int64_t guess = per > 0 ? 1 + static_cast<int64_t>((length - gen - t1) / per) : probe * 2;
    probe = std::min<int64_t>(cap, std::max<int64_t>(guess, probe + 1));
  }
  while (hi > 0 && hi - lo > 1) {
    // Interpolate, clamped strictly inside the bracket.
    int64_t mid =
        lo + static_cast<int64_t>(
                 (static_cast<double>(length - gen - t_lo) / std::max(1, t_hi - t_lo)) * (hi - lo));
    mid = std::clamp<int64_t>(mid, lo + 1, hi - 1);
    if (hi - lo > 8 && (mid == lo + 1 || mid == hi - 1)) mid = lo + (hi - lo) / 2;
    const int t = tokens_at(mid);
    if (t + gen <= length) {
      lo = mid, t_lo = t;
    } else {
      hi = mid, t_hi = t;
    }
  }
  size_cache_[key] = lo;
  return lo;
}

RulerExample RulerGenerator::generate(const std::string& task, int length, int index,
                                      const Counter& count) {
  int64_t size = fit_size(task, length, count);
  const int gen = ruler_max_new_tokens(task);
  for (;;) {
    Rng rng(sample_seed(task, length, index));
    RulerExample ex = make(task, size, length, rng);
    if (count(ex) + gen <= length || size <= 1) return ex;
    size -= std::max<int64_t>(1, size / 100);  // this sample came out longer: shrink a little
  }
}

// --- jsonl -----------------------------------------------------------------------------------

std::vector<std::pair<int, RulerExample>> read_ruler_jsonl(const std::string& path) {
  std::vector<std::pair<int, RulerExample>> out;
  for_each_jsonl_record(path, "RULER", {"input", "outputs"}, [&](const nlohmann::json& j,
                                                                 int lineno) {
    RulerExample ex;
    const std::string input = j["input"].get<std::string>();
    size_t cut = std::string::npos;
    for (const char* marker : {" The special magic", " Answer:"}) {
      size_t at = input.rfind(marker);
      if (at != std::string::npos && (cut == std::string::npos || at > cut)) cut = at;
    }
    ex.text = cut == std::string::npos ? input : input.substr(0, cut);
    ex.answer_prefix = cut == std::string::npos ? "" : input.substr(cut);
    for (const auto& o : j["outputs"])
      ex.outputs.push_back(o.is_string() ? o.get<std::string>() : o.dump());
    out.emplace_back(j.value("index", lineno - 1), std::move(ex));
  });
  return out;
}

// --- the task ---------------------------------------------------------------------------------

RulerTask::RulerTask(const Model& model, const EvalSettings& settings,
                     std::vector<std::string> tasks, std::vector<int> lengths, uint64_t seed,
                     const std::string& essay_dir, std::string jsonl_path)
    : model_(model),
      settings_(settings),
      tasks_(std::move(tasks)),
      lengths_(std::move(lengths)),
      seed_(seed),
      jsonl_path_(std::move(jsonl_path)) {
  const int ctx = effective_context(model_, settings_.ctx_size);
  if (!jsonl_path_.empty()) return;
  if (tasks_.empty()) tasks_ = ruler_task_names();
  for (const std::string& t : tasks_) {
    const auto& names = ruler_task_names();
    if (std::find(names.begin(), names.end(), t) == names.end()) {
      fail("--subtasks: unknown RULER task '", t, "' (known: ", join(names, ", "), ")");
    }
  }
  if (lengths_.empty()) lengths_ = {std::min(4096, ctx)};
  for (int l : lengths_) {
    if (l > ctx) fail("--lengths: ", l, " is more than the context (", ctx, "; see -c/--ctx-size)");
    if (l < 256) fail("--lengths: ", l, " is too short for RULER (at least 256 tokens)");
  }
  gen_ = std::make_unique<RulerGenerator>(load_essays(essay_dir), seed_);
}

nlohmann::json RulerTask::setup() const {
  nlohmann::json j = {{"task", "ruler"}, {"chat", settings_.chat}, {"seed", seed_}};
  if (!jsonl_path_.empty()) j["jsonl"] = std::filesystem::path(jsonl_path_).filename().string();
  return j;
}

std::string RulerTask::prompt_text(const RulerExample& e) const {
  if (settings_.chat) return chat_prompt(model_, e.text, strip(e.answer_prefix));
  return e.input();
}

std::vector<SampleSpec> RulerTask::samples() {
  std::vector<SampleSpec> out;
  if (!jsonl_path_.empty()) {
    const std::string stem = std::filesystem::path(jsonl_path_).stem().string();
    const std::string dir_len =
        std::filesystem::path(jsonl_path_).parent_path().filename().string();
    for (auto& [index, ex] : read_ruler_jsonl(jsonl_path_)) {
      if (settings_.limit > 0 && static_cast<int>(out.size()) >= settings_.limit) break;
      const std::string id = stem + "/" + dir_len + "/" + std::to_string(index);
      out.push_back(
          {id, {{"subtask", stem}, {"length", std::atoi(dir_len.c_str())}, {"index", index}}});
      jsonl_[id] = std::move(ex);
    }
    return out;
  }
  const int n = settings_.limit > 0 ? settings_.limit : 500;  // RULER's samples per task
  for (const std::string& t : tasks_) {
    for (int l : lengths_) {
      for (int i = 0; i < n; ++i) {
        out.push_back({t + "/" + std::to_string(l) + "/" + std::to_string(i),
                       {{"subtask", t}, {"length", l}, {"index", i}}});
      }
    }
  }
  return out;
}

BuiltPrompt RulerTask::build(const SampleSpec& s) {
  const Tokenizer& tok = model_.require_tokenizer();
  const std::string task = s.meta["subtask"].get<std::string>();
  RulerExample ex;
  if (!jsonl_path_.empty()) {
    ex = jsonl_.at(s.id);
  } else {
    const int length = s.meta["length"].get<int>();
    ex = gen_->generate(task, length, s.meta["index"].get<int>(), [&](const RulerExample& e) {
      return static_cast<int>(tokenize_prompt(tok, prompt_text(e), settings_.chat).size());
    });
  }
  BuiltPrompt p;
  p.tokens = tokenize_prompt(tok, prompt_text(ex), settings_.chat);
  p.max_new_tokens = ruler_max_new_tokens(task);
  p.info["outputs"] = ex.outputs;
  return p;
}

double RulerTask::score(const SampleSpec&, const BuiltPrompt& p, const std::string& prediction,
                        nlohmann::json*) {
  return 100.0 * string_match_all(prediction, p.info["outputs"].get<std::vector<std::string>>());
}

std::string RulerTask::report(const ReportInput& in) {
  // Subtasks and lengths as they appear in the samples.
  std::vector<std::string> subtasks;
  std::vector<int> lengths;
  for (const SampleSpec& s : in.samples) {
    const std::string t = s.meta["subtask"].get<std::string>();
    const int l = s.meta["length"].get<int>();
    if (std::find(subtasks.begin(), subtasks.end(), t) == subtasks.end()) subtasks.push_back(t);
    if (std::find(lengths.begin(), lengths.end(), l) == lengths.end()) lengths.push_back(l);
  }
  const nlohmann::json costs = method_costs(in.methods, in.records);
  nlohmann::json out;
  out["task"] = "ruler";
  out["model"] = in.model;
  out["subtasks"] = subtasks;
  out["lengths"] = lengths;
  out["chat"] = settings_.chat;
  if (!jsonl_path_.empty()) out["jsonl"] = jsonl_path_;
  out["methods"] = nlohmann::json::object();

  std::string text = "ruler: " + in.model + " (string_match_all, 0-100)\n";
  std::map<std::string, nlohmann::json> per_method;
  for (int l : lengths) {
    std::vector<std::vector<std::string>> table;
    std::vector<std::string> head = {"method"};
    for (const std::string& t : subtasks) head.push_back(t);
    head.insert(head.end(), {"avg", "KV MiB", "TTFT s"});
    table.push_back(head);
    for (const MethodSpec& m : in.methods) {
      std::vector<std::string> row = {m.label};
      std::vector<double> task_means;
      double kv = 0, ttft = 0;
      int n = 0;
      for (const std::string& t : subtasks) {
        std::vector<double> v;
        for (const auto& r : in.records) {
          if (r["method"] != m.label || r["subtask"] != t || r["length"] != l) continue;
          v.push_back(r["score"].get<double>());
          kv += r.value("kv_bytes", 0.0);
          ttft += r.value("ttft_s", 0.0);
          ++n;
        }
        row.push_back(fmt1(mean(v)));
        if (!v.empty()) {
          task_means.push_back(mean(v));
          per_method[m.label]["by_length"][std::to_string(l)][t] = {{"mean", mean(v)},
                                                                    {"samples", v.size()}};
        }
      }
      row.push_back(fmt1(mean(task_means)));
      row.push_back(fmt1(n ? kv / n / 1048576.0 : std::nan("")));
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", n ? ttft / n : 0.0);
      row.push_back(n ? buf : "-");
      table.push_back(row);
      if (!task_means.empty())
        per_method[m.label]["by_length"][std::to_string(l)]["avg"] = mean(task_means);
    }
    text += "\nlength " + std::to_string(l) + "\n" + format_table(table);
  }
  for (const MethodSpec& m : in.methods) {
    nlohmann::json jm = per_method.count(m.label) ? per_method[m.label] : nlohmann::json::object();
    jm["method"] = m.name;
    jm["options"] = m.options;
    std::vector<double> all;
    for (const auto& r : in.records) {
      if (r["method"] == m.label) all.push_back(r["score"].get<double>());
    }
    jm["mean"] = all.empty() ? nlohmann::json() : nlohmann::json(mean(all));
    jm["samples"] = all.size();
    jm["mean_kv_bytes"] = costs[m.label]["mean_kv_bytes"];
    jm["mean_ttft_s"] = costs[m.label]["mean_ttft_s"];
    jm["mean_prompt_tokens"] = costs[m.label]["mean_prompt_tokens"];
    out["methods"][m.label] = jm;
  }
  write_file(in.out_dir + "/ruler.txt", text);
  write_file(in.out_dir + "/ruler.json", out.dump(2) + "\n");
  return text;
}

}  // namespace fastkv::eval
