// common/strings.h: split/join/replace_all on bytes, and str.strip() / str.isspace() on UTF-8
// (Unicode whitespace off the ends; malformed bytes kept and never whitespace).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/strings.h"
#include "eval/text.h"

namespace fastkv {
namespace {

TEST(Strings, SplitKeepsEmptyFields) {
  EXPECT_EQ(split("a,b,,c", ","), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(split("", ","), (std::vector<std::string>{""}));
  EXPECT_EQ(split(",", ","), (std::vector<std::string>{"", ""}));
  EXPECT_EQ(split("a::b", "::"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(split("abc", "x"), (std::vector<std::string>{"abc"}));
}

TEST(Strings, JoinAndReplaceAll) {
  EXPECT_EQ(join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(join({}, ", "), "");
  EXPECT_EQ(join({"x"}, ", "), "x");
  EXPECT_EQ(replace_all("are all are", "are", "is"), "is all is");
  EXPECT_EQ(replace_all("aaa", "a", "aa"), "aaaaaa");  // left to right, never rescans
  EXPECT_EQ(replace_all("abc", "", "x"), "abc");
}

TEST(Strings, StripUnicodeWhitespace) {
  EXPECT_EQ(strip(" \n x y \t"), "x y");
  EXPECT_EQ(strip(""), "");
  EXPECT_EQ(strip(" \t\n"), "");
  EXPECT_EQ(strip("\u00a0\u3000x\u2028\u0085"), "x");  // NBSP, ideographic space, ...
  EXPECT_EQ(strip("\x1cx\x1f"), "x");                  // str.isspace() counts 0x1C..0x1F
  EXPECT_EQ(strip("\u200bx\u200b"), "\u200bx\u200b");  // zero-width space is not
  EXPECT_EQ(strip(" \xff x \xc2"), "\xff x \xc2");     // malformed bytes are kept
  EXPECT_EQ(strip("\xe0\x80\xa0x"), "\xe0\x80\xa0x");  // overlong U+0020 is no space
  EXPECT_EQ(strip("\xc2\xa0\x80"), "\x80");            // NBSP goes, the stray byte after it stays
  EXPECT_EQ(strip("x\xc2\xa0\x80"), "x\xc2\xa0\x80");  // ends in a stray byte: nothing goes
  EXPECT_EQ(strip("x\xe2\xc2\xa0"), "x\xe2");          // NBSP after a broken sequence
}

// The definition: decode (invalid bytes kept as U+DC80..U+DCFF), drop is_space code points
// from both ends, encode. strip() must agree on any bytes.
std::string strip_by_definition(const std::string& s) {
  const eval::U32 u = eval::to_u32(s);
  size_t b = 0, e = u.size();
  while (b < e && is_space(u[b])) ++b;
  while (e > b && is_space(u[e - 1])) --e;
  return eval::to_utf8(u.substr(b, e - b));
}

TEST(Strings, StripAgreesWithTheDefinitionOnRandomBytes) {
  // Pieces that make whitespace, near-whitespace and malformed sequences likely at the ends.
  const std::vector<std::string> pieces = {" ",
                                           "\t",
                                           "\n",
                                           "x",
                                           "\xc2\xa0",
                                           "\xc2\x85",
                                           "\xe3\x80\x80",
                                           "\xe2\x80\x8a",
                                           "\xe2\x80\x8b",
                                           "\xe2\x80",
                                           "\xc2",
                                           "\x80",
                                           "\xa0",
                                           "\xe2",
                                           "\xff",
                                           "\xe0\x80\xa0",
                                           "\xed\xa0\x80",
                                           "\xf0\x9f\x98\x80",
                                           "\xe1\x9a\x80",
                                           "\x1c"};
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    const int n = static_cast<int>(rng() % 7);
    for (int k = 0; k < n; ++k) s += pieces[rng() % pieces.size()];
    ASSERT_EQ(strip(s), strip_by_definition(s)) << "input bytes: " << ::testing::PrintToString(s);
  }
}

TEST(Strings, IsSpaceIsPythonsSet) {
  for (char32_t c :
       {U' ', U'\t', U'\n', U'\v', U'\f', U'\r', char32_t(0x1C), char32_t(0x1F), char32_t(0x85),
        char32_t(0xA0), char32_t(0x1680), char32_t(0x2000), char32_t(0x200A), char32_t(0x2028),
        char32_t(0x2029), char32_t(0x202F), char32_t(0x205F), char32_t(0x3000)}) {
    EXPECT_TRUE(is_space(c)) << static_cast<uint32_t>(c);
  }
  for (char32_t c : {U'x', U'_', char32_t(0x08), char32_t(0x7F), char32_t(0x200B), char32_t(0xFEFF),
                     char32_t(0x180E)}) {
    EXPECT_FALSE(is_space(c)) << static_cast<uint32_t>(c);
  }
}

}  // namespace
}  // namespace fastkv
