// A progress bar with elapsed time and ETA on stderr: redrawn in place on a terminal, one line
// per step otherwise (logs, tests).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace fastkv::eval {

class Progress {
 public:
  Progress(std::string title, int total, std::FILE* out = stderr);
  // Says what runs next (shown on the bar while it runs).
  void start(const std::string& what);
  // One unit done.
  void step();
  // Ends the bar's line.
  void finish();

  // "1:02:03" / "4:05" for seconds.
  static std::string format_duration(double seconds);

 private:
  void draw(bool final_line);
  std::string title_;
  int total_ = 0;
  int done_ = 0;
  std::string what_;
  std::FILE* out_;
  bool tty_ = false;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace fastkv::eval
