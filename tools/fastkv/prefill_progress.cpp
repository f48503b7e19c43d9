#include "prefill_progress.h"

#include <unistd.h>

#include "eval/progress.h"

namespace fastkv::cli {

PrefillProgressLine::PrefillProgressLine(std::FILE* out, double delay_s, double line_every_s)
    : out_(out), delay_s_(delay_s), line_every_s_(line_every_s) {
  tty_ = isatty(fileno(out_)) != 0;
  restart();
}

void PrefillProgressLine::restart() {
  t0_ = std::chrono::steady_clock::now();
  drawn_ = false;
  last_draw_s_ = -1e9;
  work_done_ = work_before_pass_ = 0;
  pass_ = 0;
}

PrefillProgressFn PrefillProgressLine::callback() {
  return [this](const PrefillProgress& p) { on_layer(p); };
}

void PrefillProgressLine::on_layer(const PrefillProgress& p) {
  if (p.pass != pass_) {  // a restarted pass: its layers add to the work already done
    work_before_pass_ = work_done_;
    pass_ = p.pass;
  }
  work_done_ += p.live;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  if (elapsed < delay_s_ || p.layers_done == p.n_layer) return;
  if (elapsed - last_draw_s_ < (tty_ ? 0.25 : line_every_s_)) return;
  last_draw_s_ = elapsed;
  // The remaining layers see the tokens that are live now.
  const double remaining = static_cast<double>(p.n_layer - p.layers_done) * p.live;
  const double eta = elapsed * remaining / work_done_;
  // Prompt tokens per second at this pace: the share of the pass done, times N, per second.
  const double pass_work = work_done_ - work_before_pass_;
  const double share = pass_work / (pass_work + remaining);
  const double tok_s = share * p.n_prompt / elapsed;
  char line[160];
  std::snprintf(line, sizeof line, "prefill%s: layer %d/%d, %d tokens live, %.0f tokens/s, ETA %s",
                p.pass ? " (second pass)" : "", p.layers_done, p.n_layer, p.live, tok_s,
                eval::Progress::format_duration(eta).c_str());
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s", line);
  } else {
    std::fprintf(out_, "%s\n", line);
  }
  std::fflush(out_);
  drawn_ = true;
}

void PrefillProgressLine::finish() {
  if (drawn_ && tty_) {
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
  drawn_ = false;
}

}  // namespace fastkv::cli
