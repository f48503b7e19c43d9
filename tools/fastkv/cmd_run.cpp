// fastkv run: generate text from a prompt; text on stdout, statistics on stderr.
#include <omp.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "commands.h"
#include "common/error.h"
#include "flag_lists.h"
#include "method_options.h"
#include "model/model.h"
#include "runtime/chat_template.h"
#include "runtime/session.h"

namespace fastkv::cli {
namespace {

struct RunFlags {
  std::string model, prompt, file, system, json_out, backend = "f32";
  bool prompt_given = false;
  int n_predict = 128;
  int ctx_size = 0;
  int threads = 0;
  bool chat = false, ignore_eos = false;
  std::vector<std::string> stop;
  SamplingParams sampling;
  MethodFlags method;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot read the prompt file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string human_bytes(int64_t b) {
  char buf[64];
  if (b >= (int64_t{1} << 20)) {
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  }
  return buf;
}

void run(RunFlags& f) {
  if (f.prompt_given == !f.file.empty()) fail("give exactly one of -p/--prompt and -f/--file");
  if (f.n_predict < 0) fail("-n/--n-predict must be >= 0, got ", f.n_predict);
  if (f.ctx_size < 0) fail("-c/--ctx-size must be >= 0, got ", f.ctx_size);
  if (f.threads < 0) fail("-t/--threads must be >= 0, got ", f.threads);
  f.sampling.validate();
  f.method.collect();
  if (f.threads > 0) omp_set_num_threads(f.threads);
  std::string text = f.prompt_given ? f.prompt : read_text_file(f.file);
  if (text.empty()) fail("the prompt is empty");

  LoadOptions load;
  load.backend = parse_backend(f.backend);
  auto model = Model::load(f.model, load);
  const Tokenizer& tok = model->require_tokenizer();
  // Validate the method before the (possibly long) tokenisation and prefill.
  auto policy = PolicyRegistry::instance().create(f.method.method, f.method.options,
                                                  model->config().n_layer);
  if (f.chat) {
    ChatTemplate tmpl = ChatTemplate::detect(model->file(), tok);
    std::vector<ChatMessage> msgs;
    if (!f.system.empty()) msgs.push_back({"system", f.system});
    msgs.push_back({"user", text});
    text = tmpl.render(msgs, true);
  }
  std::vector<int32_t> prompt = tok.encode(text, /*add_special=*/true, /*parse_special=*/true);
  Session::check_context(*model, prompt.size(), f.ctx_size);

  GenerationParams gp;
  gp.max_tokens = f.n_predict;
  gp.sampling = f.sampling;
  gp.stop = f.stop;
  gp.stop_at_eog = !f.ignore_eos;
  gp.ctx_size = f.ctx_size;
  Session session(*model, std::move(policy));
  GenerationResult r = session.generate(prompt, gp, [](const std::string& chunk) {
    std::fwrite(chunk.data(), 1, chunk.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  std::printf("\n");
  std::fflush(stdout);

  const PrefillStats& st = r.prefill;
  std::fprintf(stderr, "\nmethod: %s\n", f.method.method.c_str());
  std::fprintf(stderr, "prompt tokens: %d\n", r.n_prompt);
  std::fprintf(stderr, "time to first token: %.1f ms\n", r.ttft_s * 1e3);
  std::fprintf(stderr, "prefill: %.1f tokens/s\n", r.ttft_s > 0 ? r.n_prompt / r.ttft_s : 0.0);
  std::fprintf(stderr, "decode: %.1f tokens/s (%d tokens)\n",
               r.decode_s > 0 ? r.n_decode_steps / r.decode_s : 0.0, r.n_decode_steps);
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
    j["method"] = f.method.method;
    j["options"] = f.method.options;
    j["prompt_tokens"] = r.n_prompt;
    j["generated_ids"] = r.tokens;
    j["text"] = r.text;
    j["finish_reason"] = r.finish_reason;
    j["ttft_s"] = r.ttft_s;
    j["decode_s"] = r.decode_s;
    j["decode_steps"] = r.n_decode_steps;
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
}

}  // namespace

void register_run(CLI::App& app) {
  auto f = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand("run", "generate text from a prompt");
  cmd->add_option("-m,--model", f->model, "GGUF model file")->required();
  cmd->add_option("-p,--prompt", f->prompt, "prompt text")->each([f](const std::string&) {
    f->prompt_given = true;
  });
  cmd->add_option("-f,--file", f->file, "read the prompt from a file");
  cmd->add_option("-n,--n-predict", f->n_predict, "tokens to generate")->capture_default_str();
  cmd->add_option("-c,--ctx-size", f->ctx_size, "context size (0 = the model's)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", f->threads, "threads (0 = all cores)");
  cmd->add_flag("--chat", f->chat, "wrap the prompt in the model's chat template");
  cmd->add_option("--system", f->system, "system message (with --chat)");
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
  add_backend_option(cmd, f->backend);
  f->method.add_to(cmd);
  cmd->callback([f] { run(*f); });
}

}  // namespace fastkv::cli
