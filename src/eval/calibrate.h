// TSP-layer calibration, the FastKV paper's Eq. 3: over calibration texts, the TSP layer ℓ whose
// model (all tokens through layers 0..ℓ, then only the propagated ones) ends in final hidden
// states closest to the full model's, among the layers cheap enough to be worth it.
//
// What is measured, exactly (docs/fastkv.md, "Calibrating the TSP layer"):
//   error(ℓ, r) = mean over texts of  Σ_t ||h_full(t) − h_tsp(t)||² / Σ_t ||h_full(t)||²
// over the last `window` prompt tokens t (the FastKV window: always propagated, so both runs
// have them), h = the final hidden state after the output norm (what the LM head reads; before
// the norm the residual stream's scale grows with depth and a few channels dominate it). The
// ratio makes errors comparable across models. Beside it: the share of texts whose next token
// (argmax of the last position's logits) equals the full model's.
//
// Predicted speedup of (ℓ, r): the FLOP model of `fastkv bench` (Model::prefill_flops), full
// prefill over a prefill whose layers after ℓ run T = int(N × r) tokens.
// Choice: the lowest error among measured candidates with predicted speedup ≥ min_speedup.
//
// KV compression does not change a prefill's hidden states (each layer attends over all its live
// tokens before the cache is cut), so only the TSP layer and rate matter here.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "method/fastkv.h"
#include "model/model.h"

namespace fastkv::eval {

struct CalibrationText {
  std::string name;             // where it came from ("niah_single_1#0", a file name)
  std::vector<int32_t> tokens;  // as run (BOS included where the tokenizer adds one)
};

// The default calibration set: `samples` RULER-style texts of `ctx` tokens (a needle task's
// haystack and question, cycling through niah_single_1, niah_multikey_2, vt, niah_multikey_3,
// fwe: the tasks that need no essay files; those whose smallest example does not fit in ctx
// are left out), generated deterministically from `seed`. Throws when none fits.
std::vector<CalibrationText> generated_calibration_texts(const Model& model, int ctx, int samples,
                                                         uint64_t seed);

// Calibration texts from files: each file's text tokenised, cut to its first `ctx` tokens.
// Throws fastkv::Error for an unreadable or empty file.
std::vector<CalibrationText> file_calibration_texts(const Model& model,
                                                    const std::vector<std::string>& files, int ctx);

struct CalibrateSettings {
  std::vector<double> rates = {0.2};  // TSP rates to try
  double min_speedup = 1.5;           // S: choices must be predicted at least this much faster
  // Candidate layers to measure; empty = every layer 0..L-2 whose predicted speedup ≥ S, and
  // the default layer floor(L/2) - 1 (for comparison; chosen only when it reaches S).
  std::vector<int> layers;
  FastKVConfig base;  // window, kernel and pool of the FastKV method (retain_rate is irrelevant)
};

// On a hybrid model (Gemma 3) TSP runs at the first global layer at or after the requested
// one (docs/fastkv.md, "Hybrid models"), so several requested layers give the same model: each
// distinct effective layer is one row, measured once, with the requested layers that map to it.
// On a model without local layers every row has one requested layer, itself.
struct CalibrationRow {
  int layer = 0;               // where TSP runs (the effective layer); -1: no global layer at or
                               // after the requested ones, so TSP never runs
  std::vector<int> requested;  // the layers 0..L-2 that map to `layer`, ascending
  double rate = 0;
  double predicted_speedup = 0;  // full prefill FLOPs / this choice's, at the texts' mean length
  bool eligible = false;         // predicted_speedup ≥ min_speedup
  bool measured = false;         // the error below was measured (a candidate)
  double error = 0;              // Eq. 3, mean over the texts
  double error_max = 0;          // the worst text's
  double next_token_agreement = 0;  // share of texts whose next token equals full's
};

struct CalibrationResult {
  std::vector<CalibrationRow> rows;  // every (rate, effective layer of 0..L-2), rates outer
  int chosen = -1;                   // index into rows
  int default_layer = 0;             // floor(L/2) - 1, for comparison
  int mean_tokens = 0;               // mean text length
  std::vector<std::string> texts;    // their names
  const CalibrationRow& choice() const { return rows.at(static_cast<size_t>(chosen)); }
  // The row of (requested layer, rate), or nullptr.
  const CalibrationRow* row_for(int requested_layer, double rate) const;
  nlohmann::json to_json() const;
};

// Called before each prefill: (done, total, what runs next).
using CalibrateProgressFn = std::function<void(int, int, const std::string&)>;

// Where TSP requested after `layer` runs on this model: the first global layer at or after it
// (the layer itself on a model without local layers), or -1 when none follows.
int effective_tsp_layer(const ModelConfig& c, int layer);

// Runs the full model once per text and FastKV once per text and candidate; throws
// fastkv::Error when no text is long enough for TSP, when no measured candidate reaches
// min_speedup, or for a bad setting (rate outside (0, 1], layer outside [0, L-2]).
CalibrationResult calibrate_tsp(const Model& model, const std::vector<CalibrationText>& texts,
                                const CalibrateSettings& settings,
                                const CalibrateProgressFn& progress = {});

// The table `fastkv calibrate` prints: layer, the requested layers that map to it, rate,
// predicted speedup, error, next-token agreement, the choice and the default marked.
std::string format_calibration_table(const CalibrationResult& r);

}  // namespace fastkv::eval
