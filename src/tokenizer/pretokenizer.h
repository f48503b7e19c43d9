// Regex pre-tokenizers of byte-level BPE vocabularies (`tokenizer.ggml.pre`).
//
// A pre-tokenizer is a list of regexes applied in sequence: each one splits every piece that
// the previous ones produced into its matches and the text between the matches (both kept,
// in order: the "isolated" split of Hugging Face tokenizers). A single regex that matches
// everything, like GPT-2's, is the common case. The regexes run on PCRE2 (UTF + UCP mode), so
// \p{L}, \p{N}, \p{P}, \s and look-ahead have their Unicode meaning; each pattern is compiled
// (and JIT-compiled when available) once per process and shared.
//
// Input that is not valid UTF-8 is cut into maximal valid runs and single invalid bytes; each
// invalid byte becomes a piece of its own and the regexes only ever see valid runs.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fastkv {

class PreTokenizer {
 public:
  // Whether `name` (a `tokenizer.ggml.pre` value) is supported.
  static bool is_supported(std::string_view name);
  // The supported names, comma separated (for error messages and docs).
  static std::string supported_names();

  // Precondition: is_supported(name). Throws fastkv::Error when a pattern fails to compile.
  explicit PreTokenizer(std::string_view name);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  const std::string& name() const { return name_; }
  // Llama-3 style: a piece that is a whole vocabulary entry is taken as is, without merges.
  bool ignore_merges() const { return ignore_merges_; }

  // Appends the pieces of `text` (views into `text`, none empty, concatenating to `text`).
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  struct Pattern;  // a compiled, shared regex

 private:
  std::string name_;
  bool ignore_merges_ = false;
  std::vector<std::shared_ptr<const Pattern>> patterns_;
};

}  // namespace fastkv
