// `fastkv tokenize`: output formats, flags and errors.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "io/gguf.h"
#include "test_util.h"

namespace fastkv {
namespace {

std::string stories() {
  return "'" + test::shared_path("models/stories260K.gguf") + "'";
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

TEST(CliTokenize, OneLinePerTokenWithBos) {
  const auto r = test::run_fastkv("tokenize " + stories() + " 'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1 '<s>'\n403 ' Once'\n407 ' upon'\n261 ' a'\n378 ' time'\n");
  EXPECT_EQ(r.err, "");
}

TEST(CliTokenize, NoBos) {
  const auto r = test::run_fastkv("tokenize " + stories() + " 'Once upon a time' --no-bos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "403 ' Once'\n407 ' upon'\n261 ' a'\n378 ' time'\n");
}

TEST(CliTokenize, IdsOnly) {
  auto r = test::run_fastkv("tokenize " + stories() + " 'Once upon a time' --ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1, 403, 407, 261, 378]\n");
  r = test::run_fastkv("tokenize --ids --no-bos " + stories() + " 'Once upon a time'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[403, 407, 261, 378]\n");
  r = test::run_fastkv("tokenize --ids --no-bos " + stories() + " ''");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[]\n");
}

TEST(CliTokenize, PiecesAreEscaped) {
  // A newline and a character missing from the 512-entry vocabulary (byte fallback: the
  // pieces are single bytes, shown as \xNN).
  // (printf's octal escapes: /bin/sh need not understand $'...'.)
  const auto r =
      test::run_fastkv("tokenize --no-bos " + stories() + " \"$(printf 'a\\n\\346\\227\\245')\"");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "261 ' a'\n13 '\\n'\n233 '\\xE6'\n154 '\\x97'\n168 '\\xA5'\n");
}

TEST(CliTokenize, SpecialTokens) {
  auto r = test::run_fastkv("tokenize --ids " + stories() + " '<s>Once'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1, 1, 403]\n");
  r = test::run_fastkv("tokenize --ids --no-parse-special " + stories() + " '<s>Once'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("[1, 1,"), std::string::npos) << r.out;
}

TEST(CliTokenize, TextFromFile) {
  const std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());
  write_file(dir + "/prompt.txt", "Once upon a time");
  auto r = test::run_fastkv("tokenize " + stories() + " -f '" + dir + "/prompt.txt' --ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1, 403, 407, 261, 378]\n");
  // The file's bytes are taken as they are, final newline included.
  write_file(dir + "/nl.txt", "Once upon a time\n");
  r = test::run_fastkv("tokenize " + stories() + " --file '" + dir + "/nl.txt' --no-bos");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "403 ' Once'\n407 ' upon'\n261 ' a'\n378 ' time'\n13 '\\n'\n");
}

// The text argument's \n, \t, \\, \" and \' are processed as `run -p` does (llama.cpp's default);
// --no-escape takes them literally; other backslashes stay.
TEST(CliTokenize, EscapesInTheTextArgument) {
  auto r = test::run_fastkv("tokenize --ids --no-bos " + stories() + " 'a\\nb'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto newline = test::run_fastkv("tokenize --ids --no-bos " + stories() + " \"$(printf 'a\\nb')\"");
  ASSERT_EQ(newline.exit_code, 0) << newline.err;
  EXPECT_EQ(r.out, newline.out);
  EXPECT_NE(r.out.find(", 13, "), std::string::npos) << r.out;  // 13 is '\n' (see TextFromFile)
  r = test::run_fastkv("tokenize --ids --no-bos --no-escape " + stories() + " 'a\\nb'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find(", 13, "), std::string::npos) << r.out;
  // \q is no escape: the backslash stays, so the text is the same with and without --no-escape.
  const auto q1 = test::run_fastkv("tokenize --ids " + stories() + " 'x\\qy'");
  const auto q2 = test::run_fastkv("tokenize --ids --no-escape " + stories() + " 'x\\qy'");
  EXPECT_EQ(q1.out, q2.out);
}

TEST(CliTokenize, TextFromStandardInput) {
  const auto r = test::run_shell("printf 'Once upon a time' | '" + test::fastkv_bin() +
                                 "' tokenize --ids " + stories() + " -f -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[1, 403, 407, 261, 378]\n");
}

// No tokens (empty text, no BOS) is an empty list in both formats, not silence.
TEST(CliTokenize, EmptyTextPrintsAnEmptyList) {
  for (const char* format : {"", "--ids "}) {
    const auto r = test::run_fastkv(std::string("tokenize --no-bos ") + format + stories() + " ''");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "[]\n") << format;
  }
}

TEST(CliTokenize, TextAndFileTogetherIsAnError) {
  const std::string dir = test::temp_dir();
  write_file(dir + "/prompt.txt", "x");
  const auto r = test::run_fastkv("tokenize " + stories() + " 'text' -f '" + dir + "/prompt.txt'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: tokenize: give the text either as an argument or with -f FILE, not both\n");
}

TEST(CliTokenize, NoTextIsAnError) {
  const auto r = test::run_fastkv("tokenize " + stories());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "error: tokenize: no text: give it as an argument or with -f FILE\n");
}

TEST(CliTokenize, UnreadableTextFile) {
  const std::string missing = test::temp_dir() + "/missing.txt";
  const auto r = test::run_fastkv("tokenize " + stories() + " -f '" + missing + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "error: " + missing + ": cannot read the text file\n");
}

TEST(CliTokenize, MissingModelFile) {
  const std::string missing = test::temp_dir() + "/no-such-model.gguf";
  const auto r = test::run_fastkv("tokenize '" + missing + "' 'hello'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(CliTokenize, ModelWithoutTokenizer) {
  const std::string path = test::temp_dir() + "/weights-only.gguf";
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  const float zeros[4] = {0, 0, 0, 0};
  w.add_f32("token_embd.weight", gguf::TensorType::F32, {2, 2}, zeros);
  w.write(path);
  const auto r = test::run_fastkv("tokenize '" + path + "' 'hello'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "error: " + path + ": no tokenizer (tokenizer.ggml.model missing)\n");
}

}  // namespace
}  // namespace fastkv
