// `fastkv inspect`: summaries of the shared models and vocabularies, --metadata, --tensors and
// the one-line errors for files that are not (complete) GGUF files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "test_util.h"

namespace fastkv {
namespace {

namespace fs = std::filesystem;
using test::run_fastkv;
using test::shared_path;

using test::shell_quote;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Whole lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
  }
  return out;
}

#define EXPECT_LINE(text, line)                                         \
  EXPECT_TRUE(contains("\n" + (text), "\n" + std::string(line) + "\n")) \
      << "no line '" << (line) << "' in:\n"                             \
      << (text)

// "tensors: N (T1: n1, T2: n2)" computed from the file itself, most frequent type first.
std::string tensor_line(const gguf::File& f) {
  std::map<std::string, int> by_type;
  for (const gguf::TensorInfo& t : f.tensors()) ++by_type[gguf::type_name(t.type)];
  std::vector<std::pair<std::string, int>> types(by_type.begin(), by_type.end());
  std::stable_sort(types.begin(), types.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string line = "tensors: " + std::to_string(f.tensors().size());
  if (types.empty()) return line;
  line += " (";
  for (size_t k = 0; k < types.size(); ++k) {
    line += (k ? ", " : "") + types[k].first + ": " + std::to_string(types[k].second);
  }
  return line + ")";
}

void expect_error(const std::string& args, const std::string& path) {
  SCOPED_TRACE(args);
  test::CommandResult r = run_fastkv("inspect " + args);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_TRUE(contains(r.err, path)) << r.err;
  // One line.
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST(CliInspect, Stories260K) {
  std::string path = shared_path("models/stories260K.gguf");
  ASSERT_TRUE(fs::exists(path)) << path;
  test::CommandResult r = run_fastkv("inspect " + shell_quote(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::string& out = r.out;
  EXPECT_LINE(out, "file: " + path);
  EXPECT_LINE(out, "size: 1185376 bytes (1.13 MiB)");
  EXPECT_LINE(out, "gguf version: 3");
  EXPECT_LINE(out, "alignment: 32");
  EXPECT_LINE(out, "architecture: llama");
  EXPECT_LINE(out, "name: llama");
  EXPECT_LINE(out, "hyper-parameters:");
  EXPECT_LINE(out, "  context_length: 2048");
  EXPECT_LINE(out, "  embedding_length: 64");
  EXPECT_LINE(out, "  block_count: 5");
  EXPECT_LINE(out, "  feed_forward_length: 172");
  EXPECT_LINE(out, "  attention.head_count: 8");
  EXPECT_LINE(out, "  attention.head_count_kv: 4");
  EXPECT_LINE(out, "  attention.layer_norm_rms_epsilon: 1e-05");
  EXPECT_LINE(out, "  rope.dimension_count: 8");
  // 48 F32 tensors: token_embd, output_norm, output and 9 per layer; 292800 parameters.
  EXPECT_LINE(out, "parameters: 292800 (292.80 K)");
  EXPECT_LINE(out, "tensors: 48 (F32: 48), 1171200 bytes of data");
  EXPECT_LINE(out, "tokenizer: llama");
  EXPECT_LINE(out, "  pre: (none)");
  EXPECT_LINE(out, "  vocab size: 512");
  EXPECT_LINE(out, "  bos id: 1");
  EXPECT_LINE(out, "  eos id: 2");
  // Without flags there is no listing.
  EXPECT_FALSE(contains(out, "token_embd.weight"));
  EXPECT_FALSE(contains(out, "\nmetadata ("));

  // Cross-check the facts against the reader.
  gguf::File f = gguf::File::open(path);
  EXPECT_EQ(f.tensors().size(), 48u);
  int64_t params = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    EXPECT_EQ(t.type, gguf::TensorType::F32) << t.name;
    params += t.n_elements();
  }
  EXPECT_EQ(params, 292800);
  EXPECT_EQ(f.get_int("llama.block_count"), 5);
}

TEST(CliInspect, EverySharedModel) {
  std::vector<std::string> models;
  for (const auto& e : fs::directory_iterator(shared_path("models"))) {
    if (e.path().extension() == ".gguf") models.push_back(e.path().string());
  }
  ASSERT_GE(models.size(), 3u);
  for (const std::string& path : models) {
    SCOPED_TRACE(path);
    test::CommandResult r = run_fastkv("inspect " + shell_quote(path));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    gguf::File f = gguf::File::open(path);
    std::string arch = f.get_string("general.architecture");
    EXPECT_LINE(r.out, "file: " + path);
    EXPECT_LINE(r.out, "architecture: " + arch);
    EXPECT_LINE(r.out, "  block_count: " + std::to_string(f.get_int(arch + ".block_count")));
    EXPECT_LINE(r.out, "  attention.head_count: " +
                           std::to_string(f.get_int(arch + ".attention.head_count")));
    EXPECT_LINE(r.out, "  attention.head_count_kv: " +
                           std::to_string(f.get_int(arch + ".attention.head_count_kv")));
    int64_t params = 0;
    for (const gguf::TensorInfo& t : f.tensors()) params += t.n_elements();
    ASSERT_EQ(lines_starting(r.out, "parameters: ").size(), 1u);
    EXPECT_EQ(lines_starting(r.out, "parameters: ")[0].rfind(
                  "parameters: " + std::to_string(params) + " (", 0),
              0u);
    ASSERT_EQ(lines_starting(r.out, "tensors: ").size(), 1u);
    EXPECT_EQ(lines_starting(r.out, "tensors: ")[0].rfind(tensor_line(f) + ", ", 0), 0u)
        << tensor_line(f);
    EXPECT_LINE(r.out, "tokenizer: " + f.get_string("tokenizer.ggml.model"));
    EXPECT_LINE(r.out,
                "  vocab size: " + std::to_string(f.get_array("tokenizer.ggml.tokens").size()));

    // --tensors lists every tensor with its type and shape.
    test::CommandResult t = run_fastkv("inspect --tensors " + shell_quote(path));
    ASSERT_EQ(t.exit_code, 0) << t.err;
    for (const gguf::TensorInfo& info : f.tensors()) {
      EXPECT_TRUE(contains(t.out, "  " + info.name + " ")) << info.name;
    }
  }
}

TEST(CliInspect, GqaModels) {
  test::CommandResult llama =
      run_fastkv("inspect " + shell_quote(shared_path("models/tiny-llama-gqa.gguf")));
  ASSERT_EQ(llama.exit_code, 0) << llama.err;
  EXPECT_LINE(llama.out, "architecture: llama");
  EXPECT_LINE(llama.out, "  block_count: 4");
  EXPECT_LINE(llama.out, "  attention.head_count: 8");
  EXPECT_LINE(llama.out, "  attention.head_count_kv: 2");
  EXPECT_LINE(llama.out, "  rope.freq_base: 500000");
  EXPECT_LINE(llama.out, "tensors: 39 (F32: 38, F16: 1), 27665472 bytes of data");
  EXPECT_LINE(llama.out, "  pre: default");
  EXPECT_LINE(llama.out, "  vocab size: 32000");

  test::CommandResult qwen =
      run_fastkv("inspect " + shell_quote(shared_path("models/tiny-qwen2-gqa.gguf")));
  ASSERT_EQ(qwen.exit_code, 0) << qwen.err;
  EXPECT_LINE(qwen.out, "architecture: qwen2");
  EXPECT_LINE(qwen.out, "  block_count: 3");
  EXPECT_LINE(qwen.out, "  attention.head_count_kv: 2");
  EXPECT_LINE(qwen.out, "tensors: 38 (F32: 37, F16: 1), 14985216 bytes of data");
  EXPECT_LINE(qwen.out, "tokenizer: gpt2");
  EXPECT_LINE(qwen.out, "  pre: gpt-2");
  EXPECT_LINE(qwen.out, "  vocab size: 50257");
  EXPECT_LINE(qwen.out, "  merges: 50000");
  EXPECT_LINE(qwen.out, "  bos id: 50256");
}

TEST(CliInspect, TokenizerOnlyVocabulary) {
  std::string path = shared_path("tokenizer/ggml-vocab-llama-spm.gguf");
  test::CommandResult r = run_fastkv("inspect " + shell_quote(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LINE(r.out, "architecture: llama");
  EXPECT_LINE(r.out, "name: llama-spm");
  EXPECT_LINE(r.out, "parameters: 0");
  EXPECT_LINE(r.out, "tensors: 0");
  EXPECT_LINE(r.out, "tokenizer: llama");
  EXPECT_LINE(r.out, "  pre: default");
  EXPECT_LINE(r.out, "  vocab size: 32000");
  EXPECT_LINE(r.out, "  bos id: 1");
  EXPECT_LINE(r.out, "  eos id: 2");
}

TEST(CliInspect, MetadataListsEveryKey) {
  std::string path = shared_path("models/stories260K.gguf");
  test::CommandResult r = run_fastkv("inspect --metadata " + shell_quote(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  gguf::File f = gguf::File::open(path);
  EXPECT_LINE(r.out, "metadata (19 keys):");
  size_t pos = r.out.find("\nmetadata (");
  ASSERT_NE(pos, std::string::npos);
  std::string listing = r.out.substr(pos);
  for (const auto& [key, value] : f.metadata()) {
    std::vector<std::string> lines = lines_starting(listing, "  " + key + " ");
    ASSERT_EQ(lines.size(), 1u) << key;
    EXPECT_TRUE(contains(lines[0], std::string(" ") + gguf::value_type_name(value.type) + " "))
        << lines[0];
    const std::string shown = gguf::to_string(value);
    EXPECT_EQ(lines[0].substr(lines[0].size() - shown.size()), shown) << lines[0];
  }
  EXPECT_TRUE(contains(listing, "string[512] [\"<unk>\", \"<s>\", \"</s>\""));
  EXPECT_FALSE(contains(r.out, "token_embd.weight"));  // no --tensors
}

TEST(CliInspect, TensorTable) {
  std::string path = shared_path("models/stories260K.gguf");
  test::CommandResult r = run_fastkv("inspect --tensors " + shell_quote(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "\ntensors (48; data section at byte ")) << r.out;
  std::vector<std::string> rows = lines_starting(r.out, "      0  token_embd.weight");
  ASSERT_EQ(rows.size(), 1u) << r.out;
  EXPECT_TRUE(contains(rows[0], " F32 "));
  EXPECT_TRUE(contains(rows[0], " [64, 512] "));
  EXPECT_TRUE(contains(rows[0], " 32768 "));
  EXPECT_TRUE(contains(rows[0], " 131072"));
  EXPECT_EQ(lines_starting(r.out, "     47  ").size(), 1u);
  EXPECT_TRUE(contains(r.out, "  blk.4.ffn_down.weight "));
  EXPECT_TRUE(contains(r.out, " [172, 64] "));
}

TEST(CliInspect, FileWithoutArchitectureOrTokenizer) {
  std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());
  std::string bare = dir + "/bare.gguf";
  gguf::Writer w;
  std::vector<float> v(64, 0.5f);
  w.add_f32("a", gguf::TensorType::Q8_0, {32, 2}, v.data());
  w.add_f32("b", gguf::TensorType::F16, {8}, v.data());
  w.add_f32("c", gguf::TensorType::Q8_0, {32}, v.data());
  w.write(bare);
  test::CommandResult r = run_fastkv("inspect " + shell_quote(bare));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LINE(r.out, "architecture: (none)");
  EXPECT_LINE(r.out, "name: (none)");
  EXPECT_FALSE(contains(r.out, "hyper-parameters"));
  EXPECT_LINE(r.out, "parameters: 104");
  EXPECT_LINE(r.out, "tensors: 3 (Q8_0: 2, F16: 1), 118 bytes of data");
  EXPECT_LINE(r.out, "tokenizer: none");

  // Rope scaling keys are listed with the hyper-parameters; alignment other than 32 is shown.
  std::string scaled = dir + "/scaled.gguf";
  gguf::Writer s(64);
  s.set_string("general.architecture", "llama");
  s.set_u32("llama.block_count", 2);
  s.set_string("llama.rope.scaling.type", "linear");
  s.set_f32("llama.rope.scaling.factor", 8.0f);
  s.set_string("tokenizer.ggml.model", "gpt2");
  s.write(scaled);
  r = run_fastkv("inspect " + shell_quote(scaled));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LINE(r.out, "alignment: 64");
  EXPECT_LINE(r.out, "  block_count: 2");
  EXPECT_LINE(r.out, "  rope.scaling.type: linear");
  EXPECT_LINE(r.out, "  rope.scaling.factor: 8");
  EXPECT_LINE(r.out, "tokenizer: gpt2");
  EXPECT_LINE(r.out, "  pre: (none)");
  EXPECT_LINE(r.out, "  vocab size: (no token list)");
  fs::remove_all(dir);
}

TEST(CliInspect, DownloadedSmolLM2IfPresent) {
  const std::string path = test::find_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (path.empty()) {
    GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not found in ../shared/models, "
                    "$FASTKV_MODEL_PATH or models/ (scripts/fetch-models.sh fetches it)";
  }
  test::CommandResult r = run_fastkv("inspect " + shell_quote(path));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LINE(r.out, "architecture: llama");
  EXPECT_LINE(r.out, "  block_count: 30");
  EXPECT_LINE(r.out, "  attention.head_count: 9");
  EXPECT_LINE(r.out, "  attention.head_count_kv: 3");
  EXPECT_LINE(r.out, "  vocab size: 49152");
  gguf::File f = gguf::File::open(path);
  ASSERT_EQ(lines_starting(r.out, "tensors: ").size(), 1u);
  EXPECT_EQ(lines_starting(r.out, "tensors: ")[0].rfind(tensor_line(f) + ", ", 0), 0u);
  EXPECT_TRUE(contains(tensor_line(f), "Q4_1: "));
}

TEST(CliInspect, Errors) {
  std::string dir = test::temp_dir();
  ASSERT_FALSE(dir.empty());

  expect_error(shell_quote(dir + "/missing.gguf"), dir + "/missing.gguf");
  expect_error(shell_quote(dir), dir);

  // A truncated copy of stories260K (header and metadata intact, tensor data cut).
  std::ifstream in(shared_path("models/stories260K.gguf"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(bytes.size(), 100000u);
  std::string truncated = dir + "/stories260K-truncated.gguf";
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, 100000);
  expect_error(shell_quote(truncated), truncated);
  test::CommandResult r = run_fastkv("inspect " + shell_quote(truncated));
  EXPECT_TRUE(contains(r.err, "lies outside the file")) << r.err;
  // Cut inside the metadata.
  std::string cut = dir + "/stories260K-cut.gguf";
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, 3000);
  expect_error(shell_quote(cut), cut);
  EXPECT_TRUE(contains(run_fastkv("inspect " + shell_quote(cut)).err, "runs past the end of the file"));

  std::string magic = dir + "/wrong-magic.gguf";
  std::string copy = bytes.substr(0, 4096);
  copy[0] = 'G', copy[1] = 'G', copy[2] = 'M', copy[3] = 'L';
  std::ofstream(magic, std::ios::binary) << copy;
  expect_error(shell_quote(magic), magic);
  EXPECT_TRUE(contains(run_fastkv("inspect " + shell_quote(magic)).err, "not a GGUF file"));

  std::string empty = dir + "/empty.gguf";
  std::ofstream(empty).close();
  expect_error(shell_quote(empty), empty);

  // No file at all is a usage error (CLI11's exit status, not 0).
  EXPECT_NE(run_fastkv("inspect").exit_code, 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace fastkv
