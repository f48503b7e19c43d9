// Pictures of evaluation results, drawn with cairo into PNG files.
#pragma once

#include <string>
#include <vector>

namespace fastkv::eval {

struct HeatmapPanel {
  std::string title;                       // e.g. the method
  std::string subtitle;                    // e.g. "mean 87.5"
  std::vector<std::vector<double>> cells;  // [rows][cols]; NaN = not measured (hatched grey)
};

struct Heatmap {
  std::string title;
  std::string x_title, y_title;         // axis titles
  std::vector<std::string> col_labels;  // x, left to right
  std::vector<std::string> row_labels;  // y, top to bottom
  std::string colorbar_title;
  double vmin = 0, vmax = 100;
  std::vector<HeatmapPanel> panels;  // one per method, laid out in rows of up to 3
};

// Draws the panels with their cell values, shared axes labels and a colour bar (red = vmin,
// yellow, green = vmax). Throws fastkv::Error when the file cannot be written.
void write_heatmap_png(const std::string& path, const Heatmap& h);

// The colour of a value (for tests and legends): r, g, b in [0, 1].
void heat_color(double t, double* r, double* g, double* b);

}  // namespace fastkv::eval
