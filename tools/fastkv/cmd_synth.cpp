// fastkv synth: writes a random-weight GGUF model with the shapes of a real one (a preset) and
// the vocabulary of another GGUF file, for benchmarking without downloading weights.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "commands.h"
#include "common/error.h"
#include "model/synth.h"

namespace fastkv::cli {
namespace {

struct SynthFlags {
  synth::Options opts;
  int layers = 0;
};

std::string gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (uint64_t{1} << 30));
  return buf;
}

void run_synth(SynthFlags& flags, bool layers_given) {
  if (layers_given) flags.opts.layers = flags.layers;
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG, which is reported as an
  // error (and the partial file removed), instead of SIGXFSZ killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  const bool tty = isatty(STDERR_FILENO) == 1;
  int last_percent = -1;
  auto progress = [&](uint64_t written, uint64_t total, const std::string& tensor) {
    if (!tty || total == 0) return;
    const int percent = static_cast<int>(written * 100 / total);
    if (percent == last_percent) return;
    last_percent = percent;
    std::fprintf(stderr, "\rsynth: %3d%%  %s / %s  %-28s", percent, gib(written).c_str(),
                 gib(total).c_str(), tensor.c_str());
    std::fflush(stderr);
  };
  const auto t0 = std::chrono::steady_clock::now();
  synth::Result r;
  try {
    r = synth::write_model(flags.opts, progress);
  } catch (...) {
    if (tty && last_percent >= 0) std::fputc('\n', stderr);
    throw;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (tty && last_percent >= 0) std::fputc('\n', stderr);
  std::printf(
      "synth: %s (%s), %s, %d layer%s, vocab %d: %llu parameters (%.3f B), %llu bytes "
      "(%s) in %.1f s -> %s\n",
      r.preset->name, r.preset->model, gguf::type_name(r.type).c_str(), r.n_layer,
      r.n_layer == 1 ? "" : "s", r.n_vocab, static_cast<unsigned long long>(r.n_params),
      static_cast<double>(r.n_params) / 1e9, static_cast<unsigned long long>(r.n_bytes),
      gib(r.n_bytes).c_str(), seconds, r.path.c_str());
}

}  // namespace

void register_synth(CLI::App& app) {
  auto flags = std::make_shared<SynthFlags>();
  CLI::App* cmd = app.add_subcommand(
      "synth", "write a random-weight GGUF model with the shapes of a real one (for benchmarks)");
  cmd->add_option("--like", flags->opts.like,
                  "model to copy the shapes of: " + synth::preset_names())
      ->required();
  cmd->add_option("--type", flags->opts.type, "weight type: bf16, f16, q8_0, q4_0, q5_0, q5_1, q4_k, q5_k, q6_k or f32")
      ->required();
  cmd->add_option("--vocab", flags->opts.vocab,
                  "GGUF file (model or vocabulary) whose tokenizer is copied")
      ->required();
  cmd->add_option("--out", flags->opts.out, "output GGUF file")->required();
  cmd->add_option("--seed", flags->opts.seed, "random seed (default 1)");
  CLI::Option* layers =
      cmd->add_option("--layers", flags->layers, "number of layers (default: the model's)");
  cmd->callback([flags, layers] { run_synth(*flags, layers->count() > 0); });
}

}  // namespace fastkv::cli
