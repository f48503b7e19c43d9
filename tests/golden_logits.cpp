// Golden agreement with llama.cpp: the f32 path's logits at the stored positions, and the
// greedy continuation, for every file in ../shared/golden/logits/ and in the directories of
// $FASTKV_LOGIT_GOLDENS (colon-separated). Models are looked up in ../shared/models/ and in the
// directories of $FASTKV_MODEL_PATH.
//
// Tolerances (from the issue): llama.cpp rounds some intermediates to f16, so an exact forward
// lands at 1e-3..5e-3 of max|golden|; we allow 1e-2 at every position and 4e-3 as the median.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "io/gguf.h"
#include "model/model.h"
#include "test_util.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> split_path_list(const char* env) {
  std::vector<std::string> out;
  if (!env) return out;
  std::stringstream ss(env);
  std::string item;
  while (std::getline(ss, item, ':')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<std::string> golden_files() {
  std::vector<std::string> dirs = {test::shared_path("golden/logits")};
  for (const std::string& d : split_path_list(std::getenv("FASTKV_LOGIT_GOLDENS"))) dirs.push_back(d);
  std::vector<std::string> files;
  for (const std::string& d : dirs) {
    if (!fs::is_directory(d)) continue;
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.path().extension() == ".gguf") files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string find_model(const std::string& name) {
  std::vector<std::string> dirs = {test::shared_path("models")};
  for (const std::string& d : split_path_list(std::getenv("FASTKV_MODEL_PATH"))) dirs.push_back(d);
  for (const std::string& d : dirs) {
    fs::path p = fs::path(d) / name;
    if (fs::exists(p)) return p.string();
  }
  return "";
}

class LogitsGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(LogitsGolden, MatchesLlamaCpp) {
  const gguf::File g = gguf::File::open(GetParam());
  const std::string model_name = g.get_string("golden.model");
  const std::string model_path = find_model(model_name);
  ASSERT_FALSE(model_path.empty()) << "model " << model_name << " not found for " << GetParam();
  auto model = Model::load(model_path);
  const int V = model->config().n_vocab;
  ASSERT_EQ(V, g.get_int("golden.n_vocab"));

  std::vector<int32_t> tokens = g.read_i32("tokens");
  std::vector<int32_t> positions = g.read_i32("positions");
  std::vector<float> golden = g.read_f32("logits");
  ASSERT_EQ(golden.size(), positions.size() * static_cast<size_t>(V));

  std::vector<int> rows(positions.begin(), positions.end());
  FullPolicy full;
  KVCache cache;
  PrefillOutput out = model->prefill(tokens, full, cache, rows);
  ASSERT_EQ(out.logits.size(), golden.size());

  std::vector<double> ratios;
  int argmax_checked = 0;
  for (size_t p = 0; p < positions.size(); ++p) {
    const float* gl = golden.data() + p * V;
    const float* ol = out.logits.data() + p * V;
    double max_g = 0, max_diff = 0;
    for (int t = 0; t < V; ++t) {
      max_g = std::max(max_g, std::fabs(static_cast<double>(gl[t])));
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(gl[t]) - ol[t]));
    }
    const double ratio = max_diff / max_g;
    ratios.push_back(ratio);
    EXPECT_LE(ratio, 1e-2) << "position " << positions[p];
    // Same argmax wherever the golden top-1 beats top-2 by more than 1e-2 × max|golden|.
    int top1 = static_cast<int>(std::max_element(gl, gl + V) - gl);
    float second = -INFINITY;
    for (int t = 0; t < V; ++t) {
      if (t != top1) second = std::max(second, gl[t]);
    }
    if (gl[top1] - second > 1e-2 * max_g) {
      ++argmax_checked;
      EXPECT_EQ(std::max_element(ol, ol + V) - ol, top1) << "argmax at position " << positions[p];
    }
  }
  std::vector<double> sorted = ratios;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  EXPECT_LE(median, 4e-3);
  std::printf("%s: %zu positions, max ratio %.2e, median %.2e, %d argmax checks\n",
              fs::path(GetParam()).filename().c_str(), ratios.size(), sorted.back(), median,
              argmax_checked);

  // stories260K (real weights): the 32-token greedy continuation must match exactly.
  if (model_name == "stories260K.gguf" && g.find_tensor("greedy")) {
    std::vector<int32_t> expected = g.read_i32("greedy");
    KVCache c2;
    PrefillOutput o2 = model->prefill(tokens, full, c2);
    std::vector<float> logits = o2.logits;
    std::vector<int32_t> got;
    int64_t pos = static_cast<int64_t>(tokens.size());
    for (size_t s = 0; s < expected.size(); ++s) {
      int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                                          logits.begin());
      got.push_back(next);
      if (s + 1 < expected.size()) logits = model->decode(next, pos++, c2);
    }
    EXPECT_EQ(got, expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Files, LogitsGolden, ::testing::ValuesIn(golden_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = fs::path(info.param).stem().string();
                           for (char& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

TEST(LogitsGoldenSet, SharedFilesArePresent) {
  // Guards against the parameterised test silently running on nothing.
  EXPECT_GE(golden_files().size(), 6u) << "expected the 6 logits goldens in "
                                       << test::shared_path("golden/logits");
}

}  // namespace
}  // namespace fastkv
