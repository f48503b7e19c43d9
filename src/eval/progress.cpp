#include "eval/progress.h"

#include <unistd.h>

#include <cmath>

namespace fastkv::eval {

Progress::Progress(std::string title, int total, std::FILE* out)
    : title_(std::move(title)), total_(total), out_(out) {
  tty_ = isatty(fileno(out_)) != 0;
  t0_ = std::chrono::steady_clock::now();
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

void Progress::start(const std::string& what) {
  what_ = what;
  if (tty_) draw(false);
}

void Progress::step() {
  ++done_;
  draw(!tty_);
}

void Progress::finish() {
  if (tty_) std::fputc('\n', out_);
  std::fflush(out_);
}

void Progress::draw(bool final_line) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const double eta = done_ > 0 ? elapsed / done_ * (total_ - done_) : -1;
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? done_ * kWidth / total_ : kWidth;
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  const int pct = total_ > 0 ? done_ * 100 / total_ : 100;
  std::string line = title_ + " [" + bar + "] " + std::to_string(done_) + "/" +
                     std::to_string(total_) + " " + std::to_string(pct) + "% elapsed " +
                     format_duration(elapsed) + " ETA " + format_duration(eta);
  if (!what_.empty()) line += (final_line ? "  done: " : "  ") + what_;
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s", line.c_str());
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

}  // namespace fastkv::eval
