#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "common/error.h"
#include "eval/progress.h"
#include "eval/results.h"
#include "eval/task.h"
#include "runtime/chat_template.h"
#include "runtime/session.h"

namespace fastkv::eval {

std::vector<int32_t> tokenize_prompt(const Tokenizer& tok, const std::string& text, bool chat) {
  return tok.encode(text, /*add_special=*/true, /*parse_special=*/chat);
}

std::string chat_prompt(const Model& model, const std::string& user,
                        const std::string& assistant_prefix) {
  ChatTemplate tmpl = ChatTemplate::detect(model.file(), model.require_tokenizer());
  return tmpl.render({{"user", user}}, /*add_generation_prompt=*/true) + assistant_prefix;
}

nlohmann::json method_costs(const std::vector<MethodSpec>& methods,
                            const std::vector<nlohmann::json>& records) {
  nlohmann::json out = nlohmann::json::object();
  for (const MethodSpec& m : methods) {
    double kv = 0, ttft = 0, prompt = 0, decode_s = 0, decode_steps = 0;
    int n = 0;
    for (const auto& r : records) {
      if (r.value("method", "") != m.label) continue;
      kv += r.value("kv_bytes", 0.0);
      ttft += r.value("ttft_s", 0.0);
      prompt += r.value("prompt_tokens", 0.0);
      decode_s += r.value("decode_s", 0.0);
      decode_steps += r.value("decode_steps", 0.0);
      ++n;
    }
    nlohmann::json c;
    c["samples"] = n;
    c["mean_kv_bytes"] = n ? kv / n : 0.0;
    c["mean_ttft_s"] = n ? ttft / n : 0.0;
    c["mean_prompt_tokens"] = n ? prompt / n : 0.0;
    // decode steps over their time, all samples together (0 when nothing was decoded)
    c["decode_tok_s"] = decode_s > 0 ? decode_steps / decode_s : 0.0;
    out[m.label] = c;
  }
  return out;
}

std::string run_task(Task& task, const Model& model, const std::vector<MethodSpec>& methods,
                     const EvalSettings& settings, std::FILE* progress_out) {
  const std::string model_name = std::filesystem::path(settings.model_path).filename().string();
  nlohmann::json setup = task.setup();
  setup["model"] = model_name;
  // Results of the two backends differ slightly (bf16 rounding): never mix them in one file.
  setup["backend"] = kernels::backend_name(model.backend());
  if (settings.max_new_tokens > 0) setup["max_new_tokens"] = settings.max_new_tokens;
  ResultStore store(settings.out_dir + "/" + task.name() + ".jsonl", setup);

  std::vector<SampleSpec> samples = task.samples();
  int pending = 0;
  for (const SampleSpec& s : samples) {
    for (const MethodSpec& m : methods) pending += !store.done(m.label, s.id);
  }
  if (settings.no_run) {
    if (progress_out && pending > 0) {
      std::fprintf(progress_out, "%s: --no-run: %d runs not in %s are left out\n",
                   task.name().c_str(), pending, store.path().c_str());
    }
    pending = 0;
  }
  const int skipped = static_cast<int>(samples.size() * methods.size()) - pending;
  if (skipped > 0 && progress_out) {
    std::fprintf(progress_out, "%s: %d of %zu runs already in %s, skipped\n", task.name().c_str(),
                 skipped, samples.size() * methods.size(), store.path().c_str());
  }

  Progress progress(task.name(), pending, progress_out ? progress_out : stderr);
  const int n_layer = model.config().n_layer;
  for (const SampleSpec& s : samples) {
    if (settings.no_run) break;
    std::vector<const MethodSpec*> todo;
    for (const MethodSpec& m : methods) {
      if (!store.done(m.label, s.id)) todo.push_back(&m);
    }
    if (todo.empty()) continue;
    if (progress_out) progress.start(s.id + " (preparing)");
    BuiltPrompt p = task.build(s);
    for (const MethodSpec* m : todo) {
      if (progress_out) progress.start(m->label + " " + s.id);
      GenerationParams gp;
      gp.max_tokens = settings.max_new_tokens > 0
                          ? std::min(p.max_new_tokens, settings.max_new_tokens)
                          : p.max_new_tokens;
      gp.sampling.temperature = 0.0f;  // greedy
      gp.sampling.repeat_penalty = 1.0f;
      gp.stop = p.stop;
      gp.stop_at_eog = true;
      gp.ctx_size = settings.ctx_size;
      Session session(model, create_policy(*m, n_layer));
      GenerationResult r = session.generate(p.tokens, gp);
      nlohmann::json extra = nlohmann::json::object();
      const double score = task.score(s, p, r.text, &extra);

      nlohmann::json rec;
      rec["id"] = s.id;
      rec["method"] = m->label;
      rec["method_name"] = m->name;
      rec["options"] = m->options;
      for (const auto& [k, v] : s.meta.items()) rec[k] = v;
      for (const auto& [k, v] : p.info.items()) rec[k] = v;
      for (const auto& [k, v] : extra.items()) rec[k] = v;
      rec["prediction"] = r.text;
      rec["score"] = score;
      rec["prompt_tokens"] = r.n_prompt;
      rec["generated_tokens"] = r.tokens.size();
      rec["finish_reason"] = r.finish_reason;
      rec["kv_bytes"] = r.kv_bytes;
      rec["ttft_s"] = r.ttft_s;
      rec["decode_s"] = r.decode_s;
      rec["decode_steps"] = r.n_decode_steps;
      store.append(std::move(rec));
      if (progress_out) progress.step();
    }
  }
  if (progress_out && pending > 0) progress.finish();

  ReportInput in;
  in.out_dir = settings.out_dir;
  in.model = model_name;
  in.methods = methods;
  in.samples = samples;
  std::set<std::string> labels, ids;
  for (const MethodSpec& m : methods) labels.insert(m.label);
  for (const SampleSpec& s : samples) ids.insert(s.id);
  std::map<std::pair<std::string, std::string>, const nlohmann::json*> last;
  for (const auto& r : store.records()) {
    const std::string method = r["method"].get<std::string>(), id = r["id"].get<std::string>();
    if (labels.count(method) && ids.count(id)) last[{method, id}] = &r;
  }
  for (const SampleSpec& s : samples) {
    for (const MethodSpec& m : methods) {
      auto it = last.find({m.label, s.id});
      if (it != last.end()) in.records.push_back(*it->second);
    }
  }
  return task.report(in);
}

}  // namespace fastkv::eval
