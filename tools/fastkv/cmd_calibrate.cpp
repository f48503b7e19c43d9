// fastkv calibrate: choose the model's TSP layer by the FastKV paper's Eq. 3 (eval/calibrate.h)
// and save it beside the GGUF (runtime/tsp_calibration.h), where run, serve, eval and bench
// find it.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "backend_flag.h"
#include "commands.h"
#include "common/error.h"
#include "common/files.h"
#include "common/strings.h"
#include "eval/calibrate.h"
#include "eval/progress.h"
#include "int_list_flag.h"
#include "kernels/parallel.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/tsp_calibration.h"

namespace fastkv::cli {
namespace {

namespace fs = std::filesystem;

struct CalibrateFlags {
  std::string model, data, out, backend = "auto", rates = "0.2", layers;
  std::vector<std::string> files;
  int ctx = 0, samples = 0, threads = 0;
  double min_speedup = 1.5;
  uint64_t seed = 1;
  bool dry_run = false;
};

std::vector<double> parse_rates(const std::string& text) {
  std::vector<double> out;
  for (const std::string& raw : split(text, ",")) {
    const std::string s = strip(raw);
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (s.empty() || used != s.size() || !(v > 0 && v <= 1)) {
      fail("--tsp-rate: '", s, "' is not a rate in (0, 1]");
    }
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  if (out.empty()) fail("--tsp-rate: no rate given");
  return out;
}

// *.txt files of a folder, sorted by name.
std::vector<std::string> text_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("--data: ", dir, " is not a folder");
  std::vector<std::string> out = files_with_extension(dir, ".txt");
  if (out.empty()) fail("--data: ", dir, " has no .txt files");
  return out;
}

void run(CalibrateFlags& f) {
  if (f.ctx < 0) fail("--ctx must be >= 0, got ", f.ctx);
  if (f.samples < 0) fail("--samples must be >= 0, got ", f.samples);
  if (f.threads < 0) fail("-t/--threads must be >= 0, got ", f.threads);
  if (!(f.min_speedup > 0)) fail("--min-speedup must be > 0, got ", f.min_speedup);
  eval::CalibrateSettings s;
  s.rates = parse_rates(f.rates);
  s.min_speedup = f.min_speedup;
  if (!f.layers.empty()) s.layers = parse_int_list("--layers", f.layers);
  if (f.threads > 0) kernels::set_threads(f.threads);
  LoadOptions load;
  load.backend = parse_backend(f.backend, f.model);
  auto model = Model::load(f.model, load);
  const int L = model->config().n_layer;
  (void)model->require_tokenizer();
  const int limit = effective_context(*model, 0);
  const int ctx = f.ctx > 0 ? f.ctx : std::min(4096, limit);
  if (ctx > limit) fail("--ctx ", ctx, " exceeds the model's context of ", limit, " tokens");
  const std::string out_path = f.out.empty() ? calibration_path(f.model) : f.out;

  std::vector<std::string> files = f.files;
  if (!f.data.empty()) {
    for (std::string& t : text_files(f.data)) files.push_back(std::move(t));
  }
  std::vector<eval::CalibrationText> texts;
  std::string source;
  if (files.empty()) {
    texts = eval::generated_calibration_texts(*model, ctx, f.samples > 0 ? f.samples : 4, f.seed);
    source = "generated";
  } else {
    if (f.samples > 0 && static_cast<size_t>(f.samples) < files.size()) files.resize(f.samples);
    texts = eval::file_calibration_texts(*model, files, ctx);
    source = "files";
  }

  std::optional<eval::Progress> bar;
  auto progress = [&](int done, int total, const std::string& what) {
    if (!bar) bar.emplace("calibrate", total);
    if (done > 0) bar->step();
    bar->start(what);
  };
  std::fprintf(stderr, "calibrating %s: %zu texts of about %d tokens, %d layers\n",
               f.model.c_str(), texts.size(), ctx, L);
  const eval::CalibrationResult r = eval::calibrate_tsp(*model, texts, s, progress);
  if (bar) {
    bar->step();
    bar->finish();
  }

  const std::string table = eval::format_calibration_table(r);
  std::fwrite(table.data(), 1, table.size(), stdout);
  const eval::CalibrationRow& c = r.choice();
  const eval::CalibrationRow* def = r.row_for(r.default_layer, c.rate);
  if (def != nullptr && !def->measured) def = nullptr;
  std::printf("\nchosen: TSP layer %d at rate %g: error %.4g, predicted prefill speedup %.2fx",
              c.layer, c.rate, c.error, c.predicted_speedup);
  if (def != nullptr) {
    // on a hybrid model the default layer may be local: say where its TSP runs
    const std::string where =
        def->layer == r.default_layer ? "" : cat(", TSP at layer ", def->layer);
    std::printf(" (default layer %d%s: error %.4g, %.2fx)", r.default_layer, where.c_str(),
                def->error, def->predicted_speedup);
  }
  std::printf("\n");

  if (f.dry_run) {
    std::printf("not saved (--dry-run)\n");
    return;
  }
  TspCalibration cal;
  cal.model_file = fs::path(f.model).filename().string();
  file_stamp(f.model, cal.file_size, cal.file_mtime);
  cal.sha256 = file_sha256(f.model);
  cal.n_layer = L;
  cal.tsp_layer = c.layer;
  cal.tsp_rate = c.rate;
  cal.details = r.to_json();
  cal.details["ctx"] = ctx;
  cal.details["source"] = source;
  cal.details["min_speedup"] = s.min_speedup;
  cal.details["backend"] = kernels::backend_name(model->backend());
  save_calibration(out_path, cal);
  std::printf("saved to %s: run, serve, eval and bench use TSP layer %d for fastkv unless "
              "--tsp-layer is given\n",
              out_path.c_str(), c.layer);
}

}  // namespace

void register_calibrate(CLI::App& app) {
  auto f = std::make_shared<CalibrateFlags>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "choose the model's TSP layer (FastKV paper, Eq. 3) and save it beside the model");
  cmd->add_option("-m,--model", f->model, "GGUF model file")->required();
  cmd->add_option("-f,--file", f->files, "calibration text files (repeatable)");
  cmd->add_option("--data", f->data, "a folder whose *.txt files are calibration texts");
  cmd->add_option("--ctx", f->ctx,
                  "tokens per calibration text (generated texts are this long, files are cut "
                  "to it; 0 = min(4096, the model's context))")
      ->capture_default_str();
  cmd->add_option("--samples", f->samples,
                  "calibration texts (0 = 4 generated ones, or every file given)")
      ->capture_default_str();
  cmd->add_option("--tsp-rate", f->rates, "TSP rates to try, comma-separated")
      ->capture_default_str();
  cmd->add_option("--min-speedup", f->min_speedup,
                  "choose only layers whose predicted prefill speedup is at least this")
      ->capture_default_str();
  cmd->add_option("--layers", f->layers,
                  "candidate layers, comma-separated (default: every layer reaching "
                  "--min-speedup, and the default layer)");
  cmd->add_option("--out", f->out, "calibration file (default: MODEL with .fastkv.json)");
  cmd->add_flag("--dry-run", f->dry_run, "print the table, save nothing");
  cmd->add_option("--seed", f->seed, "seed of the generated texts")->capture_default_str();
  cmd->add_option("-t,--threads", f->threads, "threads (0 = all cores)");
  add_backend_option(cmd, f->backend);
  cmd->callback([f] { run(*f); });
}

}  // namespace fastkv::cli
