// Byte-level BPE tokenizer (`tokenizer.ggml.model = gpt2`).
//
// Text between special tokens is cut by the pre-tokenizer (pretokenizer.h) into pieces. Each
// piece starts as one symbol per byte (the vocabulary entry of the byte's printable stand-in,
// see unicode::byte_to_codepoint); then, repeatedly, the adjacent pair with the best-ranked
// merge (earliest in tokenizer.ggml.merges; ties: the leftmost pair) is joined. Candidate pairs
// sit in a min-heap with lazy invalidation: O(n log n) for a piece of n bytes.
#include <algorithm>
#include <array>
#include <unordered_map>

#include "common/error.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace fastkv::tokenizer_detail {

namespace {

class BpeTokenizer final : public VocabTokenizer {
 public:
  explicit BpeTokenizer(Vocab v) : VocabTokenizer(std::move(v)), pre_(v_.pre) {
    for (int b = 0; b < 256; ++b) {
      auto it = v_.index.find(unicode::byte_to_utf8(static_cast<uint8_t>(b)));
      byte_tokens_[static_cast<size_t>(b)] = it == v_.index.end() ? -1 : it->second;
    }
    merges_.reserve(v_.merges.size());
    std::string joined;
    for (size_t rank = 0; rank < v_.merges.size(); ++rank) {
      const std::string& m = v_.merges[rank];
      const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
      if (sp == std::string::npos || sp + 1 >= m.size()) {
        fail(v_.file, ": tokenizer.ggml.merges[", rank, "] = '", m,
             "' is not two tokens separated by a space");
      }
      const std::string_view left = std::string_view(m).substr(0, sp);
      const std::string_view right = std::string_view(m).substr(sp + 1);
      joined.assign(left).append(right);
      const int32_t l = find_token(left), r = find_token(right), j = find_token(joined);
      if (l < 0 || r < 0 || j < 0) continue;  // refers to entries the vocabulary lacks
      merges_.emplace(key(l, r), Merge{static_cast<int32_t>(rank), j});  // first rank wins
    }
    v_.merges.clear();
    v_.merges.shrink_to_fit();
  }

  Kind kind() const override { return Kind::kBytePairEncoding; }

  std::string token_to_piece(int32_t id, bool render_special) const override {
    check_id(id);
    const std::string& text = v_.texts[static_cast<size_t>(id)];
    switch (v_.types[static_cast<size_t>(id)]) {
      case kControl:
      case kUnknown:
      case kUnused:
        return render_special ? text : std::string();
      case kUserDefined:
        return text;  // added tokens are stored as plain text
      default:
        break;
    }
    // Map each stand-in code point back to its byte; anything else is kept as it is.
    std::string r;
    r.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
      const size_t n = unicode::valid_sequence_length(text, pos);
      if (n == 0) {
        r.push_back(text[pos++]);
        continue;
      }
      const int b = unicode::codepoint_to_byte(unicode::decode_sequence(text, pos, n));
      if (b >= 0) {
        r.push_back(static_cast<char>(b));
      } else {
        r.append(text, pos, n);
      }
      pos += n;
    }
    return r;
  }

 protected:
  void encode_text(std::string_view text, bool /*after_special*/,
                   std::vector<int32_t>& out) const override {
    std::vector<std::string_view> pieces;
    pre_.split(text, pieces);
    Scratch scratch;
    for (std::string_view piece : pieces) encode_piece(piece, scratch, out);
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  struct Symbol {
    int32_t prev, next;
    uint32_t len;  // bytes; 0: merged into its left neighbour
    int32_t id;    // -1: a byte whose stand-in is not in the vocabulary (never merges)
  };
  struct Candidate {
    int32_t rank;
    int32_t left;
    uint32_t len;
    int32_t result;
    bool operator<(const Candidate& o) const {  // min-heap: lowest rank, then leftmost
      if (rank != o.rank) return rank > o.rank;
      return left > o.left;
    }
  };
  struct Scratch {
    std::vector<Symbol> sym;
    std::vector<Candidate> heap;
    std::string mapped;
  };

  static uint64_t key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }

  void encode_piece(std::string_view piece, Scratch& sc, std::vector<int32_t>& out) const {
    if (pre_.ignore_merges()) {
      sc.mapped.clear();
      for (char c : piece) sc.mapped += unicode::byte_to_utf8(static_cast<uint8_t>(c));
      const int32_t id = find_token(sc.mapped);
      if (id >= 0 && v_.types[static_cast<size_t>(id)] == kNormal) {
        out.push_back(id);
        return;
      }
    }
    if (piece.size() == 1) {
      push_symbol(byte_tokens_[static_cast<uint8_t>(piece[0])], out);
      return;
    }

    auto& sym = sc.sym;
    sym.clear();
    for (size_t i = 0; i < piece.size(); ++i) {
      const auto idx = static_cast<int32_t>(i);
      sym.push_back({idx - 1, idx + 1 < static_cast<int32_t>(piece.size()) ? idx + 1 : -1, 1,
                     byte_tokens_[static_cast<uint8_t>(piece[i])]});
    }

    auto& heap = sc.heap;  // used through std::push_heap / std::pop_heap
    heap.clear();
    auto consider = [&](int32_t left) {
      if (left < 0) return;
      const Symbol& l = sym[static_cast<size_t>(left)];
      if (l.next < 0 || l.id < 0) return;
      const Symbol& r = sym[static_cast<size_t>(l.next)];
      if (r.id < 0) return;
      auto it = merges_.find(key(l.id, r.id));
      if (it == merges_.end()) return;
      heap.push_back({it->second.rank, left, l.len + r.len, it->second.result});
      std::push_heap(heap.begin(), heap.end());
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) consider(i);

    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end());
      const Candidate c = heap.back();
      heap.pop_back();
      Symbol& l = sym[static_cast<size_t>(c.left)];
      if (l.len == 0 || l.next < 0) continue;
      Symbol& r = sym[static_cast<size_t>(l.next)];
      if (l.len + r.len != c.len) continue;  // stale: one side has grown since
      l.len = c.len;
      l.id = c.result;
      l.next = r.next;
      if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = c.left;
      r.len = 0;
      consider(l.prev);
      consider(c.left);
    }

    for (int32_t i = 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
      push_symbol(sym[static_cast<size_t>(i)].id, out);
    }
  }

  // A symbol without an id is a byte the vocabulary cannot spell (SmolLM2's lacks a few
  // control characters and bytes that never occur in UTF-8): the unknown token when the
  // vocabulary has a real one, else the byte is dropped, as the reference tokenizers do.
  // (Some files name a control token such as <|endoftext|> as "unknown"; emitting that would
  // end generation or confuse the model.)
  void push_symbol(int32_t id, std::vector<int32_t>& out) const {
    if (id >= 0) {
      out.push_back(id);
    } else if (v_.unk >= 0 && v_.types[static_cast<size_t>(v_.unk)] == kUnknown) {
      out.push_back(v_.unk);
    }
  }

  PreTokenizer pre_;
  std::array<int32_t, 256> byte_tokens_{};
  std::unordered_map<uint64_t, Merge> merges_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(Vocab v) {
  return std::make_unique<BpeTokenizer>(std::move(v));
}

}  // namespace fastkv::tokenizer_detail
