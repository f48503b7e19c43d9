// The real Gemma 3 270M file through the CLI (scripts/fetch-models.sh gemma3 puts it in models/;
// every test is skipped with a message when it is absent): `inspect` reads its metadata, `run`
// completes a prompt greedily with llama.cpp's tokens, and `run --method fastkv` on a prompt of
// several windows keeps the local layers' caches within the 512-token window while compressing
// the global ones (docs/fastkv.md, "Hybrid models").
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "test_util.h"

namespace fastkv {
namespace {

using test::CommandResult;
using test::describe;
using test::run_fastkv;
using test::shell_quote;

constexpr const char* kFile = "gemma-3-270m-q4_k_m.gguf";

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// The integers after `prefix` on the line of `text` that starts with it.
std::vector<long> numbers_after(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::istringstream ls(line.substr(prefix.size()));
    std::vector<long> v;
    for (long x; ls >> x;) v.push_back(x);
    return v;
  }
  return {};
}

class CliGemma3 : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = test::find_model(kFile);
    if (path_.empty()) {
      GTEST_SKIP() << kFile << " not found in ../shared/models, $FASTKV_MODEL_PATH or models/ "
                   << "(scripts/fetch-models.sh gemma3 downloads it)";
    }
  }
  std::string path_;
};

TEST_F(CliGemma3, InspectReadsTheHybridMetadata) {
  const CommandResult r = run_fastkv("inspect --metadata " + shell_quote(path_));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "architecture: gemma3")) << r.out;
  EXPECT_TRUE(contains(r.out, "  block_count: 18")) << r.out;
  EXPECT_TRUE(contains(r.out, "  attention.key_length: 256")) << r.out;
  EXPECT_TRUE(contains(r.out, "  vocab size: 262144")) << r.out;
  EXPECT_TRUE(contains(r.out, "gemma3.attention.sliding_window")) << r.out;
  EXPECT_TRUE(contains(r.out, "  attention.sliding_window: 512\n")) << r.out;
  EXPECT_TRUE(contains(r.out, "layers: 15 local (window 512, RoPE base 10000), 3 global (5, 11, "
                              "17; RoPE base 1e+06)\n"))
      << r.out;
}

// Greedy completion of the short golden's 16 tokens gives llama.cpp's greedy tokens
// (tests/golden/arch/gemma-3-270m-q4_k_m.short.logits.gguf), through `run --ids`.
TEST_F(CliGemma3, GreedyRunFollowsLlamaCpp) {
  const gguf::File g = gguf::File::open(std::string(FASTKV_SOURCE_DIR) +
                                        "/tests/golden/arch/gemma-3-270m-q4_k_m.short.logits.gguf");
  const std::vector<int32_t> tokens = g.read_i32("tokens"), greedy = g.read_i32("greedy");
  std::string ids;
  for (int32_t t : tokens) ids += (ids.empty() ? "" : ",") + std::to_string(t);
  const std::string json = test::temp_dir() + "/run.json";
  const CommandResult r =
      run_fastkv("run -m " + shell_quote(path_) + " --ids " + ids + " -n " +
                 std::to_string(greedy.size()) + " --temp 0 --ignore-eos --json " + shell_quote(json));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::ifstream in(json);
  std::ostringstream ss;
  ss << in.rdbuf();
  // "generated_ids": [a, b, ...] with any whitespace: compare the digits and commas.
  std::string got;
  const size_t at = ss.str().find("\"generated_ids\"");
  ASSERT_NE(at, std::string::npos) << ss.str();
  for (size_t i = ss.str().find('[', at) + 1; i < ss.str().size() && ss.str()[i] != ']'; ++i) {
    if (std::isdigit(static_cast<unsigned char>(ss.str()[i])) || ss.str()[i] == ',') {
      got += ss.str()[i];
    }
  }
  std::string want;
  for (int32_t t : greedy) want += (want.empty() ? "" : ",") + std::to_string(t);
  EXPECT_EQ(got, want) << describe(r);
}

// FastKV on ~1.8K tokens (3.5 windows): the default TSP layer floor(18/2) - 1 = 8 is local, so
// TSP runs after layer 11, the next global one; local layers keep their 512-row window (1 KV
// head) up to there and only the propagated tokens inside the window after it; the global
// layers 5 and 11 keep int(N × 0.1) rows, layer 17 int(T × 0.1 / 0.2) of the T = int(N × 0.2)
// propagated tokens.
TEST_F(CliGemma3, FastKVKeepsLocalWindowsAndCompressesGlobalLayers) {
  std::ifstream in(test::shared_path("data/PaulGrahamEssays/addiction.txt"), std::ios::binary);
  ASSERT_TRUE(in) << "missing Paul Graham essay in ../shared/data";
  std::ostringstream text;
  text << in.rdbuf();
  const std::string prompt = text.str().substr(0, 9000) + "\n\nIn one sentence, the essay says that";
  const std::string dir = test::temp_dir();
  const std::string file = dir + "/prompt.txt";
  std::ofstream(file, std::ios::binary) << prompt;
  const CommandResult r = run_fastkv("run -m " + shell_quote(path_) + " -f " + shell_quote(file) +
                                     " -n 4 --temp 0 --method fastkv");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "method: fastkv, TSP layer 8 (local: TSP after global layer 11)"))
      << r.err;
  const std::vector<long> n = numbers_after(r.err, "prompt tokens: ");
  ASSERT_EQ(n.size(), 1u) << r.err;
  const long N = n[0];
  ASSERT_GT(N, 3 * 512) << "the prompt must span several windows";
  const std::vector<long> kept = numbers_after(r.err, "KV entries kept per layer (all heads): ");
  ASSERT_EQ(kept.size(), 18u) << r.err;
  const long T = static_cast<long>(N * 0.2);
  for (int l = 0; l < 18; ++l) {
    const bool global = l % 6 == 5;
    if (global) {
      const long want = l < 17 ? static_cast<long>(N * 0.1) : static_cast<long>(T * (0.1 / 0.2));
      EXPECT_EQ(kept[l], want) << "global layer " << l;
    } else if (l <= 11) {
      EXPECT_EQ(kept[l], 512) << "local layer " << l << " before TSP: the whole window";
    } else {
      EXPECT_LE(kept[l], 512) << "local layer " << l;
      EXPECT_GE(kept[l], 8) << "local layer " << l << ": at least the observation window";
    }
  }
  const std::vector<long> prop = numbers_after(r.err, "tokens propagated to the last layer: ");
  ASSERT_FALSE(prop.empty()) << r.err;
  EXPECT_EQ(prop[0], T);
}

}  // namespace
}  // namespace fastkv
