// The TSP calibration sidecar (runtime/tsp_calibration.h): where it lives, its sha256 check,
// corrupt files, and how it fills the FastKV options.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.h"
#include "runtime/tsp_calibration.h"
#include "test_util.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

// A fake model file plus a calibration that matches it.
struct Fixture {
  std::string dir = test::temp_dir();
  std::string model = dir + "/m.gguf";
  TspCalibration cal;
  Fixture() {
    write_file(model, "GGUF pretend model bytes");
    cal.model_file = "m.gguf";
    cal.sha256 = file_sha256(model);
    file_stamp(model, cal.file_size, cal.file_mtime);
    cal.n_layer = 30;
    cal.tsp_layer = 19;
    cal.tsp_rate = 0.25;
    cal.details = {{"note", "test"}};
  }
};

TEST(TspCalibration, PathReplacesTheGgufSuffix) {
  EXPECT_EQ(calibration_path("/a/b/model.gguf"), "/a/b/model.fastkv.json");
  EXPECT_EQ(calibration_path("model.GGUF"), "model.GGUF.fastkv.json");
  EXPECT_EQ(calibration_path("weights.bin"), "weights.bin.fastkv.json");
  EXPECT_EQ(calibration_path(".gguf"), ".gguf.fastkv.json");
}

TEST(TspCalibration, Sha256OfKnownInputs) {
  // FIPS 180-2 test vectors ("abc" and the empty message).
  const std::string dir = test::temp_dir();
  write_file(dir + "/abc", "abc");
  write_file(dir + "/empty", "");
  EXPECT_EQ(file_sha256(dir + "/abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(file_sha256(dir + "/empty"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Longer than the 1 MiB read buffer: a million 'a' (the FIPS long-message vector).
  write_file(dir + "/million", std::string(1000000, 'a'));
  EXPECT_EQ(file_sha256(dir + "/million"),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_THROW(file_sha256(dir + "/missing"), Error);
}

TEST(TspCalibration, SaveAndReadBack) {
  Fixture f;
  const std::string path = calibration_path(f.model);
  save_calibration(path, f.cal);
  const TspCalibration got = read_calibration(path);
  EXPECT_EQ(got.model_file, "m.gguf");
  EXPECT_EQ(got.sha256, f.cal.sha256);
  EXPECT_EQ(got.file_size, f.cal.file_size);
  EXPECT_EQ(got.file_mtime, f.cal.file_mtime);
  EXPECT_EQ(got.n_layer, 30);
  EXPECT_EQ(got.tsp_layer, 19);
  EXPECT_DOUBLE_EQ(got.tsp_rate, 0.25);
  EXPECT_EQ(got.details["note"], "test");
}

TEST(TspCalibration, CorruptFilesAreErrorsNamingTheProblem) {
  Fixture f;
  const std::string path = calibration_path(f.model);
  auto expect_corrupt = [&](const std::string& text, const std::string& needle) {
    write_file(path, text);
    try {
      (void)find_calibration(f.model, 30);
      ADD_FAILURE() << "no error for: " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  save_calibration(path, f.cal);
  nlohmann::json good = nlohmann::json::parse(std::ifstream(path));
  expect_corrupt("{ not json", "not JSON");
  expect_corrupt("[1, 2]", "not a JSON object");
  expect_corrupt("", "not JSON");
  for (const char* key : {"fastkv_calibration", "model_sha256", "n_layer", "tsp_layer", "tsp_rate",
                          "model_size", "model_mtime", "model_file"}) {
    nlohmann::json j = good;
    j.erase(key);
    expect_corrupt(j.dump(), std::string("no '") + key + "'");
  }
  nlohmann::json j = good;
  j["tsp_layer"] = "nineteen";
  expect_corrupt(j.dump(), "'tsp_layer' has the wrong type");
  for (const nlohmann::json& bad : {nlohmann::json(1e300), nlohmann::json(2.5),
                                    nlohmann::json(4294967296LL), nlohmann::json(true)}) {
    j = good;
    j["tsp_layer"] = bad;
    expect_corrupt(j.dump(), "'tsp_layer' has the wrong type");
  }
  j = good;
  j["tsp_rate"] = "0.2";
  expect_corrupt(j.dump(), "'tsp_rate' has the wrong type");
  j = good;
  j["tsp_layer"] = 30;
  expect_corrupt(j.dump(), "tsp_layer 30 is not in [0, 30)");
  j = good;
  j["tsp_rate"] = 0;
  expect_corrupt(j.dump(), "tsp_rate 0 is not in (0, 1]");
  j = good;
  j["model_sha256"] = "ABC";
  expect_corrupt(j.dump(), "64 lower-case hex digits");
  j = good;
  j["fastkv_calibration"] = 99;
  expect_corrupt(j.dump(), "version 99 is not supported");
}

TEST(TspCalibration, LookupAcceptsOnlyTheSameBytes) {
  Fixture f;
  // No sidecar: nothing, silently.
  CalibrationLookup none = find_calibration(f.model, 30);
  EXPECT_FALSE(none.cal.has_value());
  EXPECT_TRUE(none.warning.empty());

  save_calibration(calibration_path(f.model), f.cal);
  CalibrationLookup ok = find_calibration(f.model, 30);
  ASSERT_TRUE(ok.cal.has_value()) << ok.warning;
  EXPECT_EQ(ok.cal->tsp_layer, 19);

  // Same bytes, new write time (a copy, a touch): rehashed and still accepted.
  fs::last_write_time(f.model, fs::last_write_time(f.model) + std::chrono::hours(1));
  CalibrationLookup touched = find_calibration(f.model, 30);
  EXPECT_TRUE(touched.cal.has_value()) << touched.warning;

  // Other bytes of the same size: refused with a warning naming both hashes' starts.
  write_file(f.model, "GGUF pretend model BYTES");
  CalibrationLookup stale = find_calibration(f.model, 30);
  EXPECT_FALSE(stale.cal.has_value());
  EXPECT_NE(stale.warning.find("calibrated on other bytes"), std::string::npos) << stale.warning;
  EXPECT_NE(stale.warning.find(f.cal.sha256.substr(0, 12)), std::string::npos) << stale.warning;

  // Another depth: refused before any hashing.
  write_file(f.model, "GGUF pretend model bytes");
  CalibrationLookup depth = find_calibration(f.model, 24);
  EXPECT_FALSE(depth.cal.has_value());
  EXPECT_NE(depth.warning.find("30 layers"), std::string::npos) << depth.warning;
}

TEST(TspCalibration, FillsOnlyWhatIsNotGiven) {
  TspCalibration cal;
  cal.n_layer = 30;
  cal.tsp_layer = 19;
  cal.tsp_rate = 0.25;
  const std::optional<TspCalibration> c = cal;

  MethodOptions none;
  EXPECT_EQ(apply_calibration(c, "fastkv", none), TspLayerSource::kCalibrated);
  EXPECT_EQ(none.at("tsp_layer"), "19");
  EXPECT_EQ(none.at("tsp_rate"), "0.25");

  MethodOptions rate_given = {{"tsp_rate", "0.3"}};
  EXPECT_EQ(apply_calibration(c, "fastkv", rate_given), TspLayerSource::kCalibrated);
  EXPECT_EQ(rate_given.at("tsp_layer"), "19");
  EXPECT_EQ(rate_given.at("tsp_rate"), "0.3");

  MethodOptions layer_given = {{"tsp_layer", "none"}};
  EXPECT_EQ(apply_calibration(c, "fastkv", layer_given), TspLayerSource::kGiven);
  EXPECT_EQ(layer_given.at("tsp_layer"), "none");
  EXPECT_EQ(layer_given.count("tsp_rate"), 0u);

  MethodOptions other;
  EXPECT_EQ(apply_calibration(c, "snapkv", other), TspLayerSource::kNotFastKV);
  EXPECT_TRUE(other.empty());

  MethodOptions no_cal;
  EXPECT_EQ(apply_calibration(std::nullopt, "fastkv", no_cal), TspLayerSource::kDefault);
  EXPECT_TRUE(no_cal.empty());

  OptionValues typed;
  EXPECT_EQ(apply_calibration(c, "fastkv", typed), TspLayerSource::kCalibrated);
  EXPECT_EQ(std::get<int64_t>(typed.at("tsp_layer")), 19);
  EXPECT_DOUBLE_EQ(std::get<double>(typed.at("tsp_rate")), 0.25);
}

}  // namespace
}  // namespace fastkv
