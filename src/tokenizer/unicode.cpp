#include "tokenizer/unicode.h"

#include <array>

namespace fastkv::unicode {

size_t valid_sequence_length(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 0;
  const auto* s = reinterpret_cast<const uint8_t*>(text.data()) + pos;
  const size_t avail = text.size() - pos;
  const uint8_t b0 = s[0];
  if (b0 < 0x80) return 1;
  size_t n;
  uint32_t min_cp;
  uint32_t cp;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, min_cp = 0x80, cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, min_cp = 0x800, cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, min_cp = 0x10000, cp = b0 & 0x07;
  } else {
    return 0;  // continuation byte or 0xF8..0xFF
  }
  if (avail < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool is_valid_utf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    size_t n = valid_sequence_length(text, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

// Whether bytes s[0..len) (len < expected length) can still be completed into a valid
// sequence.
static bool is_valid_prefix(const uint8_t* s, size_t len) {
  const uint8_t b0 = s[0];
  size_t n;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2;
    if (b0 < 0xC2) return false;  // overlong
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4;
    if (b0 > 0xF4) return false;
  } else {
    return false;
  }
  if (len >= n) return false;
  for (size_t i = 1; i < len; ++i) {
    if ((s[i] & 0xC0) != 0x80) return false;
  }
  if (len >= 2) {
    const uint8_t b1 = s[1];
    if (b0 == 0xE0 && b1 < 0xA0) return false;   // overlong
    if (b0 == 0xED && b1 >= 0xA0) return false;  // surrogates
    if (b0 == 0xF0 && b1 < 0x90) return false;   // overlong
    if (b0 == 0xF4 && b1 >= 0x90) return false;  // above U+10FFFF
  }
  return true;
}

size_t incomplete_tail_length(std::string_view text) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t size = text.size();
  // A pending sequence is at most 3 bytes long; find its lead byte.
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    const uint8_t b = s[size - back];
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    return is_valid_prefix(s + size - back, back) ? back : 0;
  }
  return 0;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t decode_sequence(std::string_view text, size_t pos, size_t n) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data()) + pos;
  if (n == 1) return s[0];
  static constexpr uint8_t kLeadMask[5] = {0, 0, 0x1F, 0x0F, 0x07};
  uint32_t cp = s[0] & kLeadMask[n];
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (s[i] & 0x3F);
  return cp;
}

namespace {

struct ByteAlphabet {
  std::array<uint32_t, 256> to_cp{};
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 512> from_cp{};  // every code point of the alphabet is below 0x200

  ByteAlphabet() {
    from_cp.fill(-1);
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
      append_utf8(to_utf8[b], to_cp[b]);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t b) {
  return alphabet().to_cp[b];
}

int codepoint_to_byte(uint32_t cp) {
  return cp < 512 ? alphabet().from_cp[cp] : -1;
}

const std::string& byte_to_utf8(uint8_t b) {
  return alphabet().to_utf8[b];
}

}  // namespace fastkv::unicode
