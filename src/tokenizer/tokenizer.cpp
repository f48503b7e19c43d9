// Tokenizer::from_gguf, the shared vocabulary (tokenizer_detail::Vocab, VocabTokenizer),
// decode() and StreamDecoder. The two algorithms are in spm.cpp and bpe.cpp.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "io/gguf.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace fastkv {

namespace tokenizer_detail {

// --- SpecialMatcher -----------------------------------------------------------------------

int32_t SpecialMatcher::child(int32_t node, uint8_t b) const {
  const auto& edges = nodes_[static_cast<size_t>(node)].edges;
  auto it = std::lower_bound(edges.begin(), edges.end(), std::make_pair(b, int32_t{-1}));
  return it != edges.end() && it->first == b ? it->second : -1;
}

void SpecialMatcher::add(std::string_view text, int32_t id) {
  if (text.empty()) return;
  auto b0 = static_cast<uint8_t>(text[0]);
  if (root_[b0] < 0) {
    root_[b0] = static_cast<int32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  int32_t node = root_[b0];
  for (size_t i = 1; i < text.size(); ++i) {
    auto b = static_cast<uint8_t>(text[i]);
    int32_t next = child(node, b);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();  // may move nodes_: index again below
      auto& edges = nodes_[static_cast<size_t>(node)].edges;
      edges.insert(std::lower_bound(edges.begin(), edges.end(), std::make_pair(b, int32_t{-1})),
                   {b, next});
    }
    node = next;
  }
  if (nodes_[static_cast<size_t>(node)].id < 0) nodes_[static_cast<size_t>(node)].id = id;
}

std::pair<size_t, int32_t> SpecialMatcher::match(std::string_view text, size_t pos) const {
  std::pair<size_t, int32_t> best{0, -1};
  if (pos >= text.size()) return best;
  int32_t node = root_[static_cast<uint8_t>(text[pos])];
  size_t len = 1;
  while (node >= 0) {
    const Node& n = nodes_[static_cast<size_t>(node)];
    if (n.id >= 0) best = {len, n.id};
    if (pos + len >= text.size()) break;
    node = child(node, static_cast<uint8_t>(text[pos + len]));
    ++len;
  }
  return best;
}

// --- Loading ------------------------------------------------------------------------------

namespace {

// A special token id from the metadata: -1 when absent or "none" (-1, or 0xFFFFFFFF as u32).
int32_t read_special_id(const gguf::File& f, const char* key, size_t n_vocab) {
  const int64_t v = f.get_int(key, -1);
  if (v == -1 || v == 0xFFFFFFFFLL) return -1;
  if (v < 0 || static_cast<uint64_t>(v) >= n_vocab) {
    f.error(cat(key, " = ", v, " is out of range (the vocabulary has ", n_vocab, " tokens)"));
  }
  return static_cast<int32_t>(v);
}

}  // namespace

Vocab load_vocab(const gguf::File& f) {
  Vocab v;
  v.file = f.path();
  if (!f.has("tokenizer.ggml.model")) f.error("no tokenizer (tokenizer.ggml.model missing)");
  v.model = f.get_string("tokenizer.ggml.model");
  if (v.model != "llama" && v.model != "gpt2") {
    f.error(cat("unsupported tokenizer model '", v.model,
                "' (tokenizer.ggml.model; supported: llama (SentencePiece), gpt2 (byte-level "
                "BPE))"));
  }
  v.pre = f.get_string("tokenizer.ggml.pre", "default");
  if (v.model == "gpt2" && !PreTokenizer::is_supported(v.pre)) {
    f.error(cat("unsupported pre-tokenizer '", v.pre,
                "' (tokenizer.ggml.pre; supported: ", PreTokenizer::supported_names(), ")"));
  }

  v.texts = f.get_string_array("tokenizer.ggml.tokens");
  const size_t n = v.texts.size();
  if (n == 0) f.error("tokenizer.ggml.tokens is empty");
  if (n > static_cast<size_t>(INT32_MAX)) f.error("tokenizer.ggml.tokens is too long");

  if (f.has("tokenizer.ggml.scores")) {
    std::vector<double> s = f.get_float_array("tokenizer.ggml.scores");
    if (s.size() != n) {
      f.error(cat("tokenizer.ggml.scores has ", s.size(), " entries but tokenizer.ggml.tokens has ",
                  n));
    }
    v.scores.resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (std::isnan(s[i])) f.error(cat("tokenizer.ggml.scores[", i, "] is NaN"));
      v.scores[i] = static_cast<float>(s[i]);
    }
  } else {
    v.scores.assign(n, 0.0f);
  }

  if (f.has("tokenizer.ggml.token_type")) {
    std::vector<int64_t> t = f.get_int_array("tokenizer.ggml.token_type");
    if (t.size() != n) {
      f.error(cat("tokenizer.ggml.token_type has ", t.size(),
                  " entries but tokenizer.ggml.tokens has ", n));
    }
    v.types.resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (t[i] < kUndefined || t[i] > kByte) {
        f.error(cat("tokenizer.ggml.token_type[", i, "] = ", t[i], " is not a token type (0..6)"));
      }
      v.types[i] = t[i] == kUndefined ? kNormal : static_cast<int32_t>(t[i]);
    }
  } else {
    v.types.assign(n, kNormal);
  }

  if (v.model == "gpt2") v.merges = f.get_string_array("tokenizer.ggml.merges");

  v.bos = read_special_id(f, "tokenizer.ggml.bos_token_id", n);
  v.eos = read_special_id(f, "tokenizer.ggml.eos_token_id", n);
  v.unk = read_special_id(f, "tokenizer.ggml.unknown_token_id", n);
  v.pad = read_special_id(f, "tokenizer.ggml.padding_token_id", n);
  v.eot = read_special_id(f, "tokenizer.ggml.eot_token_id", n);
  v.eom = read_special_id(f, "tokenizer.ggml.eom_token_id", n);
  if (v.unk < 0 && !f.has("tokenizer.ggml.unknown_token_id")) {
    // No id given: the entry typed "unknown", if there is one.
    auto it = std::find(v.types.begin(), v.types.end(), static_cast<int32_t>(kUnknown));
    if (it != v.types.end()) v.unk = static_cast<int32_t>(it - v.types.begin());
  }

  const bool spm = v.model == "llama";
  // Defaults when the keys are absent: SentencePiece models start with BOS, GPT-2 style ones
  // do not (Llama 3 style files always carry the key).
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", spm);
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token", false);
  v.add_space_prefix = spm && f.get_bool("tokenizer.ggml.add_space_prefix", true);
  return v;
}

// --- VocabTokenizer -----------------------------------------------------------------------

namespace {

// Texts of end-of-turn tokens that chat models emit instead of (or besides) their EOS.
bool is_end_of_turn_text(std::string_view t) {
  static constexpr std::string_view kTexts[] = {
      "<|eot_id|>", "<|im_end|>", "<|end|>",         "<end_of_turn>", "<|endoftext|>",
      "<|EOT|>",    "<EOT>",      "<|end_of_text|>", "<|eom_id|>",    "</s>",
  };
  for (std::string_view k : kTexts) {
    if (t == k) return true;
  }
  return false;
}

}  // namespace

VocabTokenizer::VocabTokenizer(Vocab v) : v_(std::move(v)) {
  const size_t n = v_.texts.size();
  v_.index.reserve(n);
  for (size_t i = 0; i < n; ++i) v_.index.emplace(v_.texts[i], static_cast<int32_t>(i));

  eog_.assign(n, 0);
  for (int32_t id : {v_.eos, v_.eot, v_.eom}) {
    if (id >= 0) eog_[static_cast<size_t>(id)] = 1;
  }
  for (size_t i = 0; i < n; ++i) {
    const int32_t t = v_.types[i];
    if (t == kControl || t == kUnknown || t == kUserDefined) {
      all_specials_.add(v_.texts[i], static_cast<int32_t>(i));
      if (t == kUserDefined) user_defined_.add(v_.texts[i], static_cast<int32_t>(i));
      if ((t == kControl || t == kUserDefined) && is_end_of_turn_text(v_.texts[i])) eog_[i] = 1;
    }
  }
}

void VocabTokenizer::check_id(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= v_.texts.size()) {
    fail(v_.file, ": token id ", id, " is out of range (the vocabulary has ", v_.texts.size(),
         " tokens)");
  }
}

bool VocabTokenizer::is_end_of_generation(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < eog_.size() && eog_[static_cast<size_t>(id)];
}

bool VocabTokenizer::is_special(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= v_.types.size()) return false;
  const int32_t t = v_.types[static_cast<size_t>(id)];
  return t == kControl || t == kUnknown || t == kUserDefined;
}

const std::string& VocabTokenizer::token_text(int32_t id) const {
  check_id(id);
  return v_.texts[static_cast<size_t>(id)];
}

int32_t VocabTokenizer::find_token(std::string_view text) const {
  auto it = v_.index.find(text);
  return it == v_.index.end() ? -1 : it->second;
}

std::vector<int32_t> VocabTokenizer::encode(std::string_view text, bool add_special,
                                            bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && add_bos()) out.push_back(v_.bos);

  // User-defined tokens are always matched whole (as Hugging Face tokenizers match added
  // tokens); control and unknown tokens only when parse_special.
  const SpecialMatcher& matcher = parse_special ? all_specials_ : user_defined_;
  bool after_special = true;  // the start of the input counts as "after a special token"
  size_t raw_start = 0;
  if (!matcher.empty()) {
    for (size_t pos = 0; pos < text.size();) {
      auto [len, id] = matcher.match(text, pos);
      if (len == 0) {
        ++pos;
        continue;
      }
      if (pos > raw_start) {
        encode_text(text.substr(raw_start, pos - raw_start), after_special, out);
      }
      out.push_back(id);
      after_special = true;
      pos += len;
      raw_start = pos;
    }
  }
  if (text.size() > raw_start) encode_text(text.substr(raw_start), after_special, out);

  if (add_special && v_.add_eos && v_.eos >= 0) out.push_back(v_.eos);
  return out;
}

}  // namespace tokenizer_detail

// --- Tokenizer ----------------------------------------------------------------------------

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  tokenizer_detail::Vocab v = tokenizer_detail::load_vocab(file);
  if (v.model == "llama") return tokenizer_detail::make_spm_tokenizer(std::move(v));
  return tokenizer_detail::make_bpe_tokenizer(std::move(v));
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  const bool prefix = adds_space_prefix();
  bool strip = prefix;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, render_special);
    if (is_special(id)) {
      out += piece;
      strip = prefix;
      continue;
    }
    if (strip && !piece.empty()) {
      if (piece[0] == ' ') piece.erase(0, 1);
      strip = false;
    }
    out += piece;
  }
  return out;
}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tok_.token_to_piece(id, render_special_);
  const bool prefix = tok_.adds_space_prefix();
  if (tok_.is_special(id)) {
    first_ = prefix;
  } else if (first_ && !piece.empty()) {
    if (prefix && piece[0] == ' ') piece.erase(0, 1);
    first_ = false;
  }
  pending_ += piece;
  const size_t hold = unicode::incomplete_tail_length(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamDecoder::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace fastkv
