#include "common/strings.h"

#include <cstdint>

namespace fastkv {
namespace {

bool is_continuation(unsigned char b) {
  return (b & 0xC0) == 0x80;
}

// Bytes of the whitespace character `s` holds at `pos` (a well-formed UTF-8 sequence whose
// code point is_space), 0 when there is none. Every whitespace code point is below U+0800 or a
// three-byte sequence, so longer sequences are never whitespace.
size_t space_at(std::string_view s, size_t pos) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[pos + i]); };
  const size_t left = s.size() - pos;
  if (b(0) < 0x80) return is_space(b(0)) ? 1 : 0;
  if (b(0) >= 0xC2 && b(0) <= 0xDF && left >= 2 && is_continuation(b(1))) {
    return is_space((char32_t(b(0) & 0x1F) << 6) | (b(1) & 0x3F)) ? 2 : 0;
  }
  if (b(0) >= 0xE0 && b(0) <= 0xEF && left >= 3 && is_continuation(b(1)) && is_continuation(b(2))) {
    const char32_t c = (char32_t(b(0) & 0x0F) << 12) | (char32_t(b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    // Overlong forms (below U+0800) and surrogates are not well-formed.
    if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    return is_space(c) ? 3 : 0;
  }
  return 0;
}

}  // namespace

bool is_space(char32_t c) {
  if (c >= 0x09 && c <= 0x0D) return true;
  if (c >= 0x1C && c <= 0x20) return true;
  if (c < 0x80) return false;
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

std::string strip(std::string_view utf8) {
  size_t b = 0, e = utf8.size();
  while (b < e) {
    const size_t n = space_at(utf8.substr(0, e), b);
    if (n == 0) break;
    b += n;
  }
  while (e > b) {
    // The last character starts at the lead byte before at most three continuation bytes; it is
    // whitespace when the sequence there is whitespace and ends exactly at e.
    size_t start = e - 1;
    while (start > b && e - start < 4 && is_continuation(static_cast<unsigned char>(utf8[start]))) {
      --start;
    }
    if (space_at(utf8.substr(0, e), start) != e - start) break;
    e = start;
  }
  return std::string(utf8.substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, std::string_view sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      return out;
    }
    out.emplace_back(s.substr(start, at - start));
    start = at + sep.size();
  }
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  if (from.empty()) return s;
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

}  // namespace fastkv
