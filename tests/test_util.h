// Helpers shared by the tests: where ../shared is, running the fastkv binary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fastkv::test {

// Absolute path of ../shared (or $FASTKV_SHARED when set). Tests that need it call
// require_shared() first, which fails the test loudly when the folder is missing.
std::string shared_dir();
std::string shared_path(const std::string& relative);

// The non-empty entries of a colon-separated list in environment variable `name` (none when
// it is unset).
std::vector<std::string> env_path_list(const char* name);

// Where the model file `name` is: ../shared/models/, then the directories of
// $FASTKV_MODEL_PATH, then models/ of the checkout. "" when none has it.
std::string find_model(const std::string& name);

// n values drawn uniformly from [lo, hi) by a std::mt19937 seeded with `seed` (the same
// values for the same arguments on every run).
std::vector<float> uniform(size_t n, uint32_t seed, float lo = -1, float hi = 1);

// Path of the built `fastkv` binary.
std::string fastkv_bin();

// A fresh, empty temporary directory; removed with its contents when the test process exits
// normally (not after a crash or _exit).
std::string temp_dir();

struct CommandResult {
  int exit_code = -1;  // the process's exit status; 128+signal if it died of a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// s in single quotes for a shell command line (embedded quotes escaped as '\'').
std::string shell_quote(const std::string& s);

// Runs `fastkv <args>` (args is appended verbatim to a shell command line; quote as needed).
CommandResult run_fastkv(const std::string& args);

// Runs an arbitrary shell command line.
CommandResult run_shell(const std::string& command);

// "exit N" and both output streams, for failure messages.
std::string describe(const CommandResult& r);

// Whether a line of the command's stderr starts with "error: " and contains `needle`.
bool has_error_line(const CommandResult& r, const std::string& needle);

// The command failed (non-zero exit), printed nothing on stdout, and one of its stderr lines
// starts with "error: " and contains `needle` (gtest failures otherwise).
void expect_error_line(const CommandResult& r, const std::string& needle);

}  // namespace fastkv::test
