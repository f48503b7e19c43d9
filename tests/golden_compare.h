// Comparison of our logits with a llama.cpp golden (tests/golden_quant_logits.cpp,
// tests/golden_arch_logits.cpp): the relative row error, the golden's top-1 margin, and a tally
// that asserts every row against the bounds and the median at the end.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace fastkv::test {

// Every *.logits.gguf in the given folders (missing folders are skipped), sorted.
inline std::vector<std::string> logits_golden_files(const std::vector<std::string>& dirs) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const std::string& d : dirs) {
    if (!fs::is_directory(d)) continue;
    for (const auto& e : fs::directory_iterator(d)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 12 && name.compare(name.size() - 12, 12, ".logits.gguf") == 0) {
        files.push_back(e.path().string());
      }
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

struct Bounds {
  double max_ratio;      // max|Δ| / max|golden| at every checked row
  double median_ratio;   // median of that ratio over the rows of one comparison
  double argmax_margin;  // same top-1 wherever golden top-1 - top-2 > this × max|golden|
};

// One row of logits against the golden row: max|Δ| / max|golden|, and the golden's top-1
// margin in the same unit.
struct RowDiff {
  double ratio = 0;
  double margin = 0;
  int golden_top = -1, our_top = -1;
};

// golden_top: llama.cpp's top-1 when known (the greedy token: it was chosen from f32 logits, and
// rounding them to f16 for the file can tie it with a neighbour), else -1: the row's argmax.
inline RowDiff compare_row(const float* golden, const float* ours, int V, int golden_top = -1) {
  RowDiff r;
  double max_g = 0, max_d = 0;
  for (int t = 0; t < V; ++t) {
    max_g = std::max(max_g, std::fabs(static_cast<double>(golden[t])));
    max_d = std::max(max_d, std::fabs(static_cast<double>(golden[t]) - ours[t]));
  }
  r.ratio = max_d / std::max(max_g, 1e-30);
  r.golden_top = golden_top >= 0
                     ? golden_top
                     : static_cast<int>(std::max_element(golden, golden + V) - golden);
  r.our_top = static_cast<int>(std::max_element(ours, ours + V) - ours);
  float second = -INFINITY;
  for (int t = 0; t < V; ++t) {
    if (t != r.golden_top) second = std::max(second, golden[t]);
  }
  r.margin = (golden[r.golden_top] - second) / std::max(max_g, 1e-30);
  return r;
}

// Accumulates row comparisons, asserts each row against the bounds, and the median at the end.
class Tally {
 public:
  Tally(std::string what, const Bounds& b) : what_(std::move(what)), b_(b) {}
  void add(const RowDiff& r, const std::string& where) {
    ratios_.push_back(r.ratio);
    EXPECT_LE(r.ratio, b_.max_ratio) << what_ << ", " << where;
    if (r.our_top != r.golden_top) {
      ++changed_;
      max_changed_margin_ = std::max(max_changed_margin_, r.margin);
    }
    if (r.margin > b_.argmax_margin) {
      ++argmax_checked_;
      EXPECT_EQ(r.our_top, r.golden_top)
          << what_ << ", " << where << ": top-1 differs (golden margin " << r.margin << ")";
    }
  }
  // Prints the measured numbers and checks the median; returns the rows checked for top-1.
  int finish(const std::string& extra = "") {
    EXPECT_FALSE(ratios_.empty()) << what_ << ": nothing compared";
    if (ratios_.empty()) return 0;
    std::vector<double> s = ratios_;
    std::sort(s.begin(), s.end());
    const double median = s[s.size() / 2];
    EXPECT_LE(median, b_.median_ratio) << what_;
    std::printf("%s: %zu rows, max ratio %.2e, median %.2e, %d argmax checks, top-1 changed at %d "
                "(largest golden margin there %.2e)%s\n",
                what_.c_str(), s.size(), s.back(), median, argmax_checked_, changed_,
                max_changed_margin_, extra.c_str());
    return argmax_checked_;
  }

 private:
  std::string what_;
  Bounds b_;
  std::vector<double> ratios_;
  int argmax_checked_ = 0, changed_ = 0;
  double max_changed_margin_ = 0;
};

}  // namespace fastkv::test
