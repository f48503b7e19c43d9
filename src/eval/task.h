// An evaluation task (niah, ruler, longbench) and the loop that runs it: every sample through
// every method with greedy decoding (Session::generate), each result appended to
// <out>/<task>.jsonl, samples already there skipped, then the task's report (<task>.json,
// <task>.txt, pictures) over all results of the requested methods and samples.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/methods.h"
#include "model/model.h"

namespace fastkv::eval {

// What every task shares.
struct EvalSettings {
  std::string out_dir;     // results, tables, pictures
  int ctx_size = 0;        // 0 = the model's training context
  bool chat = false;       // wrap prompts in the model's chat template (niah, ruler)
  int limit = 0;           // 0 = no limit; its meaning is the task's (see each task)
  int max_new_tokens = 0;  // 0 = the task's generation length; else at most this many
  bool no_run = false;     // only report what the JSONL already holds (missing cells stay empty)
  int samples = 1;         // niah: haystacks per (length, depth) cell, 1..kMaxNiahSamples
  std::string model_path;
};

// A sample as listed (cheap: no tokenisation yet).
struct SampleSpec {
  std::string id;       // unique within the task, e.g. "L4096/D50"
  nlohmann::json meta;  // copied into every record (length, depth, subtask, dataset, ...)
};

// A sample made ready to run.
struct BuiltPrompt {
  std::vector<int32_t> tokens;
  int max_new_tokens = 0;
  std::vector<std::string> stop;
  nlohmann::json info = nlohmann::json::object();  // copied into records (answers, ...)
};

struct ReportInput {
  std::string out_dir;
  std::string model;  // file name
  std::vector<MethodSpec> methods;
  std::vector<SampleSpec> samples;
  // The records of these methods and samples (this run's and earlier runs').
  std::vector<nlohmann::json> records;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  // What results depend on besides method and sample (checked when resuming).
  virtual nlohmann::json setup() const = 0;
  virtual std::vector<SampleSpec> samples() = 0;
  virtual BuiltPrompt build(const SampleSpec& s) = 0;
  // Score in [0, 100]; may add fields to `extra` (stored in the record).
  virtual double score(const SampleSpec& s, const BuiltPrompt& p, const std::string& prediction,
                       nlohmann::json* extra) = 0;
  // Writes <out>/<name>.json and <name>.txt (and pictures); returns the text table.
  virtual std::string report(const ReportInput& in) = 0;
};

// Runs the task; returns the text table. Progress goes to `progress_out`.
std::string run_task(Task& task, const Model& model, const std::vector<MethodSpec>& methods,
                     const EvalSettings& settings, std::FILE* progress_out = stderr);

// Shared pieces of the reports.
// Per method (label): mean KV bytes held after prefill, mean TTFT, mean prompt tokens, count.
nlohmann::json method_costs(const std::vector<MethodSpec>& methods,
                            const std::vector<nlohmann::json>& records);

// Tokenises a prompt for a model: BOS as the vocabulary asks; special tokens parsed only in
// chat-formatted text.
std::vector<int32_t> tokenize_prompt(const Tokenizer& tok, const std::string& text, bool chat);

// Wraps `user` in the model's chat template (generation prompt added) and appends
// `assistant_prefix` (the start of the answer).
std::string chat_prompt(const Model& model, const std::string& user,
                        const std::string& assistant_prefix);

}  // namespace fastkv::eval
