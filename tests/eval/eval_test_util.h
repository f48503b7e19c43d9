// Helpers for the `fastkv eval` tests (tests/eval/test_eval_*.cpp).
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace fastkv::test {

inline std::string stories_model() {
  return shared_path("models/stories260K.gguf");
}


inline std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(read_all(path));
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(read_all(path));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

// The command failed with a line "error: ..." that contains `needle`.
inline void expect_eval_error(const CommandResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(has_error_line(r, needle))
      << "no 'error: ...' line containing '" << needle << "'\n" << describe(r);
}

}  // namespace fastkv::test
