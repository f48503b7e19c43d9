#include "common/files.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace fastkv {

std::string read_file(const std::string& path, const std::string& what) {
  const std::string why = what.empty() ? ": cannot read" : ": cannot read the " + what;
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, why);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, why);
  return ss.str();
}

std::vector<std::string> files_with_extension(const std::string& dir, const std::string& ext) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> files;
  if (!fs::is_directory(dir, ec)) return {};
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ext) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  std::vector<std::string> out;
  for (const fs::path& f : files) out.push_back(f.string());
  return out;
}

}  // namespace fastkv
