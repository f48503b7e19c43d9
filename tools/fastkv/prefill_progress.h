// Progress of a long prefill on stderr, as `eval` shows its progress: once a prefill has run
// for `delay_s` seconds, "prefill: layer 12/30, 1534 tokens/s, ETA 0:03" (redrawn in place on a
// terminal, a line every `line_every_s` seconds otherwise). Short prefills print nothing.
#pragma once

#include <chrono>
#include <cstdio>

#include "model/model.h"

namespace fastkv::cli {

class PrefillProgressLine {
 public:
  explicit PrefillProgressLine(std::FILE* out = stderr, double delay_s = 2.0,
                               double line_every_s = 2.0);
  // The callback for Model::prefill / GenerationParams::on_prefill_layer. The clock starts at
  // construction; restart() starts it again (for a second prefill).
  PrefillProgressFn callback();
  void restart();
  // Ends the line on a terminal when something was drawn.
  void finish();

 private:
  void on_layer(const PrefillProgress& p);
  std::FILE* out_;
  double delay_s_, line_every_s_;
  bool tty_ = false, drawn_ = false;
  double last_draw_s_ = -1e9;
  // Work in token-layers (the linear layers dominate a prefill and cost the same per token):
  // done so far, in passes before the current one, and in the current pass.
  double work_done_ = 0, work_before_pass_ = 0;
  int pass_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace fastkv::cli
