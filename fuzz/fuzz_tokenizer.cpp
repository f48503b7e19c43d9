// libFuzzer target for the tokenizers: encoding arbitrary bytes (invalid UTF-8 included) must
// not crash or throw, must give ids inside the vocabulary, and decoding must give the text
// back where the tokenizer promises it (byte-level BPE: any valid UTF-8 text; SentencePiece:
// valid UTF-8 without a literal U+2581, which encoding cannot tell from an escaped space). The
// streaming decoder must agree with decode(). Any crash, sanitizer report or trap is a bug.
//
// The vocabulary is loaded once: $FASTKV_FUZZ_VOCAB, else FASTKV_FUZZ_DEFAULT_VOCAB when the
// build defines it, else ../shared/tokenizer/ggml-vocab-gpt-2.gguf beside this source tree.
//   FASTKV_FUZZ_VOCAB=../shared/tokenizer/ggml-vocab-llama-spm.gguf build-fuzz/fuzz_tokenizer
// Input layout: the first byte holds flags (bit 0: add_special, bit 1: parse_special), the
// rest is the text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

std::string vocab_path() {
  if (const char* env = std::getenv("FASTKV_FUZZ_VOCAB"); env && *env) return env;
#ifdef FASTKV_FUZZ_DEFAULT_VOCAB
  return FASTKV_FUZZ_DEFAULT_VOCAB;
#else
  // <source>/fuzz/fuzz_tokenizer.cpp -> <source>/../shared/tokenizer/...
  std::string here = __FILE__;
  const size_t slash = here.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : here.substr(0, slash);
  return dir + "/../../shared/tokenizer/ggml-vocab-gpt-2.gguf";
#endif
}

struct Loaded {
  std::unique_ptr<fastkv::gguf::File> file;
  std::unique_ptr<fastkv::Tokenizer> tok;
};

const fastkv::Tokenizer& tokenizer() {
  static const Loaded loaded = [] {
    Loaded l;
    const std::string path = vocab_path();
    try {
      l.file = std::make_unique<fastkv::gguf::File>(fastkv::gguf::File::open(path));
      l.tok = fastkv::Tokenizer::from_gguf(*l.file);
    } catch (const fastkv::Error& e) {
      std::fprintf(stderr,
                   "fuzz_tokenizer: cannot load the vocabulary (set FASTKV_FUZZ_VOCAB): %s\n",
                   e.what());
      std::abort();
    }
    return l;
  }();
  return *loaded.tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fastkv::Tokenizer& tok = tokenizer();
  if (size == 0) return 0;
  const bool add_special = data[0] & 1;
  const bool parse_special = data[0] & 2;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  const std::vector<int32_t> ids = tok.encode(text, add_special, parse_special);
  for (int32_t id : ids) {
    if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
  }

  // Round trip (rendering special tokens, minus the BOS that add_special put in front).
  std::vector<int32_t> body = ids;
  if (add_special && tok.add_bos()) {
    if (body.empty() || body.front() != tok.bos_id()) __builtin_trap();
    body.erase(body.begin());
  }
  const std::string back = tok.decode(body, /*render_special=*/true);
  const bool valid = fastkv::unicode::is_valid_utf8(text);
  bool promised = false;
  if (tok.kind() == fastkv::Tokenizer::Kind::kBytePairEncoding) {
    // (Bytes the vocabulary has no entry for are dropped; gpt-2's has all 256.)
    promised = valid;
    for (char c : text) {
      promised =
          promised && tok.find_token(fastkv::unicode::byte_to_utf8(static_cast<uint8_t>(c))) >= 0;
    }
  } else {
    promised = valid && text.find("\xE2\x96\x81") == std::string_view::npos;
  }
  if (promised && back != text) __builtin_trap();

  // The stream decoder gives the same bytes as decode(), whatever the chunking.
  fastkv::StreamDecoder sd(tok, /*at_text_start=*/true, /*render_special=*/true);
  std::string streamed;
  for (int32_t id : body) streamed += sd.push(id);
  streamed += sd.flush();
  if (streamed != back) __builtin_trap();
  return 0;
}
