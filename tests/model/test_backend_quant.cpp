// The quant backend (LoadOptions{kQuant}: Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/Q4_K/Q5_K/Q6_K linear
// weights read in place by kernels::QuantLinear) against the f32 reference path on the same
// file. fastkv synth writes every type but Q4_1 (SmolLM2-135M shapes, 2 layers; the K-quants
// need rows of whole 256-element super-blocks, so those files have Llama-3.2-1B shapes, 1 layer).
//
// Both paths use the same weights (the f32 path dequantises the very blocks QuantLinear reads),
// so they differ only in arithmetic: the quant path rounds activations to q8 blocks in every
// projection of a row count <= kQuantDotMaxRows (decode, short prompts, the LM head's one row),
// |Δx| <= max|x_block| / 254 per element, i.e. about 2^-8 of the block's scale, and runs
// attention and the KV cache in bf16 (2^-9 relative per element) where the CPU has native bf16.
// Each is a rounding of the same order as the bf16 backend's, which test_backend_bf16.cpp bounds
// by 5% of the logit scale through 5 layers; with both roundings through 2 layers we allow the
// same 5%. Measured on these random-weight files (printed): quant 1.3-2.4% of the logit scale
// for every type (prefill and 2 decode steps), the bf16 backend's prefill 0.4-1.3%: the same
// order (q8 blocks round to 2^-8 of the block's largest value, bf16 to 2^-9 of each value).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels/quant_linear.h"
#include "method/method.h"
#include "model/model.h"
#include "model/synth.h"
#include "test_util.h"

namespace fastkv {
namespace {

std::unique_ptr<CompressionMethod> full(int n_layer) {
  return MethodRegistry::instance().create("full", {}, n_layer);
}

// max |a - b| / max |a|
double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double max_ref = 0, max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_ref = std::max(max_ref, std::fabs(double{a[i]}));
    max_diff = std::max(max_diff, std::fabs(double{a[i]} - b[i]));
  }
  return max_diff / max_ref;
}

struct QuantCase {
  const char* type;  // fastkv synth --type
  const char* like;  // --like
  int layers;
};

class QuantModel : public ::testing::TestWithParam<QuantCase> {};

TEST_P(QuantModel, LogitsFollowTheF32Path) {
  const std::string dir = test::temp_dir();
  synth::Options o;
  o.like = GetParam().like;
  o.type = GetParam().type;
  o.vocab = test::shared_path("models/stories260K.gguf");
  o.out = dir + "/m.gguf";
  o.layers = GetParam().layers;
  synth::write_model(o);

  auto ref = Model::load(o.out);
  LoadOptions lo;
  lo.backend = kernels::Backend::kQuant;
  auto q = Model::load(o.out, lo);
  EXPECT_EQ(q->backend(), kernels::Backend::kQuant);
  // Every projection and the (tied) LM head stay quantised.
  const LayerWeights& lw = q->weights().layers[0];
  for (const kernels::Linear* l :
       {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down, &q->weights().lm_head}) {
    EXPECT_EQ(l->backend(), kernels::Backend::kQuant);
  }
  lo.backend = kernels::Backend::kBf16;
  auto bf = Model::load(o.out, lo);
  EXPECT_LT(q->decode_weight_bytes(), bf->decode_weight_bytes());
  std::printf("%s: decode weight bytes quant %lld, bf16 %lld\n", GetParam().type,
              static_cast<long long>(q->decode_weight_bytes()),
              static_cast<long long>(bf->decode_weight_bytes()));

  const int V = ref->config().n_vocab;
  // Short prompts (every projection on the integer-dot path), a long one (dequantise + GEMM
  // for the layers, dot for the LM head's row), then two decode steps.
  std::vector<std::vector<int32_t>> prompts = {
      {1, 403}, {1, 261, 378, 285, 389}, {1, 17, 99, 300, 7, 8, 250, 42}, {1, 50},
      {1, 120, 7}, {1, 333, 6}, {1}};
  for (int i = 1; i < kernels::kQuantDotMaxRows + 8; ++i) prompts.back().push_back((37 * i) % V);
  int checked_argmax = 0;
  for (const std::vector<int32_t>& p : prompts) {
    auto m1 = full(ref->config().n_layer), m2 = full(ref->config().n_layer);
    KVCache c1, c2;
    std::vector<float> a = ref->prefill(p, *m1, c1).logits;
    std::vector<float> b = q->prefill(p, *m2, c2).logits;
    auto m3 = full(ref->config().n_layer);
    KVCache c3;
    const double bf16_diff = rel_diff(a, bf->prefill(p, *m3, c3).logits);
    ASSERT_EQ(a.size(), static_cast<size_t>(V));
    ASSERT_EQ(b.size(), a.size());
    double worst = rel_diff(a, b);
    const int64_t top_a = std::max_element(a.begin(), a.end()) - a.begin();
    const int64_t top_b = std::max_element(b.begin(), b.end()) - b.begin();
    std::vector<float> sorted = a;
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
    const float scale = std::max(std::fabs(sorted[0]), 1e-6f);
    // The greedy token must agree where the f32 top-2 margin exceeds twice the allowed error.
    if (sorted[0] - sorted[1] > 0.1f * scale) {
      EXPECT_EQ(top_a, top_b) << "prompt of " << p.size() << " tokens";
      ++checked_argmax;
    }
    int32_t tok = static_cast<int32_t>(top_a);
    for (int t = 0; t < 2; ++t) {
      const int64_t pos = static_cast<int64_t>(p.size()) + t;
      std::vector<float> da = ref->decode(tok, pos, c1), db = q->decode(tok, pos, c2);
      worst = std::max(worst, rel_diff(da, db));
      tok = static_cast<int32_t>(std::max_element(da.begin(), da.end()) - da.begin());
    }
    std::printf(
        "%s, %zu tokens: max |Δlogit| / max |logit| = %.5f (bf16 backend's prefill "
        "%.5f), top-1 %lld vs %lld\n",
        GetParam().type, p.size(), worst, bf16_diff, static_cast<long long>(top_a),
        static_cast<long long>(top_b));
    EXPECT_LE(worst, 0.05);
  }
  EXPECT_GE(checked_argmax, 1) << "no prompt had a clear top-1: the greedy check said nothing";
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantModel,
                         ::testing::Values(QuantCase{"q8_0", "smollm2-135m", 2},
                                           QuantCase{"q4_0", "smollm2-135m", 2},
                                           QuantCase{"q5_0", "smollm2-135m", 2},
                                           QuantCase{"q5_1", "smollm2-135m", 2},
                                           QuantCase{"q4_k", "llama-3.2-1b", 1},
                                           QuantCase{"q5_k", "llama-3.2-1b", 1},
                                           QuantCase{"q6_k", "llama-3.2-1b", 1}),
                         [](const ::testing::TestParamInfo<QuantCase>& info) {
                           return std::string(info.param.type);
                         });

// A file whose linear weights are not Q8_0/Q4_0/Q4_1 (bf16 here) loads with kQuant on the
// dense fallback, and gives the bf16 backend's logits.
TEST(QuantModelFallback, OtherTypesUseTheDenseBackend) {
  const std::string dir = test::temp_dir();
  synth::Options o;
  o.like = "smollm2-135m";
  o.type = "bf16";
  o.vocab = test::shared_path("models/stories260K.gguf");
  o.out = dir + "/m.gguf";
  o.layers = 1;
  synth::write_model(o);
  LoadOptions lo;
  lo.backend = kernels::Backend::kQuant;
  auto q = Model::load(o.out, lo);
  const kernels::Backend dense =
      kernels::cpu_has_native_bf16() ? kernels::Backend::kBf16 : kernels::Backend::kF32;
  EXPECT_EQ(q->weights().layers[0].wq.backend(), dense);
  EXPECT_EQ(q->weights().lm_head.backend(), dense);
  lo.backend = dense;
  auto d = Model::load(o.out, lo);
  auto m1 = full(1), m2 = full(1);
  KVCache c1, c2;
  const std::vector<int32_t> p = {1, 403, 407};
  EXPECT_EQ(q->prefill(p, *m1, c1).logits, d->prefill(p, *m2, c2).logits);
  EXPECT_EQ(q->decode_weight_bytes(), d->decode_weight_bytes());
  std::filesystem::remove_all(dir);
}

// --backend auto: a file whose layer weights are quantised in a type QuantLinear reads gets the
// quant backend; a dense file (f32, bf16) gets bf16 where the CPU has it, else f32.
TEST(AutoBackend, QuantisedFilesStayQuantised) {
  const std::string dir = test::temp_dir();
  const kernels::Backend dense =
      kernels::cpu_has_native_bf16() ? kernels::Backend::kBf16 : kernels::Backend::kF32;
  for (const char* type : {"q8_0", "q4_0", "bf16", "f32"}) {
    synth::Options o;
    o.like = "smollm2-135m";
    o.type = type;
    o.vocab = test::shared_path("models/stories260K.gguf");
    o.out = dir + "/" + type + ".gguf";
    o.layers = 1;
    synth::write_model(o);
    const bool quantised = type[0] == 'q';
    EXPECT_EQ(auto_backend(gguf::File::open(o.out)),
              quantised ? kernels::Backend::kQuant : dense)
        << type;
  }
  // The real SmolLM2 Q4_1 file (Q4_1 projections, Q8_0 tied embeddings) where it is present.
  const std::string smol = test::find_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (!smol.empty()) {
    EXPECT_EQ(auto_backend(gguf::File::open(smol)), kernels::Backend::kQuant);
  }
  // stories260K: all F32.
  EXPECT_EQ(auto_backend(gguf::File::open(test::shared_path("models/stories260K.gguf"))), dense);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fastkv
