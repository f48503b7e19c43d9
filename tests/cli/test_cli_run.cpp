// `fastkv run` end to end (tools/fastkv/cmd_run.cpp): output on stdout, statistics on stderr,
// and one clear "error: " line with a non-zero exit status for every bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "test_util.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;

using test::CommandResult;
using test::run_fastkv;

std::string stories() { return test::shared_path("models/stories260K.gguf"); }

using test::shell_quote;

using test::describe;

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// The command failed with an "error: ..." line containing `needle` and nothing on stdout.
void expect_error(const CommandResult& r, const std::string& needle) {
  test::expect_error_line(r, needle);
}

class CliRun : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(stories())) << stories() << " is missing (../shared)";
    dir_ = test::temp_dir();
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_file(const std::string& name, const std::string& content) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  std::string dir_;
};

// README's example and ../shared/README.md: stories260K continues "Once upon a time" greedily
// with this sentence.
const std::string kExpected =
    ", there was a little girl named Lily. She loved to play outside in the park.";

TEST_F(CliRun, GreedyStoryOnStdoutStatsOnStderr) {
  CommandResult r = run_fastkv("run -m " + shell_quote(stories()) + " -p 'Once upon a time' -n 60 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // The prompt is not echoed: stdout is exactly the generated text (plus a final newline), and
  // the continuation starts right after "time", so its first byte is the comma.
  EXPECT_EQ(r.out.rfind(kExpected, 0), 0u) << describe(r);
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  // Text only: none of the statistics.
  for (const char* stat : {"prompt tokens", "time to first token", "tokens/s", "prefill:",
                           "decode:", "KV cache", "method:"}) {
    EXPECT_FALSE(contains(r.out, stat)) << "stdout has '" << stat << "'\n" << describe(r);
  }
  for (const char* stat : {"prompt tokens:", "time to first token:", "prefill:", "decode:"}) {
    EXPECT_TRUE(contains(r.err, stat)) << "stderr lacks '" << stat << "'\n" << describe(r);
  }
  EXPECT_FALSE(contains(r.err, "error")) << describe(r);
  // "Once upon a time" is BOS + 4 tokens.
  EXPECT_TRUE(contains(r.err, "prompt tokens: 5")) << describe(r);
}

TEST_F(CliRun, GreedyIsDeterministicAndNRespected) {
  const std::string base = "run -m " + shell_quote(stories()) + " -p 'Once upon a time' --temp 0";
  CommandResult a = run_fastkv(base + " -n 20");
  CommandResult b = run_fastkv(base + " -n 20");
  ASSERT_EQ(a.exit_code, 0) << describe(a);
  EXPECT_EQ(a.out, b.out);
  EXPECT_TRUE(contains(a.err, "generated tokens: 20")) << describe(a);
  // -n 0 generates nothing.
  CommandResult z = run_fastkv(base + " -n 0");
  ASSERT_EQ(z.exit_code, 0) << describe(z);
  EXPECT_EQ(z.out, "\n");
}

TEST_F(CliRun, PromptFromFile) {
  const std::string path = write_file("prompt.txt", "Once upon a time");
  CommandResult r = run_fastkv("run -m " + shell_quote(stories()) + " -f " + shell_quote(path) + " -n 60 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out.rfind(kExpected, 0), 0u) << describe(r);
}

TEST_F(CliRun, StopStringAndSeededSampling) {
  CommandResult r = run_fastkv("run -m " + shell_quote(stories()) +
                               " -p 'Once upon a time' -n 60 --temp 0 --stop ' named'");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, ", there was a little girl\n");
  const std::string sampled =
      "run -m " + shell_quote(stories()) + " -p 'Once upon a time' -n 30 --temp 0.8 --seed 5";
  CommandResult s1 = run_fastkv(sampled), s2 = run_fastkv(sampled);
  ASSERT_EQ(s1.exit_code, 0) << describe(s1);
  EXPECT_EQ(s1.out, s2.out);
}

TEST_F(CliRun, PromptErrors) {
  const std::string m = "run -m " + shell_quote(stories());
  expect_error(run_fastkv(m + " -p ''"), "empty");
  const std::string file = write_file("p.txt", "Once upon a time");
  expect_error(run_fastkv(m + " -p 'Once' -f " + shell_quote(file)), "-p/--prompt");
  expect_error(run_fastkv(m), "-p/--prompt");
  expect_error(run_fastkv(m + " -f " + shell_quote(dir_ + "/missing.txt")), "missing.txt");
  expect_error(run_fastkv(m + " -f " + shell_quote(write_file("empty.txt", ""))), "empty");
  // Longer than the context.
  std::string long_prompt;
  for (int i = 0; i < 10; ++i) long_prompt += "Once upon a time there was a girl. ";
  CommandResult r = run_fastkv(m + " -c 16 -p " + shell_quote(long_prompt));
  expect_error(r, "-c/--ctx-size");
  EXPECT_TRUE(contains(r.err, "16")) << describe(r);
}

TEST_F(CliRun, InvalidSamplingValues) {
  const std::string m = "run -m " + shell_quote(stories()) + " -p 'Once upon a time' ";
  expect_error(run_fastkv(m + "--temp -1"), "--temp");
  expect_error(run_fastkv(m + "--top-p 0"), "--top-p");
  expect_error(run_fastkv(m + "--top-p 1.5"), "--top-p");
  expect_error(run_fastkv(m + "--min-p 1"), "--min-p");
  expect_error(run_fastkv(m + "--repeat-penalty 0"), "--repeat-penalty");
  expect_error(run_fastkv(m + "--top-k -1"), "--top-k");
  expect_error(run_fastkv(m + "-n -5"), "--n-predict");
  expect_error(run_fastkv(m + "-c -1"), "--ctx-size");
}

TEST_F(CliRun, ModelErrors) {
  const std::string p = " -p 'Once upon a time'";
  expect_error(run_fastkv("run -m " + shell_quote(dir_ + "/nope.gguf") + p), "nope.gguf");
  expect_error(run_fastkv("run -m " + shell_quote(write_file("text.gguf", "this is not a model\n")) + p),
               "text.gguf");
  expect_error(run_fastkv("run -m " + shell_quote(stories()) + p + " --method no-such-method"),
               "no-such-method");

  // stories260K's tensors and metadata without the tokenizer.
  const gguf::File src = gguf::File::open(stories());
  gguf::Writer w;
  for (const auto& [k, v] : src.metadata()) {
    if (k.rfind("tokenizer.", 0) != 0) w.set(k, v);
  }
  for (const gguf::TensorInfo& t : src.tensors()) {
    w.add_raw(t.name, t.type, t.ne, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  const std::string no_tok = dir_ + "/no-tokenizer.gguf";
  w.write(no_tok);
  CommandResult r = run_fastkv("run -m " + shell_quote(no_tok) + p);
  expect_error(r, "no-tokenizer.gguf");
  EXPECT_TRUE(contains(r.err, "tokenizer")) << describe(r);
}

TEST_F(CliRun, ChatOnSmolLM2) {
  const std::string smol = test::find_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (smol.empty()) {
    GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not found in models/ or $FASTKV_MODEL_PATH "
                    "(scripts/fetch-models.sh downloads it)";
  }
  CommandResult r = run_fastkv("run -m " + shell_quote(smol) +
                               " --chat -p 'What is the capital of France?' -n 24 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::string text = r.out;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  EXPECT_FALSE(text.empty()) << describe(r);
  // Special tokens are not printed.
  EXPECT_FALSE(contains(r.out, "<|im_start|>")) << describe(r);
  EXPECT_FALSE(contains(r.out, "<|im_end|>")) << describe(r);
  EXPECT_TRUE(contains(r.err, "prompt tokens:")) << describe(r);
}

TEST_F(CliRun, ChatFallsBackToInstBlocksForSentencePiece) {
  // stories260K has no template; its SentencePiece vocabulary falls back to [INST] blocks.
  CommandResult r = run_fastkv("run -m " + shell_quote(stories()) + " --chat -p 'Hi' -n 4 --temp 0");
  EXPECT_EQ(r.exit_code, 0) << describe(r);
}

// Usage errors behave as in llama.cpp's tools: exit status 1 and exactly one "error: " line
// (CLI11's own codes were 104 for a number out of range and 114 for a missing value).
TEST_F(CliRun, UsageErrorsExitOneWithOneErrorLine) {
  const std::string m = "run -m " + shell_quote(stories()) + " -p 'Once upon a time' ";
  for (const std::string& args :
       {m + "-n 99999999999", m + "--stop", m + "-n abc", m + "--no-such-flag",
        m + "--backend nope", std::string("run -p x"), std::string("no-such-command"),
        std::string("")}) {
    CommandResult r = run_fastkv(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << describe(r);
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << args << "\n" << describe(r);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << describe(r);
  }
  // --help and --version are not errors.
  EXPECT_EQ(run_fastkv("run --help").exit_code, 0);
  EXPECT_EQ(run_fastkv("--version").exit_code, 0);
}

// -p processes \n, \t, \\, \" and \' as llama.cpp does by default; --no-escape keeps them.
// Checked through `--json`'s prompt token count and the tokenizer's view of the same bytes.
TEST_F(CliRun, PromptEscapesAndNoEscape) {
  const std::string m = "run -m " + shell_quote(stories()) + " -n 1 --backend f32 --json ";
  const std::string escaped = dir_ + "/escaped.json", literal = dir_ + "/literal.json",
                    file = dir_ + "/file.json";
  // The file holds the bytes the escapes stand for.
  const std::string text_file = write_file("p.txt", "Once\nupon\ta \"time\" it's \\ \\q");
  ASSERT_EQ(run_fastkv(m + shell_quote(escaped) + " -p " + shell_quote("Once\\nupon\\ta \\\"time\\\" it\\'s \\\\ \\q"))
                .exit_code,
            0);
  ASSERT_EQ(run_fastkv(m + shell_quote(literal) + " --no-escape -p " +
                       shell_quote("Once\\nupon\\ta \\\"time\\\" it\\'s \\\\ \\q"))
                .exit_code,
            0);
  ASSERT_EQ(run_fastkv(m + shell_quote(file) + " -f " + shell_quote(text_file)).exit_code, 0);
  auto prompt_tokens = [](const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string j = ss.str();
    const size_t at = j.find("\"prompt_tokens\": ");
    return at == std::string::npos ? -1 : std::atoi(j.c_str() + at + 17);
  };
  EXPECT_GT(prompt_tokens(file), 0);
  EXPECT_EQ(prompt_tokens(escaped), prompt_tokens(file));
  // Taken literally, the backslashes are text of their own: more tokens.
  EXPECT_GT(prompt_tokens(literal), prompt_tokens(file));
}

TEST_F(CliRun, PromptFromStandardInput) {
  CommandResult r = test::run_shell("printf 'Once upon a time' | '" + test::fastkv_bin() +
                                    "' run -m " + shell_quote(stories()) + " -f - -n 60 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out.rfind(kExpected, 0), 0u) << describe(r);
}

TEST_F(CliRun, ContextBeyondTrainingWarnsAndSystemNeedsChat) {
  // stories260K has no context_length key: 2048 is assumed (docs/models.md).
  CommandResult r = run_fastkv("run -m " + shell_quote(stories()) + " -p 'Once upon a time' -n 4 -c 4096");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "warning: the context size 4096 is larger than the 2048 tokens"))
      << describe(r);
  r = run_fastkv("run -m " + shell_quote(stories()) + " -p 'Once upon a time' -n 4 -c 2048");
  EXPECT_FALSE(contains(r.err, "warning")) << describe(r);
  expect_error(run_fastkv("run -m " + shell_quote(stories()) + " -p 'Hi' --system 'Be brief'"), "--chat");
}

// The statistics and --json say which model, backend and method ran; --backend auto is the
// default (bf16 where the CPU has native bf16, f32 elsewhere).
TEST_F(CliRun, StatsNameModelBackendAndMethod) {
  const std::string json_path = dir_ + "/r.json";
  CommandResult r = run_fastkv("run -m " + shell_quote(stories()) + " -p 'Once upon a time' -n 8 --json " +
                               shell_quote(json_path));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "model: " + stories() + " (llama, 5 layers)")) << describe(r);
  EXPECT_TRUE(contains(r.err, "backend: bf16 (auto)") || contains(r.err, "backend: f32 (auto)"))
      << describe(r);
  EXPECT_TRUE(contains(r.err, "method: full")) << describe(r);
  std::ifstream in(json_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string j = ss.str();
  for (const char* key : {"\"backend\"", "\"model\"", "\"prefill_tokens_per_s\"",
                          "\"decode_tokens_per_s\"", "\"propagated\"", "\"kv_bytes\""}) {
    EXPECT_TRUE(contains(j, key)) << key << "\n" << j;
  }
  r = run_fastkv("run -m " + shell_quote(stories()) + " -p 'Once upon a time' -n 2 --backend f32");
  EXPECT_TRUE(contains(r.err, "backend: f32\n")) << describe(r);
}

// --backend quant on a real Q4_1 file (SmolLM2: 210 Q4_1 projections, a Q8_0 tied LM head, f32
// norms): it runs, says so, and greedily continues a clear prompt as the f32 path does.
TEST_F(CliRun, QuantBackendRunsSmolLM2Q41) {
  const std::string model = test::find_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (model.empty()) {
    GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not found in ../shared/models, "
                 << "$FASTKV_MODEL_PATH or models/";
  }
  const std::string m = "run -m " + shell_quote(model) + " -p 'The capital of France is' -n 3 --temp 0 ";
  CommandResult q = run_fastkv(m + "--backend quant");
  ASSERT_EQ(q.exit_code, 0) << describe(q);
  EXPECT_TRUE(contains(q.err, "backend: quant\n")) << describe(q);
  // A quantised file is what --backend auto (the default) keeps quantised.
  CommandResult a = run_fastkv(m);
  ASSERT_EQ(a.exit_code, 0) << describe(a);
  EXPECT_TRUE(contains(a.err, "backend: quant (auto)")) << describe(a);
  EXPECT_EQ(a.out, q.out) << "auto is the same path as --backend quant";
  EXPECT_EQ(q.out.rfind(" Paris", 0), 0u) << describe(q);
  CommandResult f = run_fastkv(m + "--backend f32");
  ASSERT_EQ(f.exit_code, 0) << describe(f);
  EXPECT_EQ(f.out.rfind(" Paris", 0), 0u) << describe(f);
}

// A prefill longer than FASTKV_PROGRESS_DELAY seconds (default 2) shows its progress on stderr;
// with 0 every prefill does (one line per 2 s when stderr is not a terminal: here the first).
TEST_F(CliRun, LongPrefillShowsProgress) {
  const std::string m = "run -m " + shell_quote(stories()) + " -p 'Once upon a time' -n 2";
  CommandResult r = test::run_shell("FASTKV_PROGRESS_DELAY=0 '" + test::fastkv_bin() + "' " + m);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "prefill: layer 1/5, 5 tokens live, ")) << describe(r);
  EXPECT_TRUE(contains(r.err, " tokens/s, ETA ")) << describe(r);
  r = run_fastkv(m);  // well under 2 s
  EXPECT_FALSE(contains(r.err, "prefill: layer")) << describe(r);
  expect_error(test::run_shell("FASTKV_PROGRESS_DELAY=soon '" + test::fastkv_bin() + "' " + m),
               "FASTKV_PROGRESS_DELAY");
}

}  // namespace
}  // namespace fastkv
