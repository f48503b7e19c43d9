// General string helpers on UTF-8 text, shared by every layer (flag lists, method lists, the
// evaluation's Python-style text processing). split/join/replace_all work on bytes; strip and
// is_space follow Python 3's str.strip() / str.isspace() on Unicode code points.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fastkv {

// Python's str.isspace() on one code point: Unicode whitespace (Zs, and the B/S/WS bidi
// classes).
bool is_space(char32_t c);

// str.strip(): Unicode whitespace (is_space) off both ends; bytes that are not well-formed
// UTF-8 are never whitespace and are kept.
std::string strip(std::string_view utf8);

// Splits on every occurrence of `sep` (str.split(sep): empty fields kept).
std::vector<std::string> split(std::string_view s, std::string_view sep);

// Joins with a separator.
std::string join(const std::vector<std::string>& parts, std::string_view sep);

// Replaces every occurrence of `from` by `to`, left to right (str.replace).
std::string replace_all(std::string s, std::string_view from, std::string_view to);

}  // namespace fastkv
