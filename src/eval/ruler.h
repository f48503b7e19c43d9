// RULER's synthetic tasks (Hsieh et al., 2024), generated at any length for a tokenizer:
// niah_single_1/2/3, niah_multikey_1/2/3, niah_multivalue, niah_multiquery (needles "One of
// the special magic {numbers|uuids|words} for KEY is: VALUE." in a repeated-sentence, essay or
// needle haystack), vt (variable tracking: a chain VAR X = 12345, VAR Y = VAR X, ... in
// noise), cwe (common words in a numbered list) and fwe (frequent coded words, Zipf counts).
// Task parameters, templates and answer prefixes are those of RULER's synthetic.yaml and
// constants.py; the score is string_match_all (share of the reference strings found in the
// prediction, case-insensitive). Differences from RULER's Python generator (word lists, the
// sentence splitter, the few-shot example's exact whitespace) are listed in docs/accuracy.md.
//
// Samples are deterministic: sample i of (task, length) draws from a generator seeded with
// (seed, task, length, i), so --limit only cuts the list.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/rng.h"

#include "eval/task.h"

namespace fastkv::eval {

// The task names, in RULER's order.
const std::vector<std::string>& ruler_task_names();
// Tokens to generate (RULER's tokens_to_generate): niah 128, vt 30, cwe 120, fwe 50.
int ruler_max_new_tokens(const std::string& task);

struct RulerExample {
  std::string text;           // the task template filled in (RULER's input without the prefix)
  std::string answer_prefix;  // e.g. " The special magic number for x mentioned in the ... is"
  std::vector<std::string> outputs;
  std::string input() const { return text + answer_prefix; }  // RULER's "input" field
};

using fastkv::Rng;  // common/rng.h

class RulerGenerator {
 public:
  // Tokens of an example as it will be run (template, chat wrapping, BOS).
  using Counter = std::function<int(const RulerExample&)>;

  // `essays`: the Paul Graham essays (haystack of the essay tasks, and the vocabulary of cwe).
  RulerGenerator(std::string essays, uint64_t seed);

  // Sample `index` of `task` at `length` tokens (prompt + generated tokens <= length), as
  // large as fits.
  RulerExample generate(const std::string& task, int length, int index, const Counter& count);

  // One example of `task` with haystack size `size` (words, sentences, noise lines or list
  // entries, by task), drawing from `rng`. `length` only selects length-dependent parameters
  // (cwe's frequencies below 4096, fwe's vocabulary of length / 50).
  RulerExample make(const std::string& task, int64_t size, int length, Rng& rng) const;

  // Largest haystack size that any example of the task can use.
  int64_t max_size(const std::string& task) const;

 private:
  uint64_t sample_seed(const std::string& task, int length, int index) const;
  int64_t fit_size(const std::string& task, int length, const Counter& count);

  std::vector<std::string> essay_words_;  // the essays split at whitespace
  std::vector<std::string> vocabulary_;   // distinct lower-case essay words (cwe)
  uint64_t seed_;
  std::map<std::pair<std::string, int>, int64_t> size_cache_;
};

// The RULER task over generated samples (or one RULER jsonl file, read as it is).
// --limit N: samples per (task, length), or the first N lines of the jsonl file.
class RulerTask : public Task {
 public:
  RulerTask(const Model& model, const EvalSettings& settings, std::vector<std::string> tasks,
            std::vector<int> lengths, uint64_t seed, const std::string& essay_dir,
            std::string jsonl_path);
  std::string name() const override { return "ruler"; }
  nlohmann::json setup() const override;
  std::vector<SampleSpec> samples() override;
  BuiltPrompt build(const SampleSpec& s) override;
  double score(const SampleSpec& s, const BuiltPrompt& p, const std::string& prediction,
               nlohmann::json* extra) override;
  std::string report(const ReportInput& in) override;

  // The prompt text run for an example (chat-wrapped when asked).
  std::string prompt_text(const RulerExample& e) const;

 private:
  const Model& model_;
  EvalSettings settings_;
  std::vector<std::string> tasks_;
  std::vector<int> lengths_;
  uint64_t seed_;
  std::string jsonl_path_;
  std::unique_ptr<RulerGenerator> gen_;
  std::map<std::string, RulerExample> jsonl_;  // id -> example (jsonl mode)
};

// Reads a RULER jsonl file (fields index, input, outputs, length). The input is split into
// text and answer prefix at the last known answer prefix (" The special magic", " Answer:"),
// if any.
std::vector<std::pair<int, RulerExample>> read_ruler_jsonl(const std::string& path);

}  // namespace fastkv::eval
