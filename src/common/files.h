// Reading whole files and listing a folder's files: what the evaluation tasks, calibration and
// the front end's input flags share.
#pragma once

#include <string>
#include <vector>

namespace fastkv {

// The bytes of `path`. Throws fastkv::Error "PATH: cannot read" (or "PATH: cannot read the
// WHAT" when `what` is given) when it cannot be opened or read.
std::string read_file(const std::string& path, const std::string& what = "");

// The regular files in `dir` whose extension is `ext` (".txt"), sorted by file name; empty when
// there are none or `dir` is not a folder (callers word that error themselves).
std::vector<std::string> files_with_extension(const std::string& dir, const std::string& ext);

}  // namespace fastkv
