// Golden agreement with llama.cpp: the f32 path's logits at the stored positions, and the
// greedy continuation, for every file in ../shared/golden/logits/ and in the directories of
// $FASTKV_LOGIT_GOLDENS (colon-separated). Models are looked up with test::find_model
// (../shared/models/, the directories of $FASTKV_MODEL_PATH, models/).
//
// Tolerances (from the issue): llama.cpp rounds some intermediates to f16, so an exact forward
// lands at 1e-3..5e-3 of max|golden|; we allow 1e-2 at every position and 4e-3 as the median.
// The same files also run on the bf16 fast path (Bf16BackendWithinBf16Rounding), with bounds
// derived and measured in the comment above that test.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "io/gguf.h"
#include "model/model.h"
#include "test_util.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> golden_files() {
  std::vector<std::string> dirs = {test::shared_path("golden/logits")};
  for (const std::string& d : test::env_path_list("FASTKV_LOGIT_GOLDENS")) dirs.push_back(d);
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

// Bounds on the logits at the stored positions, relative to the logit scale max|golden|.
struct LogitTolerance {
  double max_ratio;      // max|Δ| / max|golden| at every position
  double median_ratio;   // median over positions of that ratio
  double argmax_margin;  // same top-1 wherever golden top-1 − top-2 > this × max|golden|
};

// What one comparison measured (printed, so the bounds can be re-derived).
struct LogitAgreement {
  double max_ratio = 0, median_ratio = 0;
  int argmax_checked = 0;         // positions whose golden margin exceeded argmax_margin
  int argmax_changed = 0;         // positions (any margin) whose top-1 differs from the golden's
  double max_changed_margin = 0;  // largest golden margin / max|golden| among those
};

class LogitsGolden : public ::testing::TestWithParam<std::string> {
 protected:
  // Loads the golden file's model on `backend`, runs the prompt through it (full KV) and
  // checks the logits at the stored positions against `tol`. Leaves model_, tokens_ set.
  LogitAgreement compare(kernels::Backend backend, const LogitTolerance& tol) {
    LogitAgreement a;
    const gguf::File g = gguf::File::open(GetParam());
    model_name_ = g.get_string("golden.model");
    const std::string model_path = test::find_model(model_name_);
    EXPECT_FALSE(model_path.empty()) << "model " << model_name_ << " not found for " << GetParam();
    if (model_path.empty()) return a;
    LoadOptions lo;
    lo.backend = backend;
    model_ = Model::load(model_path, lo);
    const int V = model_->config().n_vocab;
    EXPECT_EQ(V, g.get_int("golden.n_vocab"));

    tokens_ = g.read_i32("tokens");
    const std::vector<int32_t> positions = g.read_i32("positions");
    const std::vector<float> golden = g.read_f32("logits");
    EXPECT_EQ(golden.size(), positions.size() * static_cast<size_t>(V));
    if (golden.size() != positions.size() * static_cast<size_t>(V)) return a;

    std::vector<int> rows(positions.begin(), positions.end());
    FullMethod full;
    KVCache cache;
    PrefillOutput out = model_->prefill(tokens_, full, cache, rows);
    EXPECT_EQ(out.logits.size(), golden.size());
    if (out.logits.size() != golden.size()) return a;

    std::vector<double> ratios;
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
      EXPECT_LE(ratio, tol.max_ratio) << "position " << positions[p];
      const int top1 = static_cast<int>(std::max_element(gl, gl + V) - gl);
      float second = -INFINITY;
      for (int t = 0; t < V; ++t) {
        if (t != top1) second = std::max(second, gl[t]);
      }
      const double margin = (gl[top1] - second) / max_g;
      const bool same = std::max_element(ol, ol + V) - ol == top1;
      if (!same) {
        ++a.argmax_changed;
        a.max_changed_margin = std::max(a.max_changed_margin, margin);
      }
      if (margin > tol.argmax_margin) {
        ++a.argmax_checked;
        EXPECT_TRUE(same) << "argmax at position " << positions[p] << " (golden margin " << margin
                          << " of max|golden|)";
      }
    }
    std::vector<double> sorted = ratios;
    std::sort(sorted.begin(), sorted.end());
    a.max_ratio = sorted.back();
    a.median_ratio = sorted[sorted.size() / 2];
    EXPECT_LE(a.median_ratio, tol.median_ratio);
    std::printf(
        "%s [%s]: %zu positions, max ratio %.2e, median %.2e, %d argmax checks; "
        "top-1 changed at %d positions (largest golden margin there %.2e)\n",
        fs::path(GetParam()).filename().c_str(),
        backend == kernels::Backend::kBf16 ? "bf16" : "f32", ratios.size(), a.max_ratio,
        a.median_ratio, a.argmax_checked, a.argmax_changed, a.max_changed_margin);
    return a;
  }

  std::unique_ptr<Model> model_;
  std::vector<int32_t> tokens_;
  std::string model_name_;
};

TEST_P(LogitsGolden, MatchesLlamaCpp) {
  compare(kernels::Backend::kF32, {.max_ratio = 1e-2, .median_ratio = 4e-3, .argmax_margin = 1e-2});
  if (!model_) return;

  // stories260K (real weights): the 32-token greedy continuation must match exactly.
  const gguf::File g = gguf::File::open(GetParam());
  if (model_name_ == "stories260K.gguf" && g.find_tensor("greedy")) {
    std::vector<int32_t> expected = g.read_i32("greedy");
    FullMethod full;
    KVCache c2;
    PrefillOutput o2 = model_->prefill(tokens_, full, c2);
    std::vector<float> logits = o2.logits;
    std::vector<int32_t> got;
    int64_t pos = static_cast<int64_t>(tokens_.size());
    for (size_t s = 0; s < expected.size(); ++s) {
      int32_t next =
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      got.push_back(next);
      if (s + 1 < expected.size()) logits = model_->decode(next, pos++, c2);
    }
    EXPECT_EQ(got, expected);
  }
}

// The fast path (LoadOptions{kBf16}: bf16 GEMMs on oneDNN, f32 accumulation; bf16 attention
// tiles once the model routes attention through them) against the same goldens.
//
// Why a wider bound than the f32 path's: bf16 keeps 8 significand bits, so rounding an operand
// costs up to 2^-9 ≈ 0.2% relative and a product up to 2^-8 ≈ 0.4%; every projection (7 per
// layer), the attention tiles and the LM head add such errors to the residual stream, and the L
// layers carry them on. That is roughly 8×
// the f16 rounding that already separates llama.cpp's logits from our f32 path (11 vs 8
// significand bits), and the measured ratio bf16/f32 against the same file is 6 to 17.
// How strongly a model amplifies rounding is a property of its weights: tiny-llama-gqa (random
// weights) shows 5 to 9× the others' spread on the f32 path already (4.6e-3 vs 1.0e-3, 4.9e-4),
// and it does on bf16, so it gets its own bound.
//
// Measured max / median of max|Δ| / max|golden| over the stored positions (AMX machine; the
// first column with bf16 GEMMs only, the second with the bf16 attention tiles and bf16 KV cache
// that were being added to the fast path at the time):
//                           bf16 GEMMs only         + bf16 attention
//   stories260K  short      7.2e-3 / 4.3e-3         8.8e-3 / 5.3e-3
//   stories260K  long       6.2e-3 / 4.1e-3         1.25e-2 / 5.7e-3
//   tiny-qwen2   short/long 5.4e-3 / 3.6e-3         7.7e-3 / 3.5e-3
//   tiny-llama   short      4.4e-2 / 2.1e-2         4.7e-2 / 2.6e-2
//   tiny-llama   long       3.8e-2 / 2.3e-2         5.0e-2 / 2.7e-2
// The greedy top-1 changed only on tiny-llama, at positions whose golden top-1 − top-2 margin
// was at most 1.7e-2 of max|golden| (none on the other two models).
// Bounds, 2× the largest measured max and 2.2 to 2.6× the largest median (the rounding itself
// is deterministic, so other CPUs differ only in f32 accumulation order, far below this):
//   stories260K, tiny-qwen2-gqa: max 2.5e-2, median 1.5e-2; top-1 kept where margin > 1.5e-2.
//   tiny-llama-gqa and models not measured here ($FASTKV_LOGIT_GOLDENS): max 1e-1, median
//   6e-2; top-1 kept where margin > 6e-2 (3.5× the largest margin that flipped).
// The greedy continuation and the selection / FastKV end-to-end goldens stay f32-only.
TEST_P(LogitsGolden, Bf16BackendWithinBf16Rounding) {
  const std::string model = gguf::File::open(GetParam()).get_string("golden.model");
  const bool well_conditioned = model == "stories260K.gguf" || model == "tiny-qwen2-gqa.gguf";
  const LogitTolerance tol =
      well_conditioned
          ? LogitTolerance{.max_ratio = 2.5e-2, .median_ratio = 1.5e-2, .argmax_margin = 1.5e-2}
          : LogitTolerance{.max_ratio = 1e-1, .median_ratio = 6e-2, .argmax_margin = 6e-2};
  const LogitAgreement a = compare(kernels::Backend::kBf16, tol);
  // The argmax rule must have checked something, or it asserts nothing.
  EXPECT_GT(a.argmax_checked, 0);
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
  EXPECT_GE(golden_files().size(), 6u)
      << "expected the 6 logits goldens in " << test::shared_path("golden/logits");
}

}  // namespace
}  // namespace fastkv
