// Text helpers for the evaluation tasks and metrics. The reference metrics are Python code, so
// these follow Python 3 `str` semantics on Unicode code points: str.lower(), str.split() with
// no argument (Unicode whitespace), `\w` / `\d` of the `re` module, string.punctuation.
// Input is UTF-8; invalid bytes are kept as code points U+DC80..U+DCFF (as Python's
// surrogateescape does) so that nothing is lost on the round trip. Whitespace (is_space), strip,
// split, join and replace_all are general and live in common/strings.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/strings.h"

namespace fastkv::eval {

using U32 = std::u32string;

U32 to_u32(std::string_view utf8);
std::string to_utf8(const U32& s);

// Python re's `\w` on str patterns: alphanumeric (letters, marks excluded, digits) or '_'.
bool is_word(char32_t c);
// Python re's `\d` on str patterns: a Unicode decimal digit (category Nd).
bool is_decimal_digit(char32_t c);
// string.punctuation: the 32 ASCII punctuation characters.
bool is_ascii_punct(char32_t c);

// str.lower() (simple case mapping from the C library's Unicode tables, plus U+0130).
U32 lower(const U32& s);
std::string lower(std::string_view utf8);

// str.split() with no argument: runs of whitespace separate, no empty fields.
std::vector<U32> split_ws(const U32& s);
std::vector<std::string> split_ws(std::string_view utf8);
// " ".join(s.split())
U32 collapse_ws(const U32& s);

}  // namespace fastkv::eval
