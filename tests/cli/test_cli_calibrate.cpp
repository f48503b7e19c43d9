// `fastkv calibrate` end to end (tools/fastkv/cmd_calibrate.cpp): it measures, prints the table
// with its choice, saves MODEL.fastkv.json beside the model, and `run`/`bench` then use that TSP
// layer unless told otherwise; stale and corrupt sidecars and bad flags are handled clearly.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/tsp_calibration.h"
#include "test_util.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;

using test::CommandResult;
using test::run_fastkv;
using test::shell_quote;

using test::describe;

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// Usage and input errors: exit 1, one "error: ..." line naming the problem, nothing on stdout.
void expect_error(const CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  test::expect_error_line(r, needle);
}

// One calibration of a private copy of stories260K (5 layers), shared by the tests: the copy
// gets the sidecar, ../shared stays untouched.
class CliCalibrate : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(test::temp_dir());
    model_ = new std::string(*dir_ + "/stories.gguf");
    fs::copy_file(test::shared_path("models/stories260K.gguf"), *model_);
    calibrate_ = new CommandResult(run_fastkv(
        "calibrate -m " + shell_quote(*model_) + " --ctx 448 --samples 2 --layers 0,1,2,3 -t 2"));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete calibrate_;
    delete model_;
    delete dir_;
  }
  static std::string sidecar() { return *dir_ + "/stories.fastkv.json"; }
  // The layer the table chose (from "chosen: TSP layer N at rate R").
  static int chosen_layer() {
    std::smatch m;
    const std::regex re("chosen: TSP layer ([0-9]+) at rate 0.2");
    if (!std::regex_search(calibrate_->out, m, re)) return -1;
    return std::stoi(m[1]);
  }
  std::string run_story(const std::string& extra) {
    return "run -m " + shell_quote(*model_) + " -p 'Once upon a time' -n 4 --temp 0 " + extra;
  }

  static std::string* dir_;
  static std::string* model_;
  static CommandResult* calibrate_;
};
std::string* CliCalibrate::dir_ = nullptr;
std::string* CliCalibrate::model_ = nullptr;
CommandResult* CliCalibrate::calibrate_ = nullptr;

TEST_F(CliCalibrate, PrintsTheTableAndSavesTheChoiceBesideTheModel) {
  ASSERT_EQ(calibrate_->exit_code, 0) << describe(*calibrate_);
  const std::string& out = calibrate_->out;
  EXPECT_TRUE(contains(out, "predicted speedup")) << out;
  EXPECT_TRUE(contains(out, "<- chosen")) << out;
  const int layer = chosen_layer();
  ASSERT_GE(layer, 0) << out;
  ASSERT_LE(layer, 3) << out;
  // The table has one row per layer 0..3 (rate 0.2), each measured; no local layers, so each
  // row's requested layer is the layer itself.
  for (int l = 0; l <= 3; ++l) {
    const std::string n = std::to_string(l);
    EXPECT_TRUE(std::regex_search(out, std::regex("\\n *" + n + "  +" + n + "  +0\\.2  ")))
        << "row of layer " << l << "\n" << out;
  }
  ASSERT_TRUE(fs::exists(sidecar())) << describe(*calibrate_);
  const TspCalibration cal = read_calibration(sidecar());
  EXPECT_EQ(cal.tsp_layer, layer);
  EXPECT_DOUBLE_EQ(cal.tsp_rate, 0.2);
  EXPECT_EQ(cal.n_layer, 5);
  EXPECT_EQ(cal.model_file, "stories.gguf");
  EXPECT_EQ(cal.sha256, file_sha256(*model_));
  EXPECT_EQ(cal.details["rows"].size(), 4u);
  EXPECT_EQ(cal.details["texts"].size(), 2u);
  EXPECT_EQ(cal.details["source"], "generated");
  EXPECT_TRUE(contains(out, "saved to " + sidecar())) << out;
}

TEST_F(CliCalibrate, RunUsesTheCalibratedLayerUnlessOneIsGiven) {
  ASSERT_EQ(calibrate_->exit_code, 0) << describe(*calibrate_);
  const int layer = chosen_layer();
  const std::string json = *dir_ + "/run.json";
  CommandResult r = run_fastkv(run_story("--method fastkv --json " + shell_quote(json)));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "method: fastkv, TSP layer " + std::to_string(layer) +
                                  " at rate 0.2 (calibrated)"))
      << r.err;
  nlohmann::json j = nlohmann::json::parse(std::ifstream(json));
  EXPECT_EQ(j["tsp_layer_source"], "calibrated");
  EXPECT_EQ(j["options"]["tsp_layer"], std::to_string(layer));

  const int other = layer == 0 ? 2 : 0;
  r = run_fastkv(run_story("--method fastkv --tsp-layer " + std::to_string(other)));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "TSP layer " + std::to_string(other) + " at rate 0.2 (given)"))
      << r.err;
  r = run_fastkv(run_story("--method fastkv --tsp-layer none"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "TSP off (given)")) << r.err;
  r = run_fastkv(run_story("--method snapkv"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_FALSE(contains(r.err, "TSP")) << r.err;

  // bench's method list: a fastkv entry without its own layer runs the calibrated one.
  const std::string bj = *dir_ + "/bench.json";
  r = run_fastkv("bench -m " + shell_quote(*model_) +
                 " -p 128 -n 2 -r 1 --warmup 0 --gemm-rows 64 --bandwidth-mib 16 "
                 "--methods full,fastkv,fastkv:tsp_layer=none --json " +
                 shell_quote(bj));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  nlohmann::json rows = nlohmann::json::parse(std::ifstream(bj));
  std::vector<std::string> methods;
  for (const auto& row : rows) methods.push_back(row["method"]);
  EXPECT_NE(std::find(methods.begin(), methods.end(),
                      "fastkv:tsp_layer=" + std::to_string(layer) + ":tsp_rate=0.2"),
            methods.end())
      << rows.dump(1);
  EXPECT_NE(std::find(methods.begin(), methods.end(), "fastkv:tsp_layer=none"), methods.end())
      << rows.dump(1);
}

TEST_F(CliCalibrate, StaleAndCorruptSidecars) {
  ASSERT_EQ(calibrate_->exit_code, 0) << describe(*calibrate_);
  // Another file with the same name and depth (one weight byte changed): refused, default used.
  const std::string dir = test::temp_dir();
  const std::string model = dir + "/stories.gguf";
  fs::copy_file(*model_, model);
  fs::copy_file(sidecar(), dir + "/stories.fastkv.json");
  {
    std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-3, std::ios::end);
    char c = 0;
    f.get(c);
    f.seekp(-3, std::ios::end);
    f.put(static_cast<char>(c ^ 0x01));
  }
  CommandResult r = run_fastkv("run -m " + shell_quote(model) +
                               " -p 'Once upon a time' -n 2 --method fastkv");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.err, "warning: ignoring " + dir + "/stories.fastkv.json: it was "
                              "calibrated on other bytes"))
      << r.err;
  EXPECT_TRUE(contains(r.err, "TSP layer 1 at rate 0.2 (default)")) << r.err;

  // A corrupt sidecar is an error, not skipped.
  std::ofstream(dir + "/stories.fastkv.json") << "{\"fastkv_calibration\": 1, \"tsp_layer\": ";
  r = run_fastkv("run -m " + shell_quote(model) + " -p 'Once upon a time' -n 2 --method fastkv");
  expect_error(r, "corrupt calibration file");
  fs::remove_all(dir);
}

TEST_F(CliCalibrate, DryRunSavesNothingAndFilesAreTexts) {
  const std::string dir = test::temp_dir();
  const std::string model = dir + "/m.gguf";
  fs::copy_file(test::shared_path("models/stories260K.gguf"), model);
  std::string story;
  for (int i = 0; i < 40; ++i) story += "Once upon a time there was a little dog named Max. ";
  std::ofstream(dir + "/a.txt") << story;
  CommandResult r = run_fastkv("calibrate -m " + shell_quote(model) + " -f " +
                               shell_quote(dir + "/a.txt") + " --ctx 300 --dry-run");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "not saved (--dry-run)")) << r.out;
  EXPECT_FALSE(fs::exists(dir + "/m.fastkv.json"));
  // --out writes elsewhere; --data reads a folder's *.txt.
  fs::create_directory(dir + "/texts");
  std::ofstream(dir + "/texts/b.txt") << story;
  r = run_fastkv("calibrate -m " + shell_quote(model) + " --data " + shell_quote(dir + "/texts") +
                 " --ctx 300 --out " + shell_quote(dir + "/cal.json"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_FALSE(fs::exists(dir + "/m.fastkv.json"));
  const TspCalibration cal = read_calibration(dir + "/cal.json");
  EXPECT_EQ(cal.details["texts"], nlohmann::json::array({"b.txt"}));
  EXPECT_EQ(cal.details["source"], "files");
  fs::remove_all(dir);
}

TEST_F(CliCalibrate, BadFlagsAreErrors) {
  const std::string m = "calibrate -m " + shell_quote(test::shared_path("models/stories260K.gguf")) +
                        " --dry-run ";
  expect_error(run_fastkv(m + "--tsp-rate 0"), "--tsp-rate");
  expect_error(run_fastkv(m + "--tsp-rate abc"), "--tsp-rate");
  expect_error(run_fastkv(m + "--tsp-rate 0.2,1.5"), "--tsp-rate");
  expect_error(run_fastkv(m + "--layers 9"), "--layers");
  expect_error(run_fastkv(m + "--layers x"), "--layers");
  expect_error(run_fastkv(m + "--min-speedup 0"), "--min-speedup");
  expect_error(run_fastkv(m + "--min-speedup 1000"), "predicted");
  expect_error(run_fastkv(m + "--ctx 10"), "at least 64 tokens");
  expect_error(run_fastkv(m + "--ctx 100000"), "exceeds the model's context");
  expect_error(run_fastkv(m + "--samples -1"), "--samples");
  expect_error(run_fastkv(m + "--data /nonexistent-folder"), "--data");
  expect_error(run_fastkv(m + "-f /nonexistent-file.txt"), "nonexistent-file.txt");
  expect_error(run_fastkv("calibrate -m /nonexistent.gguf"), "nonexistent.gguf");
}

}  // namespace
}  // namespace fastkv
