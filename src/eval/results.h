// Where evaluation results go: one JSONL file per task in the output folder, one record per
// (method, sample), appended and flushed as soon as the sample is scored, so an interrupted
// run loses at most the sample in progress and a rerun skips what is there.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace fastkv::eval {

class ResultStore {
 public:
  // Opens (creating the folder and file if needed) `path` and reads the records already there.
  // `setup` describes what the results depend on besides method and sample (model, prompt
  // format, ...): a record written with another setup makes this throw fastkv::Error naming
  // the difference, so results of different runs are never mixed. A truncated last line (an
  // interrupted write) is dropped.
  ResultStore(std::string path, nlohmann::json setup);

  bool done(const std::string& method, const std::string& sample_id) const;
  // Appends one record (must have "method" and "id"); adds "setup". Throws on write errors.
  void append(nlohmann::json record);
  const std::vector<nlohmann::json>& records() const { return records_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  nlohmann::json setup_;
  std::vector<nlohmann::json> records_;
  std::set<std::pair<std::string, std::string>> done_;
};

// A plain-text table: the first row is the header; columns are padded to their widest cell,
// the first column left-aligned and the others right-aligned.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// "12.3" (one decimal), "-" for NaN.
std::string fmt1(double v);
// Mean of the values, NaN when empty.
double mean(const std::vector<double>& v);

// Writes a text file (whole), throwing fastkv::Error naming the file on failure.
void write_file(const std::string& path, const std::string& content);

}  // namespace fastkv::eval
