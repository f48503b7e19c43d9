// fastkv run: generate text from a prompt; text on stdout, statistics on stderr.
#include <omp.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "commands.h"
#include "common/error.h"
#include "backend_flag.h"
#include "calibration_file.h"
#include "method_options.h"
#include "prefill_progress.h"
#include "selection_dump.h"
#include "text_input.h"
#include "token_ids_input.h"
#include "model/model.h"
#include "runtime/chat_template.h"
#include "runtime/context.h"
#include "runtime/session.h"

namespace fastkv::cli {
namespace {

struct RunFlags {
  std::string model, prompt, file, system, json_out, backend = "auto";
  std::string ids, ids_file, dump_selection;
  bool prompt_given = false, system_given = false, no_escape = false, ids_given = false;
  bool dump_top_k_given = false;
  int dump_top_k = 10;
  int n_predict = 128;
  int ctx_size = 0;
  int threads = 0;
  bool chat = false, ignore_eos = false;
  std::vector<std::string> stop;
  SamplingParams sampling;
  MethodFlags method;
};

std::string human_bytes(int64_t b) {
  char buf[64];
  if (b >= (int64_t{1} << 20)) {
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  }
  return buf;
}

double per_second(double count, double seconds) { return seconds > 0 ? count / seconds : 0.0; }

// Seconds a prefill runs before its progress shows: $FASTKV_PROGRESS_DELAY, default 2.
double progress_delay() {
  const char* env = std::getenv("FASTKV_PROGRESS_DELAY");
  if (env == nullptr || *env == '\0') return 2.0;
  char* end = nullptr;
  const double v = std::strtod(env, &end);
  if (*end != '\0' || !(v >= 0)) {
    fail("FASTKV_PROGRESS_DELAY must be a number of seconds >= 0, got '", env, "'");
  }
  return v;
}

// "[12, 34, 56]", as `fastkv tokenize --ids` prints ids.
std::string id_list(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

void run(RunFlags& f) {
  const bool use_ids = f.ids_given || !f.ids_file.empty();
  if (f.prompt_given + !f.file.empty() + f.ids_given + !f.ids_file.empty() != 1) {
    fail("give exactly one of -p/--prompt, -f/--file, --ids and --ids-file");
  }
  if (use_ids && f.chat) {
    fail("--chat needs a text prompt (-p or -f): token ids are fed to the model as they are");
  }
  if (f.dump_top_k_given && f.dump_selection.empty()) fail("--dump-top-k needs --dump-selection");
  if (f.dump_top_k < 1) fail("--dump-top-k must be >= 1, got ", f.dump_top_k);
  if (f.n_predict < 0) fail("-n/--n-predict must be >= 0, got ", f.n_predict);
  if (f.ctx_size < 0) fail("-c/--ctx-size must be >= 0, got ", f.ctx_size);
  if (f.threads < 0) fail("-t/--threads must be >= 0, got ", f.threads);
  if (f.system_given && !f.chat) {
    fail("--system needs --chat (a system message only exists in a chat template)");
  }
  f.sampling.validate();
  f.method.collect();
  check_backend_text(f.backend);
  const double delay_s = progress_delay();
  if (f.threads > 0) omp_set_num_threads(f.threads);
  std::string text;
  std::vector<int32_t> prompt;
  if (f.prompt_given) {
    text = f.no_escape ? f.prompt : process_escapes(f.prompt);
  } else if (!f.file.empty()) {
    text = read_input_file(f.file, "prompt");
  } else if (f.ids_given) {
    prompt = parse_ids_text(f.ids);
  } else {
    prompt = parse_ids_json(read_input_file(f.ids_file, "token id"),
                            f.ids_file == "-" ? "--ids-file (standard input)"
                                              : "--ids-file " + f.ids_file);
  }
  if (!use_ids && text.empty()) fail("the prompt is empty");

  const kernels::Backend backend = parse_backend(f.backend, f.model);
  LoadOptions load;
  load.backend = backend;
  auto model = Model::load(f.model, load);
  // Token ids need no tokenizer; without one the generated ids are printed instead of text.
  const Tokenizer* tok = use_ids ? model->tokenizer() : &model->require_tokenizer();
  if (use_ids) {
    check_ids_in_vocab(prompt, model->config().n_vocab, f.ids_given ? "--ids" : "--ids-file");
  }
  if (!tok && !f.stop.empty()) {
    fail("--stop needs a tokenizer to find stop strings, and ", f.model, " has none");
  }
  // The calibrated TSP layer (MODEL.fastkv.json) where --tsp-layer is not given.
  const TspLayerSource tsp_source = apply_calibration(
      load_calibration(f.model, model->config().n_layer), f.method.method, f.method.options);
  // Validate the method before the (possibly long) tokenisation and prefill.
  auto policy = MethodRegistry::instance().create(f.method.method, f.method.options,
                                                  model->config().n_layer);
  const std::string tsp_text = describe_tsp_layer(*policy, tsp_source, &model->config());
  if (const std::string w = context_warning(*model, f.ctx_size); !w.empty()) {
    std::fprintf(stderr, "warning: %s\n", w.c_str());
  }
  if (f.chat) {
    ChatTemplate tmpl = ChatTemplate::detect(model->file(), *tok);
    std::vector<ChatMessage> msgs;
    if (f.system_given) msgs.push_back({"system", f.system});
    msgs.push_back({"user", text});
    text = tmpl.render(msgs, true);
  }
  if (!use_ids) prompt = tok->encode(text, /*add_special=*/true, /*parse_special=*/true);
  check_prompt_fits(*model, prompt.size(), f.ctx_size);

  GenerationParams gp;
  gp.max_tokens = f.n_predict;
  gp.sampling = f.sampling;
  gp.stop = f.stop;
  gp.stop_at_eog = !f.ignore_eos;
  gp.ctx_size = f.ctx_size;
  gp.keep_first_logits = !f.dump_selection.empty();
  PrefillProgressLine progress(stderr, delay_s);
  gp.on_prefill_layer = progress.callback();
  Session session(*model, std::move(policy));
  progress.restart();
  bool first_chunk = true;
  GenerationResult r = session.generate(prompt, gp, [&](const std::string& chunk) {
    if (first_chunk) progress.finish();  // clear the progress line before the text
    first_chunk = false;
    std::fwrite(chunk.data(), 1, chunk.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  progress.finish();
  // Without a tokenizer there is no text to stream: the generated ids stand in for it.
  if (!tok) std::fputs(id_list(r.tokens).c_str(), stdout);
  std::printf("\n");
  std::fflush(stdout);

  const PrefillStats& st = r.prefill;
  const std::string backend_name = kernels::backend_name(backend);
  const double prefill_tps = per_second(r.n_prompt, r.ttft_s);
  const double decode_tps = per_second(r.n_decode_steps, r.decode_s);
  std::fprintf(stderr, "\nmodel: %s (%s, %d layers)\n", f.model.c_str(),
               model->config().name.empty() ? model->config().arch.c_str()
                                            : model->config().name.c_str(),
               model->config().n_layer);
  std::fprintf(stderr, "backend: %s%s\n", backend_name.c_str(),
               f.backend == "auto" ? " (auto)" : "");
  std::fprintf(stderr, "method: %s%s%s\n", f.method.method.c_str(), tsp_text.empty() ? "" : ", ",
               tsp_text.c_str());
  std::fprintf(stderr, "prompt tokens: %d\n", r.n_prompt);
  std::fprintf(stderr, "time to first token: %.1f ms\n", r.ttft_s * 1e3);
  std::fprintf(stderr, "prefill: %.1f tokens/s\n", prefill_tps);
  std::fprintf(stderr, "decode: %.1f tokens/s (%d tokens)\n", decode_tps, r.n_decode_steps);
  std::fprintf(stderr, "generated tokens: %zu (finish: %s)\n", r.tokens.size(),
               r.finish_reason.c_str());
  std::fprintf(stderr, "tokens propagated to the last layer: %d of %d\n", st.propagated,
               st.n_prompt);
  std::string kept;
  for (size_t l = 0; l < st.kept_rows.size(); ++l) {
    kept += (l ? " " : "") + std::to_string(st.kept_rows[l]);
  }
  std::fprintf(stderr, "KV entries kept per layer (all heads): %s\n", kept.c_str());
  std::fprintf(stderr, "KV cache held after prefill: %s (%lld bytes)\n",
               human_bytes(r.kv_bytes).c_str(), static_cast<long long>(r.kv_bytes));
  std::fprintf(stderr, "prefill FLOPs: %.3g (linear %.3g, attention %.3g, scoring %.3g)\n",
               st.linear_flops + st.attention_flops + st.scoring_flops, st.linear_flops,
               st.attention_flops, st.scoring_flops);
  if (!f.json_out.empty()) {
    nlohmann::json j;
    j["model"] = f.model;
    j["model_name"] = model->config().name;
    j["n_layer"] = model->config().n_layer;
    j["backend"] = backend_name;
    j["method"] = f.method.method;
    j["options"] = f.method.options;
    if (tsp_source != TspLayerSource::kNotFastKV) {
      j["tsp_layer_source"] = tsp_layer_source_name(tsp_source);
    }
    j["prompt_tokens"] = r.n_prompt;
    j["generated_ids"] = r.tokens;
    j["text"] = r.text;
    j["finish_reason"] = r.finish_reason;
    j["ttft_s"] = r.ttft_s;
    j["prefill_tokens_per_s"] = prefill_tps;
    j["decode_s"] = r.decode_s;
    j["decode_steps"] = r.n_decode_steps;
    j["decode_tokens_per_s"] = decode_tps;
    j["kv_bytes"] = r.kv_bytes;
    j["live_tokens_per_layer"] = st.live_tokens;
    j["kept_rows_per_layer"] = st.kept_rows;
    j["propagated"] = st.propagated;
    j["linear_flops"] = st.linear_flops;
    j["attention_flops"] = st.attention_flops;
    j["scoring_flops"] = st.scoring_flops;
    std::ofstream out(f.json_out);
    out << j.dump(2) << "\n";
    if (!out) fail(f.json_out, ": cannot write");
  }
  if (!f.dump_selection.empty()) {
    SelectionDumpInput d;
    d.model_path = f.model;
    d.backend = backend_name;
    d.method = f.method.method;
    d.options = f.method.options;
    d.prompt = prompt;
    d.stats = &st;
    d.cache = &session.cache();
    d.first_logits = &r.first_logits;
    d.top_k = f.dump_top_k;
    d.tokenizer = tok;
    write_json(f.dump_selection, selection_dump(*model, d));
  }
}

}  // namespace

void register_run(CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand("run", "generate text from a prompt");
  cmd->add_option("-m,--model", f->model, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", f->prompt, "prompt text (escapes processed, see --no-escape)")
      ->each([f](const std::string&) { f->prompt_given = true; });
  cmd->add_option("-f,--file", f->file, "read the prompt from a file ('-' = standard input)");
  cmd->add_option("--ids", f->ids,
                  "prompt as token ids, \"1,2,3\" or \"[1, 2, 3]\" (fed as they are: no "
                  "tokenisation, no BOS added)")
      ->each([f](const std::string&) { f->ids_given = true; });
  cmd->add_option("--ids-file", f->ids_file,
                  "prompt as token ids from a JSON file: [1, 2, 3] or {\"ids\": [1, 2, 3]} "
                  "('-' = standard input)");
  add_no_escape_flag(cmd, f->no_escape);
  cmd->add_option("-n,--n-predict", f->n_predict, "tokens to generate")->capture_default_str();
  cmd->add_option("-c,--ctx-size", f->ctx_size, "context size (0 = the model's)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", f->threads, "threads (0 = all cores)");
  cmd->add_flag("--chat", f->chat, "wrap the prompt in the model's chat template");
  cmd->add_option("--system", f->system, "system message (with --chat)")
      ->each([f](const std::string&) { f->system_given = true; });
  cmd->add_option("--stop", f->stop, "stop string (repeatable)");
  cmd->add_flag("--ignore-eos", f->ignore_eos, "do not stop at end-of-generation tokens");
  cmd->add_option("--temp", f->sampling.temperature, "temperature (0 = greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", f->sampling.top_k, "top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", f->sampling.top_p, "top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", f->sampling.min_p, "min-p (0 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", f->sampling.repeat_penalty, "repetition penalty (1 = off)")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", f->sampling.repeat_last_n, "history for the penalty")
      ->capture_default_str();
  cmd->add_option("-s,--seed", f->sampling.seed, "random seed");
  cmd->add_option("--json", f->json_out, "also write the result and statistics as JSON");
  cmd->add_option("--dump-selection", f->dump_selection,
                  "write what the method selected in the prefill (propagated and kept positions, "
                  "top first-token logits) as JSON");
  cmd->add_option("--dump-top-k", f->dump_top_k, "logits in --dump-selection's top_logits")
      ->capture_default_str()
      ->each([f](const std::string&) { f->dump_top_k_given = true; });
  add_backend_option(cmd, f->backend);
  f->method.add_to(cmd);
  cmd->callback([f] { run(*f); });
}

}  // namespace fastkv::cli
