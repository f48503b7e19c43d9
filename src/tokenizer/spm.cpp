// SentencePiece-style tokenizer (`tokenizer.ggml.model = llama`).
//
// Text between special tokens: spaces become U+2581 ("▁"), with one more in front when the
// text starts the input or follows a special token (add_space_prefix). The text is cut into
// UTF-8 characters; then, repeatedly, the adjacent pair whose concatenation is a vocabulary
// entry with the highest score is merged (ties: the leftmost pair). The candidate pairs sit in
// a max-heap with lazy invalidation, so a text of n characters costs O(n log n) whatever its
// shape. Finally a symbol that is not in the vocabulary (a single character the vocabulary
// lacks) becomes its UTF-8 bytes as <0xNN> tokens (byte fallback), or the unknown token when
// the vocabulary has no byte tokens.
#include <array>
#include <cstdio>
#include <queue>

#include "common/error.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace fastkv::tokenizer_detail {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581

class SpmTokenizer final : public VocabTokenizer {
 public:
  explicit SpmTokenizer(Vocab v) : VocabTokenizer(std::move(v)) {
    byte_tokens_.fill(-1);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto it = v_.index.find(name);
      if (it != v_.index.end() && v_.types[static_cast<size_t>(it->second)] == kByte) {
        byte_tokens_[static_cast<size_t>(b)] = it->second;
      }
    }
    // A byte token's value, for decoding.
    byte_value_.assign(v_.texts.size(), -1);
    for (int b = 0; b < 256; ++b) {
      if (byte_tokens_[static_cast<size_t>(b)] >= 0) {
        byte_value_[static_cast<size_t>(byte_tokens_[static_cast<size_t>(b)])] =
            static_cast<int16_t>(b);
      }
    }
  }

  Kind kind() const override { return Kind::kSentencePiece; }
  bool adds_space_prefix() const override { return v_.add_space_prefix; }

  std::string token_to_piece(int32_t id, bool render_special) const override {
    check_id(id);
    const std::string& text = v_.texts[static_cast<size_t>(id)];
    switch (v_.types[static_cast<size_t>(id)]) {
      case kByte: {
        int b = byte_value_[static_cast<size_t>(id)];
        if (b >= 0) return std::string(1, static_cast<char>(b));
        return text;  // a byte token whose text is not <0xNN>: show it as is
      }
      case kControl:
      case kUnknown:
      case kUnused:
        return render_special ? text : std::string();
      case kUserDefined:
        return text;
      default:
        return unescape(text);
    }
  }

 protected:
  void encode_text(std::string_view text, bool after_special,
                   std::vector<int32_t>& out) const override {
    std::string s;
    s.reserve(text.size() + 16);
    if (after_special && v_.add_space_prefix) s += kSpaceMark;
    for (char c : text) {
      if (c == ' ') {
        s += kSpaceMark;
      } else {
        s.push_back(c);
      }
    }
    merge(s, out);
  }

 private:
  static std::string unescape(const std::string& text) {
    std::string r;
    r.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
        r.push_back(' ');
        i += kSpaceMark.size();
      } else {
        r.push_back(text[i++]);
      }
    }
    return r;
  }

  // Id of a normal vocabulary entry with this text, or -1 (control, byte, user-defined ...
  // entries never come out of merging).
  int32_t lookup(std::string_view piece) const {
    auto it = v_.index.find(piece);
    if (it == v_.index.end()) return -1;
    return v_.types[static_cast<size_t>(it->second)] == kNormal ? it->second : -1;
  }

  struct Symbol {
    int32_t prev, next;
    uint32_t start, len;  // len 0: merged into its left neighbour
    int32_t id;           // vocabulary id, -1 when the text is not an entry
  };
  struct Candidate {
    float score;
    int32_t left;
    uint32_t len;  // total length of the pair when it was queued (detects stale entries)
    int32_t id;
    bool operator<(const Candidate& o) const {  // max-heap: higher score, then leftmost
      if (score != o.score) return score < o.score;
      return left > o.left;
    }
  };

  void merge(const std::string& s, std::vector<int32_t>& out) const {
    std::vector<Symbol> sym;
    sym.reserve(s.size());
    for (size_t pos = 0; pos < s.size();) {
      const size_t n = unicode::char_length(s, pos);
      const auto i = static_cast<int32_t>(sym.size());
      sym.push_back({i - 1, -1, static_cast<uint32_t>(pos), static_cast<uint32_t>(n),
                     lookup(std::string_view(s).substr(pos, n))});
      if (i > 0) sym[static_cast<size_t>(i - 1)].next = i;
      pos += n;
    }

    std::priority_queue<Candidate> heap;
    auto consider = [&](int32_t left) {
      if (left < 0) return;
      const Symbol& l = sym[static_cast<size_t>(left)];
      if (l.next < 0) return;
      const Symbol& r = sym[static_cast<size_t>(l.next)];
      const uint32_t len = l.len + r.len;
      const int32_t id = lookup(std::string_view(s).substr(l.start, len));
      if (id >= 0) heap.push({v_.scores[static_cast<size_t>(id)], left, len, id});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(sym.size()); ++i) consider(i);

    while (!heap.empty()) {
      const Candidate c = heap.top();
      heap.pop();
      Symbol& l = sym[static_cast<size_t>(c.left)];
      if (l.len == 0 || l.next < 0) continue;
      Symbol& r = sym[static_cast<size_t>(l.next)];
      if (l.len + r.len != c.len) continue;  // one side has grown since: stale
      l.len = c.len;
      l.id = c.id;
      l.next = r.next;
      if (r.next >= 0) sym[static_cast<size_t>(r.next)].prev = c.left;
      r.len = 0;
      consider(l.prev);
      consider(c.left);
    }

    for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
      const Symbol& x = sym[static_cast<size_t>(i)];
      if (x.id >= 0) {
        out.push_back(x.id);
        continue;
      }
      bool all_bytes = true;
      for (uint32_t k = 0; k < x.len; ++k) {
        all_bytes = all_bytes && byte_tokens_[static_cast<uint8_t>(s[x.start + k])] >= 0;
      }
      if (all_bytes) {
        for (uint32_t k = 0; k < x.len; ++k) {
          out.push_back(byte_tokens_[static_cast<uint8_t>(s[x.start + k])]);
        }
      } else if (v_.unk >= 0) {
        out.push_back(v_.unk);  // one unknown token for the whole character
      }
    }
  }

  std::array<int32_t, 256> byte_tokens_;
  std::vector<int16_t> byte_value_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(Vocab v) {
  return std::make_unique<SpmTokenizer>(std::move(v));
}

}  // namespace fastkv::tokenizer_detail
