// fastkv eval: accuracy of compression methods on niah, ruler and longbench. Results (JSONL
// per sample, a JSON summary, a text table, pictures) go to --out; the table is also printed
// on stdout, progress on stderr. Reruns skip what --out already holds.
#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>

#include "commands.h"
#include "common/error.h"
#include "common/strings.h"
#include "eval/longbench.h"
#include "method/method_list.h"
#include "eval/niah.h"
#include "eval/ruler.h"
#include "eval/task.h"
#include "backend_flag.h"
#include "calibration_file.h"
#include "int_list_flag.h"
#include "method_options.h"
#include "model/model.h"
#include "runtime/context.h"
#include "runtime/session.h"

namespace fastkv::cli {
namespace {
namespace fs = std::filesystem;

struct EvalFlags {
  std::string task, model, methods = "full,fastkv", out = "fastkv-eval", data, jsonl;
  std::string backend = "auto";
  std::string lengths, depths, subtasks, datasets;
  int limit = 0, ctx_size = 0, threads = 0, max_length = 0, max_new_tokens = 0, samples = 1;
  uint64_t seed = 42;
  bool chat = false, no_run = false;
  MethodFlags method;
};

std::vector<std::string> parse_name_list(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  for (const std::string& raw : split(text, ",")) {
    std::string s = strip(raw);
    if (!s.empty()) out.push_back(s);
  }
  return out;
}

// --data default: $FASTKV_DATA, else ../shared/data from the working folder, else from the
// folder above the binary's (a build folder inside the repository).
std::string default_data_dir() {
  if (const char* env = std::getenv("FASTKV_DATA"); env && *env) return env;
  std::error_code ec;
  if (fs::is_directory("../shared/data", ec)) return "../shared/data";
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
      fs::path cand = p.parent_path() / "shared" / "data";
      if (fs::is_directory(cand, ec)) return cand.string();
    }
  }
  return "../shared/data";
}

void run(EvalFlags& f) {
  if (f.limit < 0) fail("--limit must be >= 0, got ", f.limit);
  if (f.samples != 1 && f.task != "niah") {
    fail("--samples is for niah (ruler and longbench take --limit samples per task)");
  }
  if (f.ctx_size < 0) fail("-c/--ctx-size must be >= 0, got ", f.ctx_size);
  if (f.threads < 0) fail("-t/--threads must be >= 0, got ", f.threads);
  if (f.out.empty()) fail("--out must not be empty");
  if (f.max_new_tokens < 0) fail("--max-new-tokens must be >= 0, got ", f.max_new_tokens);
  f.method.collect();
  if (f.threads > 0) omp_set_num_threads(f.threads);
  const std::string data = f.data.empty() ? default_data_dir() : f.data;

  std::vector<MethodSpec> methods = parse_method_list(f.methods);
  LoadOptions load;
  load.backend = parse_backend(f.backend, f.model);
  auto model = Model::load(f.model, load);
  model->require_tokenizer();
  std::vector<std::string> notes;
  apply_calibration_to_list(load_calibration(f.model, model->config().n_layer), methods,
                            f.method.options);
  resolve_methods(methods, f.method.options, model->config().n_layer, &notes);
  for (const std::string& n : notes) std::fprintf(stderr, "note: %s\n", n.c_str());

  eval::EvalSettings settings;
  settings.out_dir = f.out;
  settings.ctx_size = f.ctx_size;
  settings.chat = f.chat;
  settings.limit = f.limit;
  settings.max_new_tokens = f.max_new_tokens;
  settings.no_run = f.no_run;
  settings.samples = f.samples;
  settings.model_path = f.model;
  if (const std::string w = context_warning(*model, f.ctx_size); !w.empty()) {
    std::fprintf(stderr, "warning: %s\n", w.c_str());
  }
  std::fprintf(stderr, "eval: model %s, backend %s\n", f.model.c_str(),
               kernels::backend_name(model->backend()));

  std::unique_ptr<eval::Task> task;
  if (f.task == "niah") {
    if (!f.jsonl.empty() || !f.subtasks.empty() || !f.datasets.empty()) {
      fail("niah takes no --jsonl, --subtasks or --datasets");
    }
    task = std::make_unique<eval::NiahTask>(
        *model, settings, parse_int_list("--lengths", f.lengths),
        parse_int_list("--depths", f.depths), data + "/PaulGrahamEssays");
  } else if (f.task == "ruler") {
    if (!f.depths.empty() || !f.datasets.empty()) fail("ruler takes no --depths or --datasets");
    if (!f.jsonl.empty() && (!f.lengths.empty() || !f.subtasks.empty())) {
      fail("ruler: --jsonl reads samples as they are; it takes no --lengths or --subtasks");
    }
    task = std::make_unique<eval::RulerTask>(*model, settings, parse_name_list(f.subtasks),
                                             parse_int_list("--lengths", f.lengths), f.seed,
                                             data + "/PaulGrahamEssays", f.jsonl);
  } else if (f.task == "longbench") {
    if (!f.lengths.empty() || !f.depths.empty() || !f.subtasks.empty()) {
      fail("longbench takes no --lengths, --depths or --subtasks");
    }
    if (f.chat) fail("longbench chooses the chat template per dataset; --chat does not apply");
    std::vector<std::string> files;
    if (!f.jsonl.empty()) {
      if (!f.datasets.empty()) fail("give --jsonl or --datasets, not both");
      files = {f.jsonl};
    } else {
      files = eval::longbench_files_in(data + "/LongBench", parse_name_list(f.datasets));
    }
    task = std::make_unique<eval::LongBenchTask>(*model, settings, files, f.max_length);
  } else {
    fail("unknown task '", f.task, "' (niah, ruler, longbench)");
  }
  if (f.max_length != 0 && f.task != "longbench") fail("--max-length applies to longbench only");

  const std::string table = eval::run_task(*task, *model, methods, settings, stderr);
  std::fwrite(table.data(), 1, table.size(), stdout);
  std::fprintf(stderr, "results in %s/%s.{jsonl,json,txt}%s\n", f.out.c_str(), task->name().c_str(),
               f.task == "niah" ? " and niah.png" : "");
}

}  // namespace

void register_eval(CLI::App& app) {
  auto f = std::make_shared<EvalFlags>();
  CLI::App* cmd =
      app.add_subcommand("eval", "accuracy of compression methods on niah, ruler or longbench");
  cmd->add_option("task", f->task, "niah | ruler | longbench")->required();
  cmd->add_option("-m,--model", f->model, "GGUF model file")->required();
  cmd->add_option("--methods", f->methods,
                  "comma-separated methods, each NAME[:KEY=VALUE...], e.g. "
                  "full,fastkv:retain_rate=0.1,snapkv; the method flags (--retain-rate, ...) "
                  "go to every listed method that has them and must suit each")
      ->capture_default_str();
  cmd->add_option("--out", f->out, "folder for results (JSONL, JSON, table, pictures)")
      ->capture_default_str();
  cmd->add_option("--limit", f->limit,
                  "samples: niah the first N cells; ruler N per task and length (default 500); "
                  "longbench the first N per dataset (0 = all)");
  cmd->add_option("--lengths", f->lengths,
                  "context lengths in tokens, comma-separated (4K = 4096); niah default 8 steps "
                  "from 1K to the context, ruler default 4096");
  cmd->add_option("--samples", f->samples,
                  "niah: haystacks per (length, depth) cell, 1-8, each from another place in "
                  "the essays; a cell's score is their mean")
      ->capture_default_str();
  cmd->add_option("--depths", f->depths,
                  "niah: needle depths in percent (default 10 from 0 to 100)");
  cmd->add_option("--data", f->data,
                  "data folder with PaulGrahamEssays/ and LongBench/ (default $FASTKV_DATA or "
                  "../shared/data)");
  cmd->add_option("--jsonl", f->jsonl, "ruler/longbench: read samples from this jsonl file");
  cmd->add_option("--subtasks", f->subtasks, "ruler: tasks, comma-separated (default all 11)");
  cmd->add_option("--datasets", f->datasets,
                  "longbench: datasets, comma-separated (default every <name>.jsonl in "
                  "DATA/LongBench)");
  cmd->add_option("--max-length", f->max_length,
                  "longbench: prompt tokens kept by middle truncation (default context - "
                  "generation length - 64)");
  cmd->add_option("--max-new-tokens", f->max_new_tokens,
                  "generate at most N tokens (default: the task's: niah 30, ruler 30-128, "
                  "longbench 32-512 by dataset)");
  cmd->add_option("--seed", f->seed, "ruler: generator seed")->capture_default_str();
  cmd->add_flag("--no-run", f->no_run,
                "run nothing: rebuild the JSON, table and pictures from the results in --out");
  cmd->add_flag("--chat", f->chat, "niah/ruler: wrap prompts in the model's chat template");
  cmd->add_option("-c,--ctx-size", f->ctx_size, "context size (0 = the model's)");
  cmd->add_option("-t,--threads", f->threads, "threads (0 = all cores)");
  add_backend_option(cmd, f->backend);
  f->method.add_to(cmd);
  // One method list here: --methods replaces run's single --method; the method parameters
  // apply to every listed method that takes them.
  cmd->remove_option(cmd->get_option("--method"));
  cmd->callback([f] { run(*f); });
}

}  // namespace fastkv::cli
