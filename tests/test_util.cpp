#include "test_util.h"

#include <gtest/gtest.h>
#include <sstream>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

namespace fastkv::test {
namespace fs = std::filesystem;

std::string shared_dir() {
  if (const char* env = std::getenv("FASTKV_SHARED"); env && *env) return env;
  return FASTKV_SHARED_DEFAULT;
}

std::string shared_path(const std::string& relative) { return shared_dir() + "/" + relative; }

std::vector<std::string> env_path_list(const char* name) {
  std::vector<std::string> out;
  const char* env = std::getenv(name);
  if (!env) return out;
  std::stringstream ss(env);
  std::string item;
  while (std::getline(ss, item, ':')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string find_model(const std::string& name) {
  std::vector<std::string> dirs = {shared_path("models")};
  for (const std::string& d : env_path_list("FASTKV_MODEL_PATH")) dirs.push_back(d);
  dirs.push_back(std::string(FASTKV_SOURCE_DIR) + "/models");
  for (const std::string& d : dirs) {
    const fs::path p = fs::path(d) / name;
    if (fs::exists(p)) return p.string();
  }
  return "";
}

std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

std::string fastkv_bin() { return FASTKV_BIN; }

namespace {
// The directories temp_dir() made in this process, removed (with what they hold) when it exits
// normally, so that test runs do not leave /tmp/fastkv-test-* behind.
struct TempDirs {
  std::mutex mu;
  std::vector<std::string> made;
  ~TempDirs() {
    for (const std::string& d : made) {
      std::error_code ec;  // best effort: a failure here must not fail the test run
      fs::remove_all(d, ec);
    }
  }
};
TempDirs& temp_dirs() {
  static TempDirs dirs;
  return dirs;
}
}  // namespace

std::string temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "fastkv-test-XXXXXX").string();
  char* made = mkdtemp(tmpl.data());
  if (!made) return std::string();
  TempDirs& dirs = temp_dirs();
  std::lock_guard<std::mutex> lock(dirs.mu);
  dirs.made.emplace_back(made);
  return dirs.made.back();
}

static std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult run_shell(const std::string& command) {
  std::string dir = temp_dir();
  std::string out = dir + "/out", err = dir + "/err";
  std::string full = "(" + command + ") >" + out + " 2>" + err + " </dev/null";
  int status = std::system(full.c_str());
  CommandResult r;
  if (status != -1 && WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (status != -1 && WIFSIGNALED(status)) {
    r.exit_code = 128 + WTERMSIG(status);
  }
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove_all(dir);
  return r;
}

CommandResult run_fastkv(const std::string& args) {
  return run_shell("'" + fastkv_bin() + "' " + args);
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout ---\n" + r.out +
         "\n--- stderr ---\n" + r.err;
}

bool has_error_line(const CommandResult& r, const std::string& needle) {
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("error: ", 0) == 0 && line.find(needle) != std::string::npos) return true;
  }
  return false;
}

void expect_error_line(const CommandResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(has_error_line(r, needle))
      << "no 'error: ...' line containing '" << needle << "'\n" << describe(r);
  EXPECT_EQ(r.out, "") << "an error must not print text on stdout";
}

}  // namespace fastkv::test
