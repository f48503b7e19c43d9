#include "test_util.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fastkv::test {
namespace fs = std::filesystem;

std::string shared_dir() {
  if (const char* env = std::getenv("FASTKV_SHARED"); env && *env) return env;
  return FASTKV_SHARED_DEFAULT;
}

std::string shared_path(const std::string& relative) { return shared_dir() + "/" + relative; }

std::string fastkv_bin() { return FASTKV_BIN; }

std::string temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "fastkv-test-XXXXXX").string();
  char* made = mkdtemp(tmpl.data());
  return made ? std::string(made) : std::string();
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

}  // namespace fastkv::test
