// Needle in a haystack (the Paul Graham essay version): the essays, concatenated in file-name
// order, are trimmed to the context length in the model's tokens; the needle sentence goes in
// at a depth (percent of the haystack), moved back to just after the nearest sentence end; the
// model completes "The best thing to do in San Francisco is: " with 30 greedy tokens, scored by
// the share of the needle's answer words it reproduces (0-100).
//
// Samples: every (length, depth) pair, lengths outer, and per pair `--samples K` haystacks:
// haystack s starts s/8 of the way into the essays (at the next paragraph, wrapping around to
// the first essay), so every sample reads other text; sample 0 is the essays from the start
// (ids "L4096/D50", then "L4096/D50/S1", ...). A cell's score is the mean over its samples.
// --limit N keeps the first N.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "eval/task.h"

namespace fastkv::eval {

inline constexpr const char* kNiahNeedle =
    "\nThe best thing to do in San Francisco is eat a sandwich and sit in Dolores Park on a "
    "sunny day.\n";
inline constexpr const char* kNiahQuestion = "The best thing to do in San Francisco is: ";
inline constexpr const char* kNiahAnswer = "eat a sandwich and sit in Dolores Park on a sunny day.";
inline constexpr int kNiahMaxNewTokens = 30;
inline constexpr int kMaxNiahSamples = 8;

// The essays (*.txt in `dir`), concatenated in file-name order. Throws when there are none.
std::string load_essays(const std::string& dir);

// Where a needle aimed at byte `target` goes: just after the nearest sentence end ('.', '!' or
// '?', possibly followed by closing quotes or brackets, then whitespace or the end of the text)
// at or before `target`; 0 when there is none. target >= text.size() gives text.size().
size_t needle_position(std::string_view text, size_t target);

// Default grids: 8 lengths from 1024 to the context (multiples of 256, the last one the
// context itself), 10 depths 0..100 evenly spaced (rounded).
std::vector<int> default_niah_lengths(int ctx);
std::vector<int> default_niah_depths();

class NiahTask : public Task {
 public:
  NiahTask(const Model& model, const EvalSettings& settings, std::vector<int> lengths,
           std::vector<int> depths, std::string essay_dir);
  std::string name() const override { return "niah"; }
  nlohmann::json setup() const override;
  std::vector<SampleSpec> samples() override;
  BuiltPrompt build(const SampleSpec& s) override;
  double score(const SampleSpec& s, const BuiltPrompt& p, const std::string& prediction,
               nlohmann::json* extra) override;
  std::string report(const ReportInput& in) override;

  // The prompt around a haystack that already holds the needle.
  std::string make_prompt(const std::string& context) const;

 private:
  // Haystack tokens of sample s (no BOS), at least n of them (or all the essays have).
  const std::vector<int32_t>& haystack_tokens(int s, size_t n);
  // The essays as sample s reads them: rotated to start at its paragraph.
  std::string_view essays_of(int s);

  const Model& model_;
  EvalSettings settings_;
  std::vector<int> lengths_, depths_;
  std::string essay_dir_;
  std::string essays_;
  struct Hay {
    std::string text;             // the rotated essays
    std::vector<int32_t> tokens;  // tokens of text[0, chars_used)
    size_t chars_used = 0;
  };
  std::map<int, Hay> hay_;  // by sample
};

}  // namespace fastkv::eval
