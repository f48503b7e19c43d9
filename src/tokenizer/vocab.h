// Internal to src/tokenizer: the vocabulary shared by both tokenizer families and the
// special-token matcher. Users include tokenizer/tokenizer.h only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace fastkv::gguf {
class File;
}

namespace fastkv::tokenizer_detail {

// tokenizer.ggml.token_type values.
enum TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Finds special-token texts in a string: at a position, the longest token text starting
// there (a byte trie), so that scanning left to right gives the leftmost-longest split.
class SpecialMatcher {
 public:
  SpecialMatcher() { root_.fill(-1); }
  // Adds a token text (ignored when empty or already present: the first id wins).
  void add(std::string_view text, int32_t id);
  bool empty() const { return nodes_.empty(); }
  // {length, id} of the longest token at text[pos], or {0, -1}.
  std::pair<size_t, int32_t> match(std::string_view text, size_t pos) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> edges;  // sorted by byte
    int32_t id = -1;
  };
  int32_t child(int32_t node, uint8_t b) const;
  std::array<int32_t, 256> root_;
  std::vector<Node> nodes_;
};

// Everything read from the `tokenizer.ggml.*` metadata, validated.
struct Vocab {
  std::string file;   // for messages
  std::string model;  // "llama" / "gpt2"
  std::string pre;    // "default" when absent
  std::vector<std::string> texts;
  std::vector<float> scores;                            // all 0 when the file has none
  std::vector<int32_t> types;                           // TokenType; kNormal when the file has none
  std::vector<std::string> merges;                      // BPE only, "left right"
  std::unordered_map<std::string_view, int32_t> index;  // text -> first id with that text
  int32_t bos = -1, eos = -1, unk = -1, pad = -1, eot = -1, eom = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
};

// Reads and validates the vocabulary; throws fastkv::Error("<file>: ...").
Vocab load_vocab(const gguf::File& file);

// The part of Tokenizer both families share: vocabulary queries, special tokens, encode()'s
// outer loop (BOS/EOS, cutting the text at special tokens).
class VocabTokenizer : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab v);

  std::string model_name() const override { return v_.model; }
  std::string pre_name() const override { return v_.pre; }
  int32_t n_vocab() const override { return static_cast<int32_t>(v_.texts.size()); }
  int32_t bos_id() const override { return v_.bos; }
  int32_t eos_id() const override { return v_.eos; }
  bool add_bos() const override { return v_.add_bos && v_.bos >= 0; }
  bool is_end_of_generation(int32_t id) const override;
  std::vector<int32_t> encode(std::string_view text, bool add_special,
                              bool parse_special) const override;
  const std::string& token_text(int32_t id) const override;
  int32_t find_token(std::string_view text) const override;
  bool is_special(int32_t id) const override;

  int32_t token_type(int32_t id) const { return v_.types[static_cast<size_t>(id)]; }

 protected:
  // Encodes text between special tokens. after_special: the text starts the input or follows
  // a special token.
  virtual void encode_text(std::string_view text, bool after_special,
                           std::vector<int32_t>& out) const = 0;
  void check_id(int32_t id) const;

  Vocab v_;

 private:
  SpecialMatcher all_specials_;  // control, unknown and user-defined tokens
  SpecialMatcher user_defined_;  // user-defined tokens only (always matched)
  std::vector<char> eog_;
};

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab v);
std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocab v);

}  // namespace fastkv::tokenizer_detail
