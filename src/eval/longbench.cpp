#include "eval/longbench.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/error.h"
#include "common/strings.h"
#include "eval/jsonl.h"
#include "eval/results.h"
#include "runtime/context.h"

namespace fastkv::eval {
namespace fs = std::filesystem;

// LongBench's dataset2prompt / dataset2maxlen / dataset2metric (English), as published.
const std::vector<LongBenchDataset>& longbench_datasets() {
  using M = LongBenchMetric;
  static const std::vector<LongBenchDataset> kSets = {
      {"narrativeqa", "Single-Doc QA",
       "You are given a story, which can be either a novel or a movie script, and a question. "
       "Answer the question asconcisely as you can, using a single phrase if possible. Do not "
       "provide any explanation.\n\nStory: {context}\n\nNow, answer the question based on the "
       "story asconcisely as you can, using a single phrase if possible. Do not provide any "
       "explanation.\n\nQuestion: {input}\n\nAnswer:",
       128, M::kQaF1, true, false},
      {"qasper", "Single-Doc QA",
       "You are given a scientific article and a question. Answer the question as concisely as "
       "you can, using a single phrase or sentence if possible. If the question cannot be "
       "answered based on the information in the article, write \"unanswerable\". If the "
       "question is a yes/no question, answer \"yes\", \"no\", or \"unanswerable\". Do not "
       "provide any explanation.\n\nArticle: {context}\n\n Answer the question based on the "
       "above article as concisely as you can, using a single phrase or sentence if possible. "
       "If the question cannot be answered based on the information in the article, write "
       "\"unanswerable\". If the question is a yes/no question, answer \"yes\", \"no\", or "
       "\"unanswerable\". Do not provide any explanation.\n\nQuestion: {input}\n\nAnswer:",
       128, M::kQaF1, true, false},
      {"multifieldqa_en", "Single-Doc QA",
       "Read the following text and answer briefly.\n\n{context}\n\nNow, answer the following "
       "question based on the above text, only give me the answer and do not output any other "
       "words.\n\nQuestion: {input}\nAnswer:",
       64, M::kQaF1, true, false},
      {"hotpotqa", "Multi-Doc QA",
       "Answer the question based on the given passages. Only give me the answer and do not "
       "output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the "
       "question based on the given passages. Only give me the answer and do not output any "
       "other words.\n\nQuestion: {input}\nAnswer:",
       32, M::kQaF1, true, false},
      {"2wikimqa", "Multi-Doc QA",
       "Answer the question based on the given passages. Only give me the answer and do not "
       "output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the "
       "question based on the given passages. Only give me the answer and do not output any "
       "other words.\n\nQuestion: {input}\nAnswer:",
       32, M::kQaF1, true, false},
      {"musique", "Multi-Doc QA",
       "Answer the question based on the given passages. Only give me the answer and do not "
       "output any other words.\n\nThe following are given passages.\n{context}\n\nAnswer the "
       "question based on the given passages. Only give me the answer and do not output any "
       "other words.\n\nQuestion: {input}\nAnswer:",
       32, M::kQaF1, true, false},
      {"gov_report", "Summarization",
       "You are given a report by a government agency. Write a one-page summary of the "
       "report.\n\nReport:\n{context}\n\nNow, write a one-page summary of the report.\n\n"
       "Summary:",
       512, M::kRougeL, true, false},
      {"qmsum", "Summarization",
       "You are given a meeting transcript and a query containing a question or instruction. "
       "Answer the query in one or more sentences.\n\nTranscript:\n{context}\n\nNow, answer the "
       "query based on the above meeting transcript in one or more sentences.\n\nQuery: "
       "{input}\nAnswer:",
       512, M::kRougeL, true, false},
      {"multi_news", "Summarization",
       "You are given several news passages. Write a one-page summary of all news. \n\nNews:\n"
       "{context}\n\nNow, write a one-page summary of all the news.\n\nSummary:",
       512, M::kRougeL, true, false},
      {"trec", "Few-shot",
       "Please determine the type of the question below. Here are some examples of questions."
       "\n\n{context}\n{input}",
       64, M::kClassification, false, true},
      {"triviaqa", "Few-shot",
       "Answer the question based on the given passage. Only give me the answer and do not "
       "output any other words. The following are some examples.\n\n{context}\n\n{input}",
       32, M::kQaF1, false, true},
      {"samsum", "Few-shot",
       "Summarize the dialogue into a few short sentences. The following are some examples.\n\n"
       "{context}\n\n{input}",
       128, M::kRougeL, false, true},
      {"passage_count", "Synthetic",
       "There are some paragraphs below sourced from Wikipedia. Some of them may be duplicates. "
       "Please carefully read these paragraphs and determine how many unique paragraphs there "
       "are after removing duplicates. In other words, how many non-repeating paragraphs are "
       "there in total?\n\n{context}\n\nPlease enter the final count of unique paragraphs "
       "after removing duplicates. The output format should only contain the number, such as "
       "1, 2, 3, and so on.\n\nThe final answer is: ",
       32, M::kCount, true, false},
      {"passage_retrieval_en", "Synthetic",
       "Here are 30 paragraphs from Wikipedia, along with an abstract. Please determine which "
       "paragraph the abstract is from.\n\n{context}\n\nThe following is an abstract.\n\n"
       "{input}\n\nPlease enter the number of the paragraph that the abstract is from. The "
       "answer format must be like \"Paragraph 1\", \"Paragraph 2\", etc.\n\nThe answer is: ",
       32, M::kRetrieval, true, false},
      {"lcc", "Code", "Please complete the code given below. \n{context}Next line of code:\n", 64,
       M::kCodeSim, false, false},
      {"repobench-p", "Code",
       "Please complete the code given below. \n{context}{input}Next line of code:\n", 64,
       M::kCodeSim, false, false},
  };
  return kSets;
}

const LongBenchDataset& longbench_dataset(const std::string& name) {
  for (const auto& d : longbench_datasets()) {
    if (name == d.name) return d;
  }
  std::vector<std::string> names;
  for (const auto& d : longbench_datasets()) names.push_back(d.name);
  fail("longbench: unknown dataset '", name, "' (English datasets: ", join(names, ", "), ")");
}

std::string longbench_prompt(const LongBenchDataset& d, const std::string& context,
                             const std::string& input) {
  const std::string tmpl = d.prompt;
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    if (tmpl.compare(i, 9, "{context}") == 0) {
      out += context;
      i += 9;
    } else if (tmpl.compare(i, 7, "{input}") == 0) {
      out += input;
      i += 7;
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

double longbench_sample_score(const LongBenchDataset& d, const std::string& prediction,
                              const std::vector<std::string>& answers,
                              const std::vector<std::string>& all_classes) {
  std::string pred = prediction;
  if (d.first_line) {
    size_t b = pred.find_first_not_of('\n');
    pred = b == std::string::npos ? "" : pred.substr(b);
    pred = pred.substr(0, pred.find('\n'));
  }
  double best = 0;
  for (const std::string& a : answers)
    best = std::max(best, longbench_metric(d.metric, pred, a, all_classes));
  return 100.0 * best;
}

std::vector<std::string> longbench_files_in(const std::string& dir,
                                            const std::vector<std::string>& names) {
  std::vector<std::string> out;
  if (!names.empty()) {
    for (const std::string& n : names) {
      longbench_dataset(n);  // validates the name
      const std::string f = dir + "/" + n + ".jsonl";
      if (!fs::exists(f)) fail(f, ": no such file (LongBench dataset '", n, "'; see --data)");
      out.push_back(f);
    }
    return out;
  }
  for (const auto& d : longbench_datasets()) {
    const std::string f = dir + "/" + d.name + ".jsonl";
    if (fs::exists(f)) out.push_back(f);
  }
  if (out.empty()) fail(dir, ": no LongBench <dataset>.jsonl files (see --data or --jsonl)");
  return out;
}

LongBenchTask::LongBenchTask(const Model& model, const EvalSettings& settings,
                             std::vector<std::string> files, int max_length)
    : model_(model), settings_(settings), files_(std::move(files)), max_length_(max_length) {
  if (files_.empty()) fail("longbench: no data files");
  if (max_length_ < 0) fail("--max-length must be >= 0, got ", max_length_);
}

nlohmann::json LongBenchTask::setup() const {
  return {{"task", "longbench"},
          {"max_length", max_length_},
          {"ctx", effective_context(model_, settings_.ctx_size)}};
}

std::vector<SampleSpec> LongBenchTask::samples() {
  std::vector<SampleSpec> out;
  records_.clear();
  for (const std::string& file : files_) {
    const std::string stem = fs::path(file).stem().string();
    std::map<std::string, int> taken;
    for_each_jsonl_record(file, "LongBench", {"context", "answers"}, [&](const nlohmann::json& j,
                                                                          int lineno) {
      Record r;
      r.dataset = j.value("dataset", stem);
      if (r.dataset.size() > 2 && r.dataset.compare(r.dataset.size() - 2, 2, "_e") == 0) {
        r.dataset.resize(r.dataset.size() - 2);  // LongBench-E records use the same settings
      }
      const LongBenchDataset& d = longbench_dataset(r.dataset);
      if (settings_.limit > 0 && taken[d.name] >= settings_.limit) return;
      ++taken[d.name];
      r.context = j["context"].get<std::string>();
      r.input = j.value("input", "");
      for (const auto& a : j["answers"])
        r.answers.push_back(a.is_string() ? a.get<std::string>() : a.dump());
      if (j.contains("all_classes") && j["all_classes"].is_array()) {
        for (const auto& c : j["all_classes"]) r.all_classes.push_back(c.get<std::string>());
      }
      r.id = std::string(d.name) + "/" + j.value("_id", std::to_string(lineno - 1));
      nlohmann::json meta = {{"dataset", d.name}, {"line", lineno}};
      if (j.contains("length")) meta["words"] = j["length"];
      out.push_back({r.id, meta});
      records_[r.id] = std::move(r);
    });
  }
  return out;
}

BuiltPrompt LongBenchTask::build(const SampleSpec& s) {
  const Record& r = records_.at(s.id);
  const LongBenchDataset& d = longbench_dataset(r.dataset);
  const Tokenizer& tok = model_.require_tokenizer();
  const int ctx = effective_context(model_, settings_.ctx_size);
  const int max_length = max_length_ > 0 ? max_length_ : ctx - d.max_new_tokens - 64;
  if (max_length < 16)
    fail("longbench: the context (", ctx, ") leaves no room for ", d.name, "'s prompt");

  std::string prompt = longbench_prompt(d, r.context, r.input);
  std::vector<int32_t> ids = tok.encode(prompt, /*add_special=*/false, /*parse_special=*/false);
  BuiltPrompt p;
  p.info["truncated"] = false;
  int limit = max_length;
  for (int attempt = 0; attempt < 6; ++attempt) {
    std::string text = prompt;
    if (static_cast<int>(ids.size()) > limit) {
      // LongBench keeps the first and the last half of the window.
      const int half = limit / 2;
      text = tok.decode(std::vector<int32_t>(ids.begin(), ids.begin() + half)) +
             tok.decode(std::vector<int32_t>(ids.end() - half, ids.end()));
      p.info["truncated"] = true;
    }
    const std::string full = d.chat ? chat_prompt(model_, text, "") : text;
    p.tokens = tokenize_prompt(tok, full, d.chat);
    const int room = ctx - d.max_new_tokens;
    if (static_cast<int>(p.tokens.size()) <= room || limit <= 16) break;
    limit -= static_cast<int>(p.tokens.size()) - room;  // the template or retokenising added some
  }
  p.info["prompt_tokens_before_truncation"] = ids.size();
  p.max_new_tokens = d.max_new_tokens;
  return p;
}

double LongBenchTask::score(const SampleSpec& s, const BuiltPrompt&, const std::string& prediction,
                            nlohmann::json*) {
  const Record& r = records_.at(s.id);
  return longbench_sample_score(longbench_dataset(r.dataset), prediction, r.answers, r.all_classes);
}

std::string LongBenchTask::report(const ReportInput& in) {
  std::vector<std::string> datasets;
  for (const auto& d : longbench_datasets()) {
    for (const SampleSpec& s : in.samples) {
      if (s.meta["dataset"] == d.name) {
        datasets.push_back(d.name);
        break;
      }
    }
  }
  const nlohmann::json costs = method_costs(in.methods, in.records);
  nlohmann::json out;
  out["task"] = "longbench";
  out["model"] = in.model;
  out["datasets"] = datasets;
  out["methods"] = nlohmann::json::object();

  std::vector<std::vector<std::string>> table;
  std::vector<std::string> head = {"method"};
  for (const auto& d : datasets) head.push_back(d);
  head.insert(head.end(), {"avg", "KV MiB", "TTFT s"});
  table.push_back(head);
  for (const MethodSpec& m : in.methods) {
    std::vector<std::string> row = {m.label};
    nlohmann::json jm;
    jm["method"] = m.name;
    jm["options"] = m.options;
    std::map<std::string, std::vector<double>> by_category;
    for (const std::string& ds : datasets) {
      std::vector<double> v;
      for (const auto& r : in.records) {
        if (r["method"] == m.label && r["dataset"] == ds) v.push_back(r["score"].get<double>());
      }
      row.push_back(fmt1(mean(v)));
      if (!v.empty()) {
        jm["datasets"][ds] = {{"score", mean(v)},
                              {"samples", v.size()},
                              {"metric", metric_name(longbench_dataset(ds).metric)}};
        by_category[longbench_dataset(ds).category].push_back(mean(v));
      }
    }
    std::vector<double> cat_means;
    for (const auto& [cat, v] : by_category) {
      jm["categories"][cat] = mean(v);
      cat_means.push_back(mean(v));
    }
    const double avg = mean(cat_means);
    jm["average"] = std::isnan(avg) ? nlohmann::json() : nlohmann::json(avg);
    jm["mean_kv_bytes"] = costs[m.label]["mean_kv_bytes"];
    jm["mean_ttft_s"] = costs[m.label]["mean_ttft_s"];
    jm["mean_prompt_tokens"] = costs[m.label]["mean_prompt_tokens"];
    jm["samples"] = costs[m.label]["samples"];
    out["methods"][m.label] = jm;
    row.push_back(fmt1(avg));
    row.push_back(fmt1(costs[m.label]["mean_kv_bytes"].get<double>() / 1048576.0));
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", costs[m.label]["mean_ttft_s"].get<double>());
    row.push_back(buf);
    table.push_back(row);
  }
  const std::string text = "longbench: " + in.model +
                           " (scores 0-100; avg = mean of the category means)\n" +
                           format_table(table);
  write_file(in.out_dir + "/longbench.txt", text);
  write_file(in.out_dir + "/longbench.json", out.dump(2) + "\n");
  return text;
}

}  // namespace fastkv::eval
