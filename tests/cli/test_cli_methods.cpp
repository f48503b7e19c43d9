// `fastkv run --method X` for every registered method on stories260K with a prompt of about
// 1,900 tokens (its context is 2048: -c 2048): each exits 0, generates, and the compressing
// methods hold less KV cache than full (stderr's "KV cache held after prefill").
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "test_util.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;

using test::describe;

// The integer after `label` in stderr, or -1.
long long stat_of(const std::string& err, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(err, m, std::regex(pattern))) return -1;
  return std::stoll(m[1].str());
}

constexpr int kStoryRepeats = 10;

// Story text in the TinyStories style, repeated to about 1,900 tokens of stories260K's
// 512-piece SentencePiece vocabulary.
std::string long_story() {
  const std::string story =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park with her friend Ben. One day, they saw a big red ball under a tree. Lily said, "
      "\"Let's play with the ball!\" Ben smiled and kicked it high into the sky. The ball "
      "landed in the pond and a duck swam to it. The duck pushed the ball back to Lily. Lily "
      "laughed and said thank you to the duck. They played until the sun went down, and then "
      "they went home to eat dinner with their mom. ";
  std::string text;
  for (int i = 0; i < kStoryRepeats; ++i) text += story;
  return text + "Lily was happy because";
}

class CliMethods : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::temp_dir();
    prompt_ = dir_ + "/story.txt";
    std::ofstream(prompt_) << long_story();
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static test::CommandResult run(const std::string& method) {
    return test::run_fastkv("run -m '" + test::shared_path("models/stories260K.gguf") + "' -f '" +
                            prompt_ + "' -c 2048 -n 8 --method " + method);
  }
  static std::string dir_, prompt_;
};
std::string CliMethods::dir_, CliMethods::prompt_;

TEST_F(CliMethods, EveryMethodRunsAndCompresses) {
  const test::CommandResult full = run("full");
  ASSERT_EQ(full.exit_code, 0) << describe(full);
  const long long n_prompt = stat_of(full.err, R"(prompt tokens: (\d+))");
  EXPECT_GE(n_prompt, 1800) << describe(full);
  EXPECT_LE(n_prompt, 2000) << describe(full);
  const long long full_bytes =
      stat_of(full.err, R"(KV cache held after prefill: .* \((\d+) bytes\))");
  ASSERT_GT(full_bytes, 0) << describe(full);
  for (const char* m :
       {"fastkv", "snapkv", "streamingllm", "h2o", "gemfilter", "pyramidinfer", "adakv"}) {
    const test::CommandResult r = run(m);
    ASSERT_EQ(r.exit_code, 0) << m << "\n" << describe(r);
    EXPECT_NE(r.err.find(std::string("method: ") + m), std::string::npos) << describe(r);
    EXPECT_EQ(stat_of(r.err, R"(prompt tokens: (\d+))"), n_prompt) << m;
    EXPECT_NE(stat_of(r.err, R"(generated tokens: (\d+))"), 0) << m << "\n" << describe(r);
    const long long bytes = stat_of(r.err, R"(KV cache held after prefill: .* \((\d+) bytes\))");
    EXPECT_GT(bytes, 0) << m << "\n" << describe(r);
    EXPECT_LT(bytes, full_bytes) << m << " holds no less KV than full\n" << describe(r);
  }
}

TEST_F(CliMethods, MethodFlagsAreValidatedWithTheirNames) {
  test::CommandResult r = run("adakv --floor-alpha 2");
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("error: --floor-alpha must be in [0, 1]"), std::string::npos) << describe(r);
  r = run("snapkv --floor-alpha 0.3");
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("method 'snapkv' does not take --floor-alpha"), std::string::npos)
      << describe(r);
  r = run("gemfilter --filter-layer 5");
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("--filter-layer 5 is not below the model's 5 layers"), std::string::npos)
      << describe(r);
}

}  // namespace
}  // namespace fastkv
