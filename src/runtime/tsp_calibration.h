// The calibrated TSP layer of one model file, kept beside the GGUF as a small JSON sidecar
// (`model.gguf` -> `model.fastkv.json`) that `fastkv calibrate` writes and `run`, `serve`,
// `eval` and `bench` read. It records the sha256 of the GGUF it was measured on, so a sidecar
// left behind after the model file changed is refused (with a warning naming both hashes)
// instead of silently applying another model's choice.
//
// Precedence for the FastKV method: an explicit tsp_layer (flag, --methods entry, request
// field) > the calibrated layer > the default floor(L/2) - 1. The calibrated tsp_rate is
// applied the same way, when the option is not given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "method/options.h"

namespace fastkv {

inline constexpr int kTspCalibrationVersion = 1;

struct TspCalibration {
  std::string model_file;  // base name of the GGUF it was measured on
  std::string sha256;      // of the whole GGUF, lower-case hex
  int64_t file_size = 0;   // bytes, with file_mtime: skips rehashing an unchanged file
  int64_t file_mtime = 0;  // last write time (file clock ticks)
  int n_layer = 0;         // L of the model
  int tsp_layer = 0;       // the choice
  double tsp_rate = 0.2;   // the rate the choice was measured at
  nlohmann::json details;  // how it was measured: settings and the table (informational)
};

// Where the sidecar of `model_path` lives: the path with a trailing ".gguf" replaced by
// ".fastkv.json" (or ".fastkv.json" appended when there is no such suffix).
std::string calibration_path(const std::string& model_path);

// Lower-case hex SHA-256 of a file's bytes (OpenSSL EVP). Throws fastkv::Error when unreadable.
std::string file_sha256(const std::string& path);

// Size and last write time of a file, as stored in TspCalibration.
void file_stamp(const std::string& path, int64_t& size, int64_t& mtime);

// Writes `cal` as JSON to `path`; throws fastkv::Error when it cannot.
void save_calibration(const std::string& path, const TspCalibration& cal);

// Reads and checks a sidecar's fields (version, types, tsp_layer < n_layer); throws
// fastkv::Error naming the file and the field on a corrupt file.
TspCalibration read_calibration(const std::string& path);

// What looking for a model's sidecar found.
struct CalibrationLookup {
  std::string path;                   // where it was looked for
  std::optional<TspCalibration> cal;  // present, readable and for this very file
  std::string warning;                // non-empty when a sidecar exists but was refused
};

// Looks for the sidecar of `model_path` whose model has n_layer layers. No sidecar: nothing.
// A sidecar for other bytes (sha256 differs) or another depth: refused with a warning. A
// corrupt sidecar: fastkv::Error (a bad input must not be skipped silently). The hash is only
// recomputed when the file's size or write time differ from those recorded.
CalibrationLookup find_calibration(const std::string& model_path, int n_layer);

// Where a FastKV run's TSP layer came from.
enum class TspLayerSource { kNotFastKV, kGiven, kCalibrated, kDefault };
const char* tsp_layer_source_name(TspLayerSource s);  // "given", "calibrated", "default", ""

// Fills the calibrated tsp_layer and tsp_rate into a method's text options (command line,
// --methods entry) where they are not given; only for method "fastkv". Returns the source of
// the layer the method will use.
TspLayerSource apply_calibration(const std::optional<TspCalibration>& cal,
                                 const std::string& method, MethodOptions& options);
// The same for typed options (the server's JSON requests).
TspLayerSource apply_calibration(const std::optional<TspCalibration>& cal,
                                 const std::string& method, OptionValues& options);

}  // namespace fastkv
