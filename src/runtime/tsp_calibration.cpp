#include "runtime/tsp_calibration.h"

#include <openssl/evp.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <type_traits>
#include <memory>
#include <vector>

#include "common/error.h"

namespace fastkv {

namespace fs = std::filesystem;

std::string calibration_path(const std::string& model_path) {
  const std::string suffix = ".gguf";
  if (model_path.size() > suffix.size() &&
      model_path.compare(model_path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return model_path.substr(0, model_path.size() - suffix.size()) + ".fastkv.json";
  }
  return model_path + ".fastkv.json";
}

std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open to compute its sha256");
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    fail("sha256: OpenSSL could not start a digest");
  }
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize got = in.gcount();
    if (got > 0 && EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(got)) != 1) {
      fail("sha256: OpenSSL digest update failed");
    }
  }
  if (in.bad()) fail(path, ": read error while computing its sha256");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) fail("sha256: OpenSSL digest failed");
  std::string hex;
  char two[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(two, sizeof two, "%02x", md[i]);
    hex += two;
  }
  return hex;
}

void file_stamp(const std::string& path, int64_t& size, int64_t& mtime) {
  std::error_code ec;
  const auto sz = fs::file_size(path, ec);
  if (ec) fail(path, ": ", ec.message());
  const auto t = fs::last_write_time(path, ec);
  if (ec) fail(path, ": ", ec.message());
  size = static_cast<int64_t>(sz);
  mtime = static_cast<int64_t>(t.time_since_epoch().count());
}

void save_calibration(const std::string& path, const TspCalibration& cal) {
  nlohmann::json j;
  j["fastkv_calibration"] = kTspCalibrationVersion;
  j["model_file"] = cal.model_file;
  j["model_sha256"] = cal.sha256;
  j["model_size"] = cal.file_size;
  j["model_mtime"] = cal.file_mtime;
  j["n_layer"] = cal.n_layer;
  j["tsp_layer"] = cal.tsp_layer;
  j["tsp_rate"] = cal.tsp_rate;
  j["details"] = cal.details;
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  out.close();
  if (!out) fail(path, ": cannot write the calibration file");
}

namespace {

// A field of the expected JSON type: integers must be JSON integers that fit T (a float such as
// 1e300 is refused, never converted), numbers any JSON number, strings strings.
template <typename T>
T field(const nlohmann::json& j, const char* key, const std::string& path) {
  if (!j.contains(key)) fail(path, ": corrupt calibration file: no '", key, "'");
  const nlohmann::json& v = j.at(key);
  auto wrong = [&]() { fail(path, ": corrupt calibration file: '", key, "' has the wrong type"); };
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) wrong();
    return v.get<std::string>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) wrong();
    return v.get<T>();
  } else {
    if (!v.is_number_integer()) wrong();
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) wrong();
      return static_cast<T>(u);
    }
    const int64_t i = v.get<int64_t>();
    if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max()) wrong();
    return static_cast<T>(i);
  }
}

}  // namespace

TspCalibration read_calibration(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot read the calibration file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": corrupt calibration file (not JSON: ", e.what(),
         "); run `fastkv calibrate` again or delete it");
  }
  if (!j.is_object()) fail(path, ": corrupt calibration file: not a JSON object");
  const int version = field<int>(j, "fastkv_calibration", path);
  if (version != kTspCalibrationVersion) {
    fail(path, ": calibration file version ", version, " is not supported (this fastkv reads ",
         kTspCalibrationVersion, "); run `fastkv calibrate` again");
  }
  TspCalibration c;
  c.model_file = field<std::string>(j, "model_file", path);
  c.sha256 = field<std::string>(j, "model_sha256", path);
  c.file_size = field<int64_t>(j, "model_size", path);
  c.file_mtime = field<int64_t>(j, "model_mtime", path);
  c.n_layer = field<int>(j, "n_layer", path);
  c.tsp_layer = field<int>(j, "tsp_layer", path);
  c.tsp_rate = field<double>(j, "tsp_rate", path);
  if (c.sha256.size() != 64 || c.sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
    fail(path, ": corrupt calibration file: model_sha256 is not 64 lower-case hex digits");
  }
  if (c.n_layer < 1) fail(path, ": corrupt calibration file: n_layer ", c.n_layer, " < 1");
  if (c.tsp_layer < 0 || c.tsp_layer >= c.n_layer) {
    fail(path, ": corrupt calibration file: tsp_layer ", c.tsp_layer, " is not in [0, ",
         c.n_layer, ")");
  }
  if (!(c.tsp_rate > 0 && c.tsp_rate <= 1)) {
    fail(path, ": corrupt calibration file: tsp_rate ", c.tsp_rate, " is not in (0, 1]");
  }
  if (j.contains("details")) c.details = j["details"];
  return c;
}

CalibrationLookup find_calibration(const std::string& model_path, int n_layer) {
  CalibrationLookup r;
  r.path = calibration_path(model_path);
  std::error_code ec;
  if (!fs::exists(r.path, ec)) return r;
  TspCalibration c = read_calibration(r.path);
  if (c.n_layer != n_layer) {
    r.warning = cat("ignoring ", r.path, ": it was calibrated for a model with ", c.n_layer,
                    " layers, this one has ", n_layer, "; run `fastkv calibrate` again");
    return r;
  }
  int64_t size = 0, mtime = 0;
  file_stamp(model_path, size, mtime);
  if (size != c.file_size || mtime != c.file_mtime) {
    const std::string sha = file_sha256(model_path);
    if (sha != c.sha256) {
      r.warning = cat("ignoring ", r.path, ": it was calibrated on other bytes (sha256 ",
                      c.sha256.substr(0, 12), "..., this file ", sha.substr(0, 12),
                      "...); run `fastkv calibrate` again or delete it");
      return r;
    }
  }
  r.cal = std::move(c);
  return r;
}

const char* tsp_layer_source_name(TspLayerSource s) {
  switch (s) {
    case TspLayerSource::kGiven:
      return "given";
    case TspLayerSource::kCalibrated:
      return "calibrated";
    case TspLayerSource::kDefault:
      return "default";
    case TspLayerSource::kNotFastKV:
      break;
  }
  return "";
}

namespace {

template <typename Options, typename MakeInt, typename MakeNumber>
TspLayerSource apply(const std::optional<TspCalibration>& cal, const std::string& method,
                     Options& options, MakeInt make_int, MakeNumber make_number) {
  if (method != "fastkv") return TspLayerSource::kNotFastKV;
  if (options.count("tsp_layer")) return TspLayerSource::kGiven;
  if (!cal) return TspLayerSource::kDefault;
  options["tsp_layer"] = make_int(cal->tsp_layer);
  if (!options.count("tsp_rate")) options["tsp_rate"] = make_number(cal->tsp_rate);
  return TspLayerSource::kCalibrated;
}

}  // namespace

TspLayerSource apply_calibration(const std::optional<TspCalibration>& cal,
                                 const std::string& method, MethodOptions& options) {
  return apply(
      cal, method, options, [](int v) { return std::to_string(v); },
      [](double v) { return cat(v); });
}

TspLayerSource apply_calibration(const std::optional<TspCalibration>& cal,
                                 const std::string& method, OptionValues& options) {
  return apply(
      cal, method, options, [](int v) { return OptionValue{int64_t{v}}; },
      [](double v) { return OptionValue{v}; });
}

}  // namespace fastkv
