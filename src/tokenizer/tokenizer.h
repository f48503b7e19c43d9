// Tokenizers built from a GGUF file's `tokenizer.ggml.*` metadata.
//
// Two families:
//  - SentencePiece-style (`tokenizer.ggml.model = llama`): scores, byte fallback (<0xNN>
//    tokens), spaces as U+2581 and the leading-space rule.
//  - Byte-level BPE (`gpt2`): merges ranked by order, bytes mapped to printable code points,
//    and a pre-tokenizer (regex split) chosen by `tokenizer.ggml.pre`.
// Special/control tokens in the text are matched whole (when parse_special) before the
// normal algorithm runs on the text between them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fastkv::gguf {
class File;
}

namespace fastkv {

class Tokenizer {
 public:
  enum class Kind { kSentencePiece, kBytePairEncoding };

  // Throws fastkv::Error("<file>: no tokenizer (tokenizer.ggml.model missing)") and similar
  // for missing or inconsistent metadata, or an unsupported model/pre-tokenizer.
  static std::unique_ptr<Tokenizer> from_gguf(const gguf::File& file);
  virtual ~Tokenizer() = default;

  virtual Kind kind() const = 0;
  // "llama" / "gpt2" as in the file, and the pre-tokenizer name ("default" when absent).
  virtual std::string model_name() const = 0;
  virtual std::string pre_name() const = 0;

  virtual int32_t n_vocab() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when the vocabulary has none
  virtual int32_t eos_id() const = 0;  // -1 when the vocabulary has none
  virtual bool add_bos() const = 0;    // whether encode(..., add_special=true) prepends BOS
  // End-of-generation tokens: EOS, EOT (<|eot_id|>, <|im_end|>, <|end|> ...).
  virtual bool is_end_of_generation(int32_t id) const = 0;

  // Token ids of `text`. add_special: prepend BOS when the vocabulary asks for it.
  // parse_special: recognise control/special token texts inside `text`.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;

  // The raw vocabulary entry of a token (e.g. "▁the", "Ġthe", "<0x0A>"). Throws on a bad id.
  virtual const std::string& token_text(int32_t id) const = 0;
  // The bytes a token stands for in output text (may be an incomplete UTF-8 sequence).
  // Control tokens give "" unless render_special.
  virtual std::string token_to_piece(int32_t id, bool render_special = false) const = 0;
  // Id of an exact vocabulary entry, or -1.
  virtual int32_t find_token(std::string_view text) const = 0;

  // Whether `id` is a special token: control, unknown or user-defined (the kinds that encode()
  // matches whole in the text). False for a bad id.
  virtual bool is_special(int32_t id) const { return false; }
  // SentencePiece with `tokenizer.ggml.add_space_prefix` (default true): encoding puts a space
  // (U+2581) before the text at the start of the input and after every special token, and
  // decoding removes one leading space there again.
  virtual bool adds_space_prefix() const { return false; }

  // Text of a token sequence: concatenated pieces; for SentencePiece the leading space that
  // encoding added is removed when the sequence starts at the beginning of the text (and after
  // each special token, where encoding adds one too), so decode(encode(s)) == s for text
  // without special tokens. Throws on a bad id.
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;
};

// Turns a stream of generated tokens into text chunks that are always complete UTF-8:
// bytes of an incomplete character are held back until the rest arrives.
// Special tokens are rendered as decode(..., render_special) would.
// at_text_start: the tokens start the text, so the SentencePiece leading space is removed
// from the first piece as decode() does; pass false when streaming a continuation (generated
// tokens after a prompt), whose leading space is real.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool at_text_start = true,
                         bool render_special = false)
      : tok_(tok), first_(at_text_start), render_special_(render_special) {}
  // Text that can be printed now after appending `id`. Throws on a bad id.
  std::string push(int32_t id);
  // Whatever is still held back (invalid or truncated UTF-8 at the end).
  std::string flush();

 private:
  const Tokenizer& tok_;
  std::string pending_;
  bool first_ = true;  // the next text piece's leading space is the one encoding added
  bool render_special_ = false;
};

}  // namespace fastkv
