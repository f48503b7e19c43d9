// `fastkv run --ids / --ids-file` (prompts as token ids, fed as they are) and
// `--dump-selection` (what a method selected in the prefill), end to end on stories260K.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
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
using test::shell_quote;

std::string stories() {
  return test::shared_path("models/stories260K.gguf");
}

using test::describe;

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// "1,2,3" from ids.
std::string comma_list(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

// The number after `label` on a line of stats ("prompt tokens: 5" -> 5), or -1.
long stat(const std::string& err, const std::string& label) {
  const size_t at = err.find(label);
  return at == std::string::npos ? -1 : std::atol(err.c_str() + at + label.size());
}

class CliIds : public ::testing::Test {
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

  // The ids `fastkv tokenize --ids` gives for `text` (BOS included, as `run -p` adds it).
  std::vector<int32_t> tokenize(const std::string& text) {
    CommandResult r =
        run_fastkv("tokenize " + shell_quote(stories()) + " " + shell_quote(text) + " --ids");
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    return nlohmann::json::parse(r.out).get<std::vector<int32_t>>();
  }

  std::string dir_;
};

TEST_F(CliIds, IdsGiveTheSameGenerationAsTheEquivalentPrompt) {
  const std::string text = "Once upon a time";
  const std::vector<int32_t> ids = tokenize(text);
  ASSERT_GE(ids.size(), 2u);
  const std::string m = "run -m " + shell_quote(stories()) + " -n 40 --temp 0 --backend f32 ";
  CommandResult ref = run_fastkv(m + "-p " + shell_quote(text));
  ASSERT_EQ(ref.exit_code, 0) << describe(ref);
  ASSERT_GT(ref.out.size(), 20u);

  const std::string file_array = write_file("ids.json", nlohmann::json(ids).dump());
  const std::string file_object =
      write_file("obj.json", nlohmann::json{{"ids", ids}, {"note", "x"}}.dump(2));
  const std::string tokenize_output = nlohmann::json(ids).dump();  // "[1,403,...]"
  for (const std::string& how :
       {"--ids " + comma_list(ids), "--ids " + shell_quote("[" + comma_list(ids) + "]"),
        "--ids " + shell_quote(tokenize_output), "--ids-file " + shell_quote(file_array),
        "--ids-file " + shell_quote(file_object)}) {
    CommandResult r = run_fastkv(m + how);
    ASSERT_EQ(r.exit_code, 0) << how << "\n" << describe(r);
    EXPECT_EQ(r.out, ref.out) << how;
    EXPECT_EQ(stat(r.err, "prompt tokens: "), static_cast<long>(ids.size())) << describe(r);
  }
  // Standard input.
  CommandResult r = test::run_shell("printf '%s' " + shell_quote(nlohmann::json(ids).dump()) +
                                    " | '" + test::fastkv_bin() + "' " + m + "--ids-file -");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, ref.out);
}

TEST_F(CliIds, NoBosIsAdded) {
  std::vector<int32_t> ids = tokenize("Once upon a time");
  ASSERT_EQ(ids[0], 1) << "stories260K's BOS";
  ids.erase(ids.begin());
  const std::string json = dir_ + "/r.json";
  CommandResult r = run_fastkv("run -m " + shell_quote(stories()) + " -n 1 --ids " +
                               comma_list(ids) + " --json " + shell_quote(json));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(read_json(json)["prompt_tokens"], ids.size());
}

TEST_F(CliIds, BadIdsExitOneWithOneErrorLine) {
  const std::string m = "run -m " + shell_quote(stories()) + " -n 2 ";
  const std::string empty_array = write_file("empty.json", "[]");
  const std::string floats = write_file("floats.json", "[1, 2.5]");
  const std::string strings = write_file("strings.json", "[1, \"2\"]");
  const std::string broken = write_file("broken.json", "[1,\n2");
  const std::string no_key = write_file("nokey.json", "{\"tokens\": [1, 2]}");
  const std::string outside = write_file("outside.json", "{\"ids\": [1, 512]}");
  const std::string scalar = write_file("scalar.json", "7");
  for (const std::string& args :
       {m + "--ids ''",
        m + "--ids ' '",
        m + "--ids '[]'",
        m + "--ids 1,,2",
        m + "--ids 1,2,",
        m + "--ids abc",
        m + "--ids 1,x",
        m + "--ids 2.5",
        m + "--ids ' -3'",
        m + "--ids 512",  // stories260K has 512 tokens: ids lie in [0, 512)
        m + "--ids 1,99999999999",
        m + "--ids 1,2 --chat",
        m + "--ids 1 -p 'Once'",
        m + "--ids 1 --ids-file " + shell_quote(empty_array),
        m + "--ids-file " + shell_quote(empty_array),
        m + "--ids-file " + shell_quote(floats),
        m + "--ids-file " + shell_quote(strings),
        m + "--ids-file " + shell_quote(broken),
        m + "--ids-file " + shell_quote(no_key),
        m + "--ids-file " + shell_quote(outside),
        m + "--ids-file " + shell_quote(scalar),
        m + "--ids-file " + shell_quote(dir_ + "/missing.json"),
        m + "--ids 1 --dump-top-k 0 --dump-selection " + shell_quote(dir_ + "/d.json"),
        m + "--ids 1 --dump-top-k 3"}) {
    CommandResult r = run_fastkv(args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << describe(r);
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << args << "\n" << describe(r);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << describe(r);
    EXPECT_EQ(r.out, "") << args;
  }
  // The messages say what is wrong.
  EXPECT_NE(run_fastkv(m + "--ids 512").err.find("vocabulary"), std::string::npos);
  EXPECT_NE(run_fastkv(m + "--ids 1,x").err.find("'x'"), std::string::npos);
  EXPECT_NE(run_fastkv(m + "--ids ''").err.find("empty"), std::string::npos);
  EXPECT_NE(run_fastkv(m + "--ids 1,2 --chat").err.find("--chat"), std::string::npos);
}

// stories260K's tensors and metadata without the tokenizer: ids still run, and the generated
// ids are printed (no text can be made), equal to what the model with its tokenizer generates.
TEST_F(CliIds, ModelWithoutTokenizerPrintsGeneratedIds) {
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
  const std::string ids = comma_list(tokenize("Once upon a time"));
  const std::string json = dir_ + "/r.json";
  CommandResult ref =
      run_fastkv("run -m " + shell_quote(stories()) + " --ids " + ids +
                 " -n 12 --temp 0 --backend f32 --ignore-eos --json " + shell_quote(json));
  ASSERT_EQ(ref.exit_code, 0) << describe(ref);
  const auto want = read_json(json)["generated_ids"].get<std::vector<int32_t>>();
  ASSERT_EQ(want.size(), 12u);
  CommandResult r = run_fastkv("run -m " + shell_quote(no_tok) + " --ids " + ids +
                               " -n 12 --temp 0 --backend f32");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(nlohmann::json::parse(r.out).get<std::vector<int32_t>>(), want) << describe(r);
  // Stop strings need a tokenizer.
  CommandResult s = run_fastkv("run -m " + shell_quote(no_tok) + " --ids " + ids + " --stop x");
  EXPECT_EQ(s.exit_code, 1) << describe(s);
  EXPECT_NE(s.err.find("--stop"), std::string::npos) << describe(s);
}

// A prompt of about 360 tokens: long enough for FastKV's defaults to propagate
// (T = int(N × 0.2) >= window + 1).
std::string long_prompt() {
  std::string p;
  for (int i = 0; i < 12; ++i)
    p += "Once upon a time there was a little girl named Lily. She loved to play outside in the "
         "park. ";
  return p;
}

class CliDumpSelection : public CliIds {};

TEST_F(CliDumpSelection, FastKVPropagatedAndKeptAgreeWithTheStatistics) {
  const std::string dump = dir_ + "/d.json", json = dir_ + "/r.json";
  CommandResult r =
      run_fastkv("run -m " + shell_quote(stories()) + " -p " + shell_quote(long_prompt()) +
                 " -n 4 --temp 0 --method fastkv --json " + shell_quote(json) +
                 " --dump-selection " + shell_quote(dump));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json d = read_json(dump), j = read_json(json);
  const int N = d["n_prompt"];
  EXPECT_EQ(N, j["prompt_tokens"].get<int>());
  EXPECT_EQ(d["method"], "fastkv");
  EXPECT_EQ(d["prompt_ids"].size(), static_cast<size_t>(N));
  ASSERT_GT(N, 300);

  // One TSP step; its positions are what the stats count as propagated.
  ASSERT_EQ(d["propagated"].size(), 1u) << d["propagated"].dump();
  const nlohmann::json& step = d["propagated"][0];
  const auto pos = step["positions"].get<std::vector<int32_t>>();
  EXPECT_EQ(static_cast<long>(pos.size()), j["propagated"].get<long>());
  EXPECT_EQ(static_cast<long>(pos.size()), stat(r.err, "tokens propagated to the last layer: "));
  EXPECT_LT(static_cast<int>(pos.size()), N);
  EXPECT_EQ(step["restart"], false);
  EXPECT_TRUE(std::is_sorted(pos.begin(), pos.end()));
  EXPECT_EQ(std::set<int32_t>(pos.begin(), pos.end()).size(), pos.size());
  for (int i = N - 8; i < N; ++i) {  // the observation window (w = 8) always goes on
    EXPECT_TRUE(std::binary_search(pos.begin(), pos.end(), i)) << "window position " << i;
  }
  const int tsp_layer = step["layer"];

  // kept: per layer, per KV head; the heads' sizes add up to what --json reports per layer.
  const auto kept_rows = j["kept_rows_per_layer"].get<std::vector<int64_t>>();
  ASSERT_EQ(d["kept"].size(), kept_rows.size());
  for (size_t l = 0; l < kept_rows.size(); ++l) {
    int64_t rows = 0;
    for (const nlohmann::json& head : d["kept"][l]) {
      const auto h = head.get<std::vector<int32_t>>();
      rows += static_cast<int64_t>(h.size());
      EXPECT_TRUE(std::is_sorted(h.begin(), h.end())) << "layer " << l;
      ASSERT_FALSE(h.empty());
      EXPECT_GE(h.front(), 0);
      EXPECT_LT(h.back(), N) << "decoded rows are not part of the dump";
      // After the TSP layer a cache holds only propagated tokens.
      if (static_cast<int>(l) > tsp_layer) {
        for (int32_t p : h) EXPECT_TRUE(std::binary_search(pos.begin(), pos.end(), p)) << p;
      }
    }
    EXPECT_EQ(rows, kept_rows[l]) << "layer " << l;
  }

  // top_logits: 10 by default, descending, led by the greedy first token.
  const nlohmann::json& top = d["top_logits"];
  ASSERT_EQ(top.size(), 10u);
  for (size_t i = 1; i < top.size(); ++i) {
    EXPECT_GE(top[i - 1]["logit"].get<double>(), top[i]["logit"].get<double>()) << i;
  }
  EXPECT_EQ(top[0]["id"], j["generated_ids"][0]);
  EXPECT_TRUE(top[0].contains("text"));
}

TEST_F(CliDumpSelection, FullKeepsEverythingAndPropagatesNothing) {
  const std::vector<int32_t> ids = tokenize(long_prompt());
  const std::string dump = dir_ + "/d.json", json = dir_ + "/r.json";
  CommandResult r = run_fastkv("run -m " + shell_quote(stories()) + " --ids " + comma_list(ids) +
                               " -n 3 --temp 0 --json " + shell_quote(json) + " --dump-selection " +
                               shell_quote(dump) + " --dump-top-k 3");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json d = read_json(dump), j = read_json(json);
  EXPECT_EQ(d["method"], "full");
  EXPECT_EQ(d["propagated"], nlohmann::json::array());
  EXPECT_EQ(d["prompt_ids"].get<std::vector<int32_t>>(), ids);
  std::vector<int32_t> all(ids.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int32_t>(i);
  ASSERT_EQ(d["kept"].size(), 5u);  // stories260K's layers
  for (const nlohmann::json& layer : d["kept"]) {
    ASSERT_FALSE(layer.empty());
    for (const nlohmann::json& head : layer) EXPECT_EQ(head.get<std::vector<int32_t>>(), all);
  }
  ASSERT_EQ(d["top_logits"].size(), 3u);
  EXPECT_EQ(d["top_logits"][0]["id"], j["generated_ids"][0]);
  EXPECT_GE(d["top_logits"][0]["logit"].get<double>(), d["top_logits"][1]["logit"].get<double>());
  EXPECT_GE(d["top_logits"][1]["logit"].get<double>(), d["top_logits"][2]["logit"].get<double>());
}

// Constant mode as the authors run it: a TSP layer with fewer live tokens than --kv-budget
// propagates every token (docs/fastkv.md), so the dump has no propagated entry; at a budget
// below N it has one of --tsp-len positions.
TEST_F(CliDumpSelection, ConstantModePropagatesOnlyWhenThePromptReachesTheBudget) {
  const std::string m = "run -m " + shell_quote(stories()) + " -p " + shell_quote(long_prompt()) +
                        " -n 1 --method fastkv --tsp-len 128 --dump-selection ";
  const std::string below = dir_ + "/below.json", above = dir_ + "/above.json";
  CommandResult r = run_fastkv(m + shell_quote(below) + " --kv-budget 1000");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json b = read_json(below);
  ASSERT_LT(b["n_prompt"].get<int>(), 1000);
  EXPECT_EQ(b["propagated"], nlohmann::json::array());
  r = run_fastkv(m + shell_quote(above) + " --kv-budget 64");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json a = read_json(above);
  ASSERT_EQ(a["propagated"].size(), 1u);
  EXPECT_EQ(a["propagated"][0]["positions"].size(), 128u);
  for (const nlohmann::json& head : a["kept"][0]) EXPECT_EQ(head.size(), 64u);
}

}  // namespace
}  // namespace fastkv
