// The front ends' side of the TSP calibration sidecar (runtime/tsp_calibration.h): find it next
// to the model, print why one was refused, and hand the FastKV options its layer.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "method/method_list.h"
#include "model/config.h"
#include "runtime/tsp_calibration.h"

namespace fastkv::cli {

// The model's calibration, or nullopt (none, or refused: the reason goes to stderr as a
// warning). A corrupt sidecar throws fastkv::Error.
std::optional<TspCalibration> load_calibration(const std::string& model_path, int n_layer);

// For `--methods` lists (before resolve_methods): every fastkv entry whose tsp_layer is given
// neither by itself nor by the shared flags gets the calibrated layer, and its rate unless one
// is given; as in `run`, an entry with its own layer is left alone.
void apply_calibration_to_list(const std::optional<TspCalibration>& cal,
                               std::vector<MethodSpec>& specs, const MethodOptions& shared);

// "TSP layer 19 (calibrated)", "TSP layer 14 (default)", "TSP off (given)"; "" when the method
// is not fastkv. With the model's config, a local (sliding-window) TSP layer also names the
// global layer TSP runs after: "TSP layer 8 (local: TSP after global layer 11) ...".
std::string describe_tsp_layer(const CompressionMethod& method, TspLayerSource source,
                               const ModelConfig* model = nullptr);

}  // namespace fastkv::cli
