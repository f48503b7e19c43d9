#include "eval/plot.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "common/error.h"

namespace fastkv::eval {
namespace {

constexpr const char* kFont = "DejaVu Sans";

struct Rgb {
  double r, g, b;
};

// Red -> amber -> green stops.
constexpr Rgb kStops[] = {{0.85, 0.19, 0.26}, {0.95, 0.73, 0.22}, {0.05, 0.70, 0.45}};

void set_font(cairo_t* cr, double size, bool bold = false) {
  cairo_select_font_face(cr, kFont, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
}

double text_width(cairo_t* cr, const std::string& s) {
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

// Draws `s` with its anchor at (x, y): align 0 = left, 0.5 = centre, 1 = right; y is the
// vertical centre of the text.
void draw_text(cairo_t* cr, const std::string& s, double x, double y, double align) {
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  cairo_move_to(cr, x - align * text_width(cr, s), y + (fe.ascent - fe.descent) / 2);
  cairo_show_text(cr, s.c_str());
}

std::string value_text(double v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

}  // namespace

void heat_color(double t, double* r, double* g, double* b) {
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0);
  const double x = t * 2;
  const int i = std::min(1, static_cast<int>(x));
  const double f = x - i;
  *r = kStops[i].r + (kStops[i + 1].r - kStops[i].r) * f;
  *g = kStops[i].g + (kStops[i + 1].g - kStops[i].g) * f;
  *b = kStops[i].b + (kStops[i + 1].b - kStops[i].b) * f;
}

void write_heatmap_png(const std::string& path, const Heatmap& h) {
  const int rows = static_cast<int>(h.row_labels.size());
  const int cols = static_cast<int>(h.col_labels.size());
  const int n_panels = std::max<int>(1, static_cast<int>(h.panels.size()));
  const int per_row = std::min(3, n_panels);
  const int panel_rows = (n_panels + per_row - 1) / per_row;

  // Geometry (pixels).
  const double cell_w = 52, cell_h = 26;
  const double grid_w = cell_w * std::max(cols, 1), grid_h = cell_h * std::max(rows, 1);
  const double y_label_w = 64;  // depth labels + axis title
  const double panel_title_h = 44;
  const double x_label_h = 46;  // length labels + axis title
  const double panel_w = y_label_w + grid_w + 24;
  const double panel_h = panel_title_h + grid_h + x_label_h + 12;
  const double top = 48, left = 12, bar_w = 90;
  const int width = static_cast<int>(left + per_row * panel_w + bar_w + 12);
  const int height = static_cast<int>(top + panel_rows * panel_h + 8);

  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface_guard(
      surface, cairo_surface_destroy);
  cairo_t* cr = cairo_create(surface);
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr_guard(cr, cairo_destroy);

  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  set_font(cr, 18, true);
  draw_text(cr, h.title, width / 2.0, 24, 0.5);

  const double span = h.vmax > h.vmin ? h.vmax - h.vmin : 1;
  for (int p = 0; p < n_panels; ++p) {
    const HeatmapPanel empty;
    const HeatmapPanel& panel = p < static_cast<int>(h.panels.size()) ? h.panels[p] : empty;
    const double ox = left + (p % per_row) * panel_w;
    const double oy = top + (p / per_row) * panel_h;
    const double gx = ox + y_label_w, gy = oy + panel_title_h;

    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    set_font(cr, 14, true);
    draw_text(cr, panel.title, gx + grid_w / 2, oy + 12, 0.5);
    set_font(cr, 12);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    draw_text(cr, panel.subtitle, gx + grid_w / 2, oy + 30, 0.5);

    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols; ++c) {
        const double v =
            r < static_cast<int>(panel.cells.size()) && c < static_cast<int>(panel.cells[r].size())
                ? panel.cells[r][c]
                : std::nan("");
        const double x = gx + c * cell_w, y = gy + r * cell_h;
        if (std::isnan(v)) {
          cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
          cairo_rectangle(cr, x, y, cell_w, cell_h);
          cairo_fill(cr);
          continue;
        }
        double cr_, cg, cb;
        heat_color((v - h.vmin) / span, &cr_, &cg, &cb);
        cairo_set_source_rgb(cr, cr_, cg, cb);
        cairo_rectangle(cr, x, y, cell_w, cell_h);
        cairo_fill(cr);
        const double lum = 0.299 * cr_ + 0.587 * cg + 0.114 * cb;
        cairo_set_source_rgb(cr, lum > 0.55 ? 0.1 : 1, lum > 0.55 ? 0.1 : 1, lum > 0.55 ? 0.1 : 1);
        set_font(cr, 11);
        draw_text(cr, value_text(v), x + cell_w / 2, y + cell_h / 2, 0.5);
      }
    }
    // Thin white grid lines and a frame.
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 1);
    for (int c = 1; c < cols; ++c) {
      cairo_move_to(cr, gx + c * cell_w, gy);
      cairo_line_to(cr, gx + c * cell_w, gy + grid_h);
    }
    for (int r = 1; r < rows; ++r) {
      cairo_move_to(cr, gx, gy + r * cell_h);
      cairo_line_to(cr, gx + grid_w, gy + r * cell_h);
    }
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    cairo_rectangle(cr, gx, gy, grid_w, grid_h);
    cairo_stroke(cr);

    // Axis labels.
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    set_font(cr, 11);
    for (int r = 0; r < rows; ++r) {
      draw_text(cr, h.row_labels[r], gx - 6, gy + r * cell_h + cell_h / 2, 1.0);
    }
    for (int c = 0; c < cols; ++c) {
      draw_text(cr, h.col_labels[c], gx + c * cell_w + cell_w / 2, gy + grid_h + 12, 0.5);
    }
    set_font(cr, 12);
    draw_text(cr, h.x_title, gx + grid_w / 2, gy + grid_h + 32, 0.5);
    cairo_save(cr);
    cairo_translate(cr, ox + 12, gy + grid_h / 2);
    cairo_rotate(cr, -M_PI / 2);
    draw_text(cr, h.y_title, 0, 0, 0.5);
    cairo_restore(cr);
  }

  // Colour bar.
  const double bx = left + per_row * panel_w + 16, by = top + panel_title_h;
  const double bh =
      std::max(120.0, std::min(260.0, panel_rows * panel_h - panel_title_h - x_label_h));
  const int steps = 100;
  for (int i = 0; i < steps; ++i) {
    double r, g, b;
    heat_color(1.0 - (i + 0.5) / steps, &r, &g, &b);
    cairo_set_source_rgb(cr, r, g, b);
    cairo_rectangle(cr, bx, by + bh * i / steps, 18, bh / steps + 0.5);
    cairo_fill(cr);
  }
  cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
  cairo_rectangle(cr, bx, by, 18, bh);
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  set_font(cr, 11);
  for (int t = 0; t <= 4; ++t) {
    const double v = h.vmin + span * t / 4;
    const double y = by + bh * (1.0 - t / 4.0);
    cairo_move_to(cr, bx + 18, y);
    cairo_line_to(cr, bx + 22, y);
    cairo_stroke(cr);
    draw_text(cr, value_text(v), bx + 25, y, 0.0);
  }
  set_font(cr, 12);
  draw_text(cr, h.colorbar_title, bx + 9, by - 14, 0.0 + 0.5);

  cairo_surface_flush(surface);
  if (cairo_surface_write_to_png(surface, path.c_str()) != CAIRO_STATUS_SUCCESS) {
    fail(path, ": cannot write the PNG");
  }
}

}  // namespace fastkv::eval
