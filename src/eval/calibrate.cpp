#include "eval/calibrate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cache/kv_cache.h"
#include "common/error.h"
#include "common/files.h"
#include "eval/ruler.h"

namespace fastkv::eval {

namespace {

// The tasks whose haystacks are generated without essay files.
const std::vector<std::string>& calibration_tasks() {
  static const std::vector<std::string> t = {"niah_single_1", "niah_multikey_2", "vt",
                                             "niah_multikey_3", "fwe"};
  return t;
}

std::vector<int32_t> encode_prompt(const Model& model, const std::string& text) {
  return model.require_tokenizer().encode(text, /*add_special=*/true, /*parse_special=*/false);
}

// argmax of one row of logits.
int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

struct Run {
  std::vector<float> hidden;  // [tail, D]
  int32_t next = 0;
};

Run run_once(const Model& model, const std::vector<int32_t>& tokens, CompressionMethod& method,
             int tail) {
  KVCache cache;
  PrefillOutput out = model.prefill(tokens, method, cache, {}, {}, tail);
  return {std::move(out.final_hidden), argmax(out.logits)};
}

}  // namespace

std::vector<CalibrationText> generated_calibration_texts(const Model& model, int ctx, int samples,
                                                         uint64_t seed) {
  if (ctx < 64) fail("calibration texts need at least 64 tokens, got --ctx ", ctx);
  if (samples < 1) fail("--samples must be >= 1, got ", samples);
  RulerGenerator gen("", seed);
  auto count = [&](const RulerExample& e) {
    return static_cast<int>(encode_prompt(model, e.input()).size());
  };
  // No tokens are generated here: the whole length goes to the prompt (generate() keeps room
  // for the task's answer, so that room is added).
  auto example = [&](const std::string& task, int index) {
    return gen.generate(task, ctx + ruler_max_new_tokens(task), index, count);
  };
  // The tasks whose example fits in ctx tokens (a small context or a tokenizer with short
  // tokens leaves out the long templates, e.g. vt's), with their first example.
  std::vector<std::pair<std::string, RulerExample>> tasks;
  for (const std::string& task : calibration_tasks()) {
    try {
      tasks.emplace_back(task, example(task, 0));
    } catch (const Error&) {
    }
  }
  if (tasks.empty()) {
    fail("no calibration task fits in ", ctx, " tokens; raise --ctx or give -f/--data texts");
  }
  std::vector<CalibrationText> out;
  for (int i = 0; i < samples; ++i) {
    const auto& [task, first] = tasks[i % tasks.size()];
    const int index = i / static_cast<int>(tasks.size());
    const std::string text = index == 0 ? first.input() : example(task, index).input();
    out.push_back({cat(task, "#", index), encode_prompt(model, text)});
  }
  return out;
}

std::vector<CalibrationText> file_calibration_texts(const Model& model,
                                                    const std::vector<std::string>& files,
                                                    int ctx) {
  if (ctx < 64) fail("calibration texts need at least 64 tokens, got --ctx ", ctx);
  std::vector<CalibrationText> out;
  for (const std::string& f : files) {
    const std::string text = read_file(f, "calibration text");
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
      fail(f, ": the calibration text is empty");
    }
    std::vector<int32_t> tokens = encode_prompt(model, text);
    if (static_cast<int>(tokens.size()) > ctx) tokens.resize(ctx);
    out.push_back({std::filesystem::path(f).filename().string(), std::move(tokens)});
  }
  return out;
}

int effective_tsp_layer(const ModelConfig& c, int layer) {
  for (int l = layer; l < c.n_layer; ++l) {
    if (!c.layers[l].local()) return l;
  }
  return -1;
}

const CalibrationRow* CalibrationResult::row_for(int requested_layer, double rate) const {
  for (const CalibrationRow& row : rows) {
    if (row.rate == rate && std::find(row.requested.begin(), row.requested.end(),
                                      requested_layer) != row.requested.end()) {
      return &row;
    }
  }
  return nullptr;
}

CalibrationResult calibrate_tsp(const Model& model, const std::vector<CalibrationText>& texts,
                                const CalibrateSettings& settings,
                                const CalibrateProgressFn& progress) {
  const int L = model.config().n_layer;
  if (L < 2) fail("calibration needs a model with at least 2 layers, this one has ", L);
  if (texts.empty()) fail("calibration needs at least one text");
  if (settings.rates.empty()) fail("calibration needs at least one --tsp-rate");
  for (double r : settings.rates) {
    if (!(r > 0 && r <= 1)) fail("--tsp-rate values must be in (0, 1], got ", r);
  }
  if (!(settings.min_speedup > 0)) fail("--min-speedup must be > 0, got ", settings.min_speedup);
  for (int l : settings.layers) {
    if (l < 0 || l > L - 2) fail("--layers: ", l, " is not in [0, ", L - 2, "] for this model");
  }
  const int w = settings.base.window;
  CalibrationResult res;
  FastKVConfig defaults;
  defaults.validate(L);  // resolves the default TSP layer
  res.default_layer = defaults.tsp_layer;
  int64_t total_tokens = 0;
  // TSP needs n > T >= w + 1 at the smallest rate.
  const double r_min = *std::min_element(settings.rates.begin(), settings.rates.end());
  for (const CalibrationText& t : texts) {
    FastKVConfig probe = settings.base;
    probe.tsp_rate = r_min;
    const int T = probe.tsp_target(static_cast<int>(t.tokens.size()));
    if (T < w + 1) {
      fail("calibration text '", t.name, "' has ", t.tokens.size(),
           " tokens: too short for TSP at rate ", r_min, " (needs int(N × rate) > window ", w,
           ")");
    }
    total_tokens += static_cast<int64_t>(t.tokens.size());
    res.texts.push_back(t.name);
  }
  res.mean_tokens = static_cast<int>(total_tokens / static_cast<int64_t>(texts.size()));

  // Every (rate, effective layer) with its predicted speedup; the candidates are marked
  // measured. Requested layers 0..L-2 that map to the same effective layer share its row.
  const double full_flops = model.full_prefill_flops(res.mean_tokens);
  for (double r : settings.rates) {
    FastKVConfig c = settings.base;
    c.tsp_rate = r;
    const int T = c.tsp_target(res.mean_tokens);
    const size_t first_row = res.rows.size();
    for (int l = 0; l <= L - 2; ++l) {
      const int e = effective_tsp_layer(model.config(), l);
      if (res.rows.size() > first_row && res.rows.back().layer == e) {
        res.rows.back().requested.push_back(l);  // effective layers ascend with l
        continue;
      }
      CalibrationRow row;
      row.layer = e;
      row.requested = {l};
      row.rate = r;
      std::vector<int> live(L, res.mean_tokens);
      if (e >= 0) {
        for (int i = e + 1; i < L; ++i) live[i] = T;
      }
      row.predicted_speedup = full_flops / model.prefill_flops(live);
      row.eligible = e >= 0 && row.predicted_speedup >= settings.min_speedup;
      res.rows.push_back(row);
    }
    for (size_t i = first_row; i < res.rows.size(); ++i) {
      CalibrationRow& row = res.rows[i];
      auto maps = [&](int l) {
        return std::find(row.requested.begin(), row.requested.end(), l) != row.requested.end();
      };
      // The default layer is always measured: the table shows what calibration gains. A row
      // where TSP never runs is the full model: nothing to measure.
      row.measured =
          row.layer >= 0 &&
          (settings.layers.empty()
               ? row.eligible || maps(res.default_layer)
               : std::any_of(settings.layers.begin(), settings.layers.end(), maps));
    }
  }
  const int candidates = static_cast<int>(
      std::count_if(res.rows.begin(), res.rows.end(), [](const CalibrationRow& r) {
        return r.measured;
      }));
  if (candidates == 0) {
    fail("no TSP layer is predicted to be ", settings.min_speedup,
         "x faster than the full prefill at rate(s) given; lower --min-speedup or --tsp-rate");
  }

  const int total = static_cast<int>(texts.size()) * (1 + candidates);
  int done = 0;
  std::vector<double> agree(res.rows.size(), 0.0);
  for (const CalibrationText& t : texts) {
    if (progress) progress(done, total, cat(t.name, ": full"));
    FullMethod full;
    const Run ref = run_once(model, t.tokens, full, w);
    ++done;
    double ref_norm = 0;
    for (float x : ref.hidden) ref_norm += static_cast<double>(x) * x;
    if (!(ref_norm > 0)) fail("calibration text '", t.name, "': the full model's hidden state is zero");
    for (size_t i = 0; i < res.rows.size(); ++i) {
      CalibrationRow& row = res.rows[i];
      if (!row.measured) continue;
      if (progress) progress(done, total, cat(t.name, ": layer ", row.layer, " rate ", row.rate));
      FastKVConfig c = settings.base;
      c.tsp_layer = row.layer;
      c.tsp_rate = row.rate;
      c.kv_budget = 0;
      c.tsp_len = 0;
      c.retain_rate = std::min(c.retain_rate, row.rate);
      c.validate(L);
      FastKVMethod method(c);
      const Run got = run_once(model, t.tokens, method, w);
      ++done;
      if (got.hidden.size() != ref.hidden.size()) {
        fail("calibration: layer ", row.layer, " did not keep the last ", w, " tokens");
      }
      double diff = 0;
      for (size_t k = 0; k < got.hidden.size(); ++k) {
        const double e = static_cast<double>(got.hidden[k]) - ref.hidden[k];
        diff += e * e;
      }
      const double err = diff / ref_norm;
      row.error += err / static_cast<double>(texts.size());
      row.error_max = std::max(row.error_max, err);
      agree[i] += got.next == ref.next ? 1.0 : 0.0;
    }
  }
  for (size_t i = 0; i < res.rows.size(); ++i) {
    CalibrationRow& row = res.rows[i];
    if (!row.measured) continue;
    row.next_token_agreement = agree[i] / static_cast<double>(texts.size());
    if (!row.eligible) continue;
    if (res.chosen < 0 || row.error < res.rows[res.chosen].error) res.chosen = static_cast<int>(i);
  }
  if (res.chosen < 0) {
    fail("none of the measured layers is predicted to be ", settings.min_speedup,
         "x faster than the full prefill; measure other --layers or lower --min-speedup");
  }
  return res;
}

nlohmann::json CalibrationResult::to_json() const {
  nlohmann::json j;
  j["default_layer"] = default_layer;
  j["mean_tokens"] = mean_tokens;
  j["texts"] = texts;
  nlohmann::json rows_j = nlohmann::json::array();
  for (const CalibrationRow& r : rows) {
    nlohmann::json o;
    o["layer"] = r.layer;
    o["requested_layers"] = r.requested;
    o["tsp_rate"] = r.rate;
    o["predicted_speedup"] = r.predicted_speedup;
    o["eligible"] = r.eligible;
    if (r.measured) {
      o["error"] = r.error;
      o["error_max"] = r.error_max;
      o["next_token_agreement"] = r.next_token_agreement;
    }
    rows_j.push_back(o);
  }
  j["rows"] = rows_j;
  if (chosen >= 0) {
    j["chosen"] = {{"layer", choice().layer}, {"tsp_rate", choice().rate}};
  }
  return j;
}

namespace {
// Ascending layers as ranges: {6, 7, 8, 9, 10, 11} -> "6-11", {0, 2, 3} -> "0,2-3".
std::string layer_ranges(const std::vector<int>& layers) {
  std::string out;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(layers[i]);
    if (j > i) out += "-" + std::to_string(layers[j]);
    i = j + 1;
  }
  return out;
}
}  // namespace

std::string format_calibration_table(const CalibrationResult& r) {
  std::string out =
      "layer  requested  tsp_rate  predicted speedup  error (Eq. 3)  worst text  next token\n";
  out += "---------------------------------------------------------------------------------------\n";
  char buf[256];
  const bool hybrid = std::any_of(r.rows.begin(), r.rows.end(), [](const CalibrationRow& row) {
    return row.requested.size() != 1 || row.requested[0] != row.layer;
  });
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const CalibrationRow& row = r.rows[i];
    std::string mark;
    if (static_cast<int>(i) == r.chosen) mark += "  <- chosen";
    if (std::find(row.requested.begin(), row.requested.end(), r.default_layer) !=
            row.requested.end() &&
        (r.chosen < 0 || row.rate == r.choice().rate)) {
      mark += "  (default layer)";
    }
    const std::string layer = row.layer >= 0 ? std::to_string(row.layer) : "none";
    const std::string requested = layer_ranges(row.requested);
    if (row.measured) {
      std::snprintf(buf, sizeof buf, "%5s  %9s  %8.3g  %16.2fx  %13.4g  %10.4g  %9.0f%%%s\n",
                    layer.c_str(), requested.c_str(), row.rate, row.predicted_speedup, row.error,
                    row.error_max, 100.0 * row.next_token_agreement, mark.c_str());
    } else {
      std::snprintf(buf, sizeof buf, "%5s  %9s  %8.3g  %16.2fx  %13s  %10s  %10s%s\n",
                    layer.c_str(), requested.c_str(), row.rate, row.predicted_speedup, "-", "-",
                    "-", mark.c_str());
    }
    out += buf;
  }
  if (hybrid) {
    out += "(a hybrid model: TSP requested after a local layer runs at the first global layer at "
           "or after it; each such layer is measured once, for the requested layers listed)\n";
  }
  return out;
}

}  // namespace fastkv::eval
