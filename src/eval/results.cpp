#include "eval/results.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace fastkv::eval {
namespace fs = std::filesystem;

ResultStore::ResultStore(std::string path, nlohmann::json setup)
    : path_(std::move(path)), setup_(std::move(setup)) {
  const fs::path p(path_);
  std::error_code ec;
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  if (ec) fail(p.parent_path().string(), ": cannot create the folder: ", ec.message());
  std::ifstream in(path_, std::ios::binary);
  if (!in) return;  // a new file
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream lines(content);
  std::string line;
  int lineno = 0;
  const bool ends_with_newline = !content.empty() && content.back() == '\n';
  size_t total_lines = 0;
  for (char c : content) total_lines += c == '\n';
  if (!ends_with_newline && !content.empty()) ++total_lines;
  while (std::getline(lines, line)) {
    ++lineno;
    if (line.empty()) continue;
    nlohmann::json rec = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (rec.is_discarded() || !rec.is_object()) {
      // Only the last line may be a partial write of an interrupted run.
      if (static_cast<size_t>(lineno) == total_lines && !ends_with_newline) break;
      fail(path_, ":", lineno, ": not a JSON record");
    }
    if (!rec.contains("method") || !rec.contains("id")) {
      fail(path_, ":", lineno, ": record without \"method\" and \"id\"");
    }
    if (rec.value("setup", nlohmann::json()) != setup_) {
      fail(path_, ":", lineno, ": results of another setup (",
           rec.value("setup", nlohmann::json()).dump(), " here, ", setup_.dump(),
           " now); use another --out folder");
    }
    done_.emplace(rec["method"].get<std::string>(), rec["id"].get<std::string>());
    records_.push_back(std::move(rec));
  }
  if (!ends_with_newline && !content.empty()) {
    // Rewrite without the partial line so that appends start on a fresh line.
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    for (const auto& r : records_) out << r.dump() << "\n";
    if (!out) fail(path_, ": cannot write");
  }
}

bool ResultStore::done(const std::string& method, const std::string& sample_id) const {
  return done_.count({method, sample_id}) > 0;
}

void ResultStore::append(nlohmann::json record) {
  record["setup"] = setup_;
  std::ofstream out(path_, std::ios::binary | std::ios::app);
  out << record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  out.flush();
  if (!out) fail(path_, ": cannot append a result");
  done_.emplace(record["method"].get<std::string>(), record["id"].get<std::string>());
  records_.push_back(std::move(record));
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  // Width in characters (UTF-8 continuation bytes do not count).
  auto width = [](const std::string& s) {
    size_t w = 0;
    for (unsigned char c : s) w += (c & 0xC0) != 0x80;
    return w;
  };
  std::vector<size_t> w;
  for (const auto& r : rows) {
    if (r.size() > w.size()) w.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], width(r[i]));
  }
  std::string out;
  for (size_t ri = 0; ri < rows.size(); ++ri) {
    const auto& r = rows[ri];
    std::string line;
    for (size_t i = 0; i < w.size(); ++i) {
      const std::string cell = i < r.size() ? r[i] : "";
      const std::string pad(w[i] - width(cell), ' ');
      if (i) line += "  ";
      line += i == 0 ? cell + pad : pad + cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (ri == 0) {
      size_t total = 0;
      for (size_t i = 0; i < w.size(); ++i) total += w[i] + (i ? 2 : 0);
      out += std::string(total, '-') + "\n";
    }
  }
  return out;
}

std::string fmt1(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return std::nan("");
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.flush();
  if (!out) fail(path, ": cannot write");
}

}  // namespace fastkv::eval
