#include "calibration_file.h"

#include <cstdio>

#include "common/error.h"
#include "method/fastkv.h"

namespace fastkv::cli {

std::optional<TspCalibration> load_calibration(const std::string& model_path, int n_layer) {
  CalibrationLookup found = find_calibration(model_path, n_layer);
  if (!found.warning.empty()) std::fprintf(stderr, "warning: %s\n", found.warning.c_str());
  return std::move(found.cal);
}

void apply_calibration_to_list(const std::optional<TspCalibration>& cal,
                               std::vector<MethodSpec>& specs, const MethodOptions& shared) {
  for (MethodSpec& s : specs) {
    // What the entry will run with: the shared flags fill in what it does not set itself.
    MethodOptions merged = shared;
    for (const auto& [k, v] : s.options) merged[k] = v;
    if (apply_calibration(cal, s.name, merged) != TspLayerSource::kCalibrated) continue;
    s.options["tsp_layer"] = merged["tsp_layer"];
    if (!shared.count("tsp_rate")) s.options["tsp_rate"] = merged["tsp_rate"];
  }
}

std::string describe_tsp_layer(const CompressionMethod& method, TspLayerSource source,
                               const ModelConfig* model) {
  const auto* f = dynamic_cast<const FastKVMethod*>(&method);
  if (f == nullptr || source == TspLayerSource::kNotFastKV) return "";
  const FastKVConfig& c = f->config();
  if (!c.tsp_enabled()) return cat("TSP off (", tsp_layer_source_name(source), ")");
  std::string where;
  if (model != nullptr && c.tsp_layer < model->n_layer && model->layers[c.tsp_layer].local()) {
    // FastKVMethod::on_layer defers TSP past local layers (docs/fastkv.md, "Hybrid models").
    int l = c.tsp_layer;
    while (l < model->n_layer && model->layers[l].local()) ++l;
    where = l < model->n_layer ? cat(" (local: TSP after global layer ", l, ")")
                               : std::string(" (local, and no global layer after it: no TSP)");
  }
  return cat("TSP layer ", c.tsp_layer, where, " at rate ", c.tsp_rate, " (",
             tsp_layer_source_name(source), ")");
}

}  // namespace fastkv::cli
