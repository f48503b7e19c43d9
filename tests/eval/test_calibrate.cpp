// TSP-layer calibration (eval/calibrate.h, the FastKV paper's Eq. 3) on a real trained model
// (stories260K: 5 layers, GQA 8/4) on the f32 reference path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "cache/kv_cache.h"
#include "common/error.h"
#include "eval/calibrate.h"
#include "io/gguf.h"
#include "test_util.h"

namespace fastkv::eval {
namespace {

const Model& stories() {
  static const std::unique_ptr<Model> m = Model::load(test::shared_path("models/stories260K.gguf"));
  return *m;
}

CalibrateSettings settings(std::vector<double> rates, double min_speedup) {
  CalibrateSettings s;
  s.rates = std::move(rates);
  s.min_speedup = min_speedup;
  return s;
}

TEST(Calibrate, GeneratedTextsAreDeterministicAndOfTheAskedLength) {
  const auto a = generated_calibration_texts(stories(), 400, 6, 7);
  const auto b = generated_calibration_texts(stories(), 400, 6, 7);
  const auto c = generated_calibration_texts(stories(), 400, 6, 8);
  ASSERT_EQ(a.size(), 6u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].tokens, b[i].tokens);
    EXPECT_LE(a[i].tokens.size(), 400u) << a[i].name;
    EXPECT_GE(a[i].tokens.size(), 300u) << a[i].name;  // filled, not a stub
  }
  EXPECT_EQ(a[0].name, "niah_single_1#0");
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      EXPECT_NE(a[i].name, a[j].name);
      EXPECT_NE(a[i].tokens, a[j].tokens);
    }
  }
  EXPECT_NE(a[0].tokens, c[0].tokens);
  // At 4K every task fits: the five tasks in their order.
  const auto big = generated_calibration_texts(stories(), 4096, 5, 7);
  const std::vector<std::string> names = {"niah_single_1#0", "niah_multikey_2#0", "vt#0",
                                          "niah_multikey_3#0", "fwe#0"};
  for (size_t i = 0; i < big.size(); ++i) EXPECT_EQ(big[i].name, names[i]);
  EXPECT_THROW(generated_calibration_texts(stories(), 10, 2, 1), Error);
  EXPECT_THROW(generated_calibration_texts(stories(), 400, 0, 1), Error);
}

TEST(Calibrate, FileTextsAreCutToTheContext) {
  const std::string dir = test::temp_dir();
  std::string text;
  for (int i = 0; i < 200; ++i) text += "Once upon a time there was a little dog. ";
  {
    std::ofstream(dir + "/long.txt") << text;
    std::ofstream(dir + "/blank.txt") << "  \n\t";
  }
  const auto t = file_calibration_texts(stories(), {dir + "/long.txt"}, 128);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].name, "long.txt");
  EXPECT_EQ(t[0].tokens.size(), 128u);
  EXPECT_THROW(file_calibration_texts(stories(), {dir + "/blank.txt"}, 128), Error);
  EXPECT_THROW(file_calibration_texts(stories(), {dir + "/missing.txt"}, 128), Error);
}

// Rate 1 propagates every token (T = N: no TSP), so every layer's model is the full model:
// the error must be exactly zero and the next token always the same.
TEST(Calibrate, RateOneMeansNoErrorAtAnyLayer) {
  const auto texts = generated_calibration_texts(stories(), 400, 2, 1);
  CalibrateSettings s = settings({1.0}, 0.5);
  s.layers = {0, 1, 2, 3};
  const CalibrationResult r = calibrate_tsp(stories(), texts, s);
  ASSERT_EQ(r.rows.size(), 4u);  // layers 0..L-2
  for (const CalibrationRow& row : r.rows) {
    EXPECT_TRUE(row.measured);
    EXPECT_EQ(row.error, 0.0) << "layer " << row.layer;
    EXPECT_EQ(row.next_token_agreement, 1.0);
    EXPECT_NEAR(row.predicted_speedup, 1.0, 1e-12);
  }
}

TEST(Calibrate, ChoosesTheLowestErrorAmongLayersFastEnough) {
  const auto texts = generated_calibration_texts(stories(), 448, 3, 1);
  CalibrateSettings s = settings({0.2, 0.4}, 1.3);
  s.layers = {0, 1, 2, 3};  // measure all, so ineligible rows have errors too
  const CalibrationResult r = calibrate_tsp(stories(), texts, s);
  ASSERT_EQ(r.rows.size(), 8u);  // rates outer, layers 0..3
  EXPECT_EQ(r.default_layer, 1);
  bool some_ineligible = false, some_error = false;
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const CalibrationRow& row = r.rows[i];
    EXPECT_DOUBLE_EQ(row.rate, i < 4 ? 0.2 : 0.4);
    EXPECT_EQ(row.layer, static_cast<int>(i % 4));
    EXPECT_EQ(row.eligible, row.predicted_speedup >= 1.3);
    some_ineligible |= !row.eligible;
    some_error |= row.error > 0;
    EXPECT_GE(row.error_max, row.error);
    // Dropping tokens later, or fewer of them, costs more FLOPs: the prediction falls.
    if (i % 4 > 0) {
      EXPECT_LT(row.predicted_speedup, r.rows[i - 1].predicted_speedup);
    }
    if (i >= 4) {
      EXPECT_LT(row.predicted_speedup, r.rows[i - 4].predicted_speedup);
    }
    if (row.eligible) {
      EXPECT_LE(r.choice().error, row.error) << "layer " << row.layer;
    }
  }
  EXPECT_TRUE(some_ineligible);  // the threshold did exclude something
  EXPECT_TRUE(some_error);       // TSP at rate 0.2 changes the hidden states
  ASSERT_GE(r.chosen, 0);
  EXPECT_TRUE(r.choice().eligible);
  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j["chosen"]["layer"], r.choice().layer);
  EXPECT_EQ(j["rows"].size(), 8u);
  const std::string table = format_calibration_table(r);
  EXPECT_NE(table.find("<- chosen"), std::string::npos) << table;
  EXPECT_NE(table.find("(default layer)"), std::string::npos) << table;
}

// The error column is Eq. 3 itself: recompute one row from two prefills.
TEST(Calibrate, ErrorIsTheRelativeSquaredDistanceOfTheLastWindow) {
  const auto texts = generated_calibration_texts(stories(), 448, 1, 3);
  CalibrateSettings s = settings({0.2}, 1.0);
  s.layers = {2};
  const CalibrationResult r = calibrate_tsp(stories(), texts, s);
  const CalibrationRow& row = r.rows.at(2);
  ASSERT_TRUE(row.measured);

  const int w = s.base.window;
  KVCache c1, c2;
  FullMethod full;
  const PrefillOutput ref = stories().prefill(texts[0].tokens, full, c1, {}, {}, w);
  FastKVConfig cfg;
  cfg.tsp_layer = 2;
  cfg.tsp_rate = 0.2;
  cfg.retain_rate = 0.1;
  cfg.validate(stories().config().n_layer);
  FastKVMethod fk(cfg);
  const PrefillOutput got = stories().prefill(texts[0].tokens, fk, c2, {}, {}, w);
  ASSERT_EQ(ref.final_hidden.size(), static_cast<size_t>(w * stories().config().d_model));
  ASSERT_EQ(got.final_hidden.size(), ref.final_hidden.size());
  EXPECT_LT(got.stats.propagated, static_cast<int>(texts[0].tokens.size()));  // TSP happened
  double num = 0, den = 0;
  for (size_t k = 0; k < ref.final_hidden.size(); ++k) {
    const double d = static_cast<double>(got.final_hidden[k]) - ref.final_hidden[k];
    num += d * d;
    den += static_cast<double>(ref.final_hidden[k]) * ref.final_hidden[k];
  }
  EXPECT_GT(num, 0);
  EXPECT_NEAR(row.error, num / den, 1e-12 + 1e-9 * num / den);
}

TEST(Calibrate, BadSettingsAreErrors) {
  const auto texts = generated_calibration_texts(stories(), 400, 1, 1);
  EXPECT_THROW(calibrate_tsp(stories(), texts, settings({0.0}, 1.5)), Error);
  EXPECT_THROW(calibrate_tsp(stories(), texts, settings({1.5}, 1.5)), Error);
  EXPECT_THROW(calibrate_tsp(stories(), texts, settings({}, 1.5)), Error);
  EXPECT_THROW(calibrate_tsp(stories(), texts, settings({0.2}, 0.0)), Error);
  EXPECT_THROW(calibrate_tsp(stories(), {}, settings({0.2}, 1.5)), Error);
  // Nothing is predicted to be 100x faster.
  EXPECT_THROW(calibrate_tsp(stories(), texts, settings({0.2}, 100.0)), Error);
  CalibrateSettings bad_layer = settings({0.2}, 1.5);
  bad_layer.layers = {4};  // L - 1: TSP after the last layer saves nothing
  EXPECT_THROW(calibrate_tsp(stories(), texts, bad_layer), Error);
  // A text too short for TSP: int(N × 0.2) must exceed the window of 8.
  std::vector<CalibrationText> short_text = {{"short", std::vector<int32_t>(40, 5)}};
  try {
    calibrate_tsp(stories(), short_text, settings({0.2}, 1.5));
    ADD_FAILURE() << "no error for a 40-token text";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("too short for TSP"), std::string::npos) << e.what();
  }
}

// A copy of the tiny random Gemma 3 of tests/golden/arch (6 layers, 16-token window) with
// attention.sliding_window_pattern = 3: layers 2 and 5 global, 0, 1, 3, 4 local.
std::string tiny_gemma3_pattern3() {
  const gguf::File src =
      gguf::File::open(std::string(FASTKV_SOURCE_DIR) + "/tests/golden/arch/tiny-gemma3.F16.gguf");
  gguf::Writer w;
  for (const auto& [key, value] : src.metadata()) w.set(key, value);
  w.set_u32("gemma3.attention.sliding_window_pattern", 3);
  for (const gguf::TensorInfo& t : src.tensors()) {
    w.add_raw(t.name, t.type, t.ne, std::vector<uint8_t>(t.data, t.data + t.nbytes));
  }
  const std::string path = test::temp_dir() + "/tiny-gemma3-pattern3.gguf";
  w.write(path);
  return path;
}

// On a hybrid model, requested TSP layers that map to the same global layer are one row,
// measured once: layers 0-2 give TSP at layer 2, layers 3-4 at layer 5 (the last layer: no
// layer runs fewer tokens, so no speedup, never chosen). The shared row's error is the one
// measured with TSP requested at its global layer directly.
TEST(Calibrate, HybridModelMeasuresEachEffectiveLayerOnce) {
  const std::unique_ptr<Model> m = Model::load(tiny_gemma3_pattern3());
  const ModelConfig& c = m->config();
  ASSERT_EQ(c.n_layer, 6);
  for (int l = 0; l < 6; ++l) ASSERT_EQ(c.layers[l].local(), l % 3 < 2) << l;
  EXPECT_EQ(effective_tsp_layer(c, 0), 2);
  EXPECT_EQ(effective_tsp_layer(c, 2), 2);
  EXPECT_EQ(effective_tsp_layer(c, 3), 5);
  EXPECT_EQ(effective_tsp_layer(stories().config(), 1), 1);  // no local layers: itself

  std::vector<CalibrationText> texts;
  for (int t = 0; t < 2; ++t) {
    std::vector<int32_t> tokens(200);
    for (int i = 0; i < 200; ++i) tokens[i] = 1 + (i * 37 + 11 * t + 5) % 500;
    texts.push_back({cat("text", t), tokens});
  }
  CalibrateSettings s = settings({0.2}, 1.05);
  int prefills = 0;
  const CalibrationResult r =
      calibrate_tsp(*m, texts, s, [&](int, int, const std::string&) { ++prefills; });
  ASSERT_EQ(r.rows.size(), 2u);
  EXPECT_EQ(r.rows[0].layer, 2);
  EXPECT_EQ(r.rows[0].requested, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(r.rows[1].layer, 5);
  EXPECT_EQ(r.rows[1].requested, (std::vector<int>{3, 4}));
  EXPECT_GT(r.rows[0].predicted_speedup, 1.05);
  EXPECT_NEAR(r.rows[1].predicted_speedup, 1.0, 1e-12);
  EXPECT_TRUE(r.rows[0].measured);
  EXPECT_FALSE(r.rows[1].measured);  // not eligible, and the default layer 2 maps to layer 2
  EXPECT_EQ(r.default_layer, 2);
  EXPECT_EQ(prefills, 2 * (1 + 1)) << "per text: the full model and layer 2, once";
  ASSERT_EQ(r.chosen, 0);
  EXPECT_GT(r.rows[0].error, 0);
  EXPECT_EQ(r.row_for(1, 0.2), &r.rows[0]);
  EXPECT_EQ(r.row_for(4, 0.2), &r.rows[1]);
  EXPECT_EQ(r.row_for(5, 0.2), nullptr);

  // Asking for layers 0 and 1 measures layer 2 once, with the same error as asking for 2.
  CalibrateSettings s01 = s, s2 = s;
  s01.layers = {0, 1};
  s2.layers = {2};
  prefills = 0;
  const CalibrationResult r01 =
      calibrate_tsp(*m, texts, s01, [&](int, int, const std::string&) { ++prefills; });
  EXPECT_EQ(prefills, 4);
  const CalibrationResult r2 = calibrate_tsp(*m, texts, s2);
  ASSERT_TRUE(r01.rows[0].measured);
  EXPECT_EQ(r01.rows[0].error, r2.rows[0].error);
  EXPECT_EQ(r01.rows[0].error, r.rows[0].error);

  const std::string table = format_calibration_table(r);
  EXPECT_NE(table.find("0-2"), std::string::npos) << table;
  EXPECT_NE(table.find("3-4"), std::string::npos) << table;
  EXPECT_NE(table.find("hybrid model"), std::string::npos) << table;
  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j["rows"][0]["requested_layers"], nlohmann::json({0, 1, 2}));
  // stories260K has no local layers: one requested layer per row, no hybrid note.
  EXPECT_EQ(format_calibration_table(calibrate_tsp(stories(),
                                                   generated_calibration_texts(stories(), 448, 1, 3),
                                                   settings({0.2}, 1.0)))
                .find("hybrid model"),
            std::string::npos);
}

}  // namespace
}  // namespace fastkv::eval
