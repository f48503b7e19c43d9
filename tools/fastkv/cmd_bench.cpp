// fastkv bench: TTFT, prefill and decode speed of compression methods at several prompt
// lengths, beside the machine's measured limits (llama-bench's flags: -m -p -n -r).
#include <omp.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "bench/bench.h"
#include "commands.h"
#include "common/error.h"
#include "method/method_list.h"
#include "backend_flag.h"
#include "calibration_file.h"
#include "int_list_flag.h"
#include "method_options.h"
#include "model/model.h"
#include "runtime/context.h"

namespace fastkv::cli {
namespace {

struct BenchFlags {
  std::string model, prompts = "4096", methods = "full,fastkv", json_out, backend = "auto";
  int n_gen = 128, reps = 3, warmup = 1, threads = 0, ctx_size = 0, gemm_rows = 1024;
  int bandwidth_mib = 0;
  uint64_t seed = 1;
  bool interleave = false;
  MethodFlags method;
};

void run(BenchFlags& f) {
  if (f.threads < 0) fail("-t/--threads must be >= 0, got ", f.threads);
  if (f.ctx_size < 0) fail("-c/--ctx-size must be >= 0, got ", f.ctx_size);
  bench::Settings s;
  s.contexts = parse_int_list("-p/--n-prompt", f.prompts);
  s.n_gen = f.n_gen;
  s.reps = f.reps;
  s.warmup = f.warmup;
  s.seed = f.seed;
  s.interleave = f.interleave;
  s.gemm_rows = f.gemm_rows;
  s.bandwidth_bytes = static_cast<int64_t>(f.bandwidth_mib) << 20;
  f.method.collect();
  s.methods = parse_method_list(f.methods);
  s.validate();
  if (f.threads > 0) omp_set_num_threads(f.threads);
  LoadOptions load;
  load.backend = parse_backend(f.backend, f.model);
  // Fail on a bad JSON path now, not after an hour of measuring.
  if (!f.json_out.empty() && !std::ofstream(f.json_out)) fail(f.json_out, ": cannot write");

  auto model = Model::load(f.model, load);
  const int ctx_limit = effective_context(*model, f.ctx_size);
  for (int ctx : s.contexts) {
    if (static_cast<int64_t>(ctx) + s.n_gen > ctx_limit) {
      fail("a ", ctx, "-token prompt and ", s.n_gen, " generated tokens exceed the context of ",
           ctx_limit, " tokens", f.ctx_size > 0 ? "" : " (the model's); raise it with -c/--ctx-size");
    }
  }
  std::vector<std::string> notes;
  apply_calibration_to_list(load_calibration(f.model, model->config().n_layer), s.methods,
                            f.method.options);
  resolve_methods(s.methods, f.method.options, model->config().n_layer, &notes);
  for (const std::string& n : notes) std::fprintf(stderr, "note: %s\n", n.c_str());

  const bench::Result r = bench::run(*model, f.model, s, stderr);
  const std::string tbl = bench::table(r);
  std::fwrite(tbl.data(), 1, tbl.size(), stdout);
  if (!f.json_out.empty()) {
    std::ofstream out(f.json_out);
    out << bench::to_json(r).dump(2) << "\n";
    if (!out) fail(f.json_out, ": cannot write");
  }
}

}  // namespace

void register_bench(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "time prefill and decode of compression methods at several prompt lengths, "
               "beside the machine's measured GEMM ceiling and memory bandwidth");
  cmd->add_option("-m,--model", f->model, "GGUF model file")->required();
  cmd->add_option("-p,--n-prompt", f->prompts,
                  "prompt lengths in tokens, comma-separated (16K = 16384)")
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", f->n_gen, "tokens decoded after each prefill")
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", f->reps, "timed repetitions of each test")
      ->capture_default_str();
  cmd->add_flag("--interleave", f->interleave,
               "run the methods in turn (A B A B ...: warm-ups, then repetition 1 of every "
               "method, repetition 2 of every method, ...) instead of each method's runs "
               "together (A A B B ...), so drift over the run falls on every method alike");
  cmd->add_option("--warmup", f->warmup, "untimed runs before the repetitions")
      ->capture_default_str();
  cmd->add_option("--methods", f->methods,
                  "comma-separated methods, each NAME[:KEY=VALUE...]; the method flags "
                  "(--retain-rate, ...) go to every listed method that has them and must suit "
                  "each")
      ->capture_default_str();
  cmd->add_option("--json", f->json_out, "also write one JSON object per (method, context)");
  cmd->add_option("-t,--threads", f->threads, "threads (0 = all cores)");
  cmd->add_option("-c,--ctx-size", f->ctx_size, "context limit (0 = the model's)");
  add_backend_option(cmd, f->backend);
  cmd->add_option("--seed", f->seed, "seed of the random prompt tokens")->capture_default_str();
  cmd->add_option("--gemm-rows", f->gemm_rows, "rows of the GEMM-ceiling probe")
      ->capture_default_str();
  cmd->add_option("--bandwidth-mib", f->bandwidth_mib,
                  "size of the memory-bandwidth probe in MiB (0 = twice the last-level cache, "
                  "at least 1024)")
      ->capture_default_str();
  f->method.add_to(cmd);
  cmd->remove_option(cmd->get_option("--method"));
  cmd->callback([f] { run(*f); });
}

}  // namespace fastkv::cli
