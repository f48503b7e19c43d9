#include "eval/text.h"

#include <locale.h>
#include <wctype.h>

#include <algorithm>
#include <array>

#include "tokenizer/unicode.h"

namespace fastkv::eval {
namespace {

// The C library's Unicode character tables (C.UTF-8 ships with every glibc).
locale_t utf8_locale() {
  static locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    if (!l) l = newlocale(LC_CTYPE_MASK, "C.utf8", static_cast<locale_t>(0));
    return l;
  }();
  return loc;
}

// First code point (the zero) of every run of ten Unicode decimal digits (category Nd), as of
// Unicode 14 (Python 3.11).
constexpr std::array<char32_t, 66> kDigitZeros = {
    0x30,    0x660,   0x6f0,   0x7c0,   0x966,   0x9e6,   0xa66,   0xae6,   0xb66,   0xbe6,
    0xc66,   0xce6,   0xd66,   0xde6,   0xe50,   0xed0,   0xf20,   0x1040,  0x1090,  0x17e0,
    0x1810,  0x1946,  0x19d0,  0x1a80,  0x1a90,  0x1b50,  0x1bb0,  0x1c40,  0x1c50,  0xa620,
    0xa8d0,  0xa900,  0xa9d0,  0xa9f0,  0xaa50,  0xabf0,  0xff10,  0x104a0, 0x10d30, 0x11066,
    0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0,
    0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2,
    0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0};

}  // namespace

U32 to_u32(std::string_view utf8) {
  U32 out;
  out.reserve(utf8.size());
  for (size_t pos = 0; pos < utf8.size();) {
    size_t n = unicode::valid_sequence_length(utf8, pos);
    if (n == 0) {
      out.push_back(0xDC00 + static_cast<uint8_t>(utf8[pos]));  // surrogateescape
      ++pos;
    } else {
      out.push_back(unicode::decode_sequence(utf8, pos, n));
      pos += n;
    }
  }
  return out;
}

std::string to_utf8(const U32& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c >= 0xDC80 && c <= 0xDCFF) {
      out.push_back(static_cast<char>(c - 0xDC00));
    } else if (c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF)) {
      unicode::append_utf8(out, c);
    } else {
      unicode::append_utf8(out, 0xFFFD);
    }
  }
  return out;
}

bool is_decimal_digit(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  auto it = std::upper_bound(kDigitZeros.begin(), kDigitZeros.end(), c);
  if (it == kDigitZeros.begin()) return false;
  return c - *(it - 1) < 10;
}

bool is_word(char32_t c) {
  if (c < 0x80) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  if (is_decimal_digit(c)) return true;
  locale_t loc = utf8_locale();
  return loc && iswalnum_l(static_cast<wint_t>(c), loc);
}

bool is_ascii_punct(char32_t c) {
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

U32 lower(const U32& s) {
  U32 out;
  out.reserve(s.size());
  locale_t loc = utf8_locale();
  for (char32_t c : s) {
    if (c < 0x80) {
      out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    } else if (c == 0x130) {  // İ lowers to i + combining dot above (full case mapping)
      out.push_back(U'i');
      out.push_back(0x307);
    } else if (loc && !(c >= 0xD800 && c <= 0xDFFF)) {
      out.push_back(static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), loc)));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string lower(std::string_view utf8) {
  return to_utf8(lower(to_u32(utf8)));
}

std::vector<U32> split_ws(const U32& s) {
  std::vector<U32> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::vector<std::string> split_ws(std::string_view utf8) {
  std::vector<std::string> out;
  for (const U32& w : split_ws(to_u32(utf8))) out.push_back(to_utf8(w));
  return out;
}

U32 collapse_ws(const U32& s) {
  U32 out;
  for (const U32& w : split_ws(s)) {
    if (!out.empty()) out.push_back(U' ');
    out += w;
  }
  return out;
}

}  // namespace fastkv::eval
