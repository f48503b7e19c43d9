// LongBench (Bai et al., 2023), English tasks: each dataset's official prompt template and
// generation length, the prompt cut in the middle to fit the model's window, the chat template
// except for trec/triviaqa/samsum/lcc/repobench-p, the first line only for
// trec/triviaqa/samsum, each dataset's metric (maximum over its answers), and the average as
// the mean of the category means.
//
// Samples: the records of each dataset's jsonl file in order; --limit N keeps the first N of
// each dataset.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "eval/metrics.h"
#include "eval/task.h"

namespace fastkv::eval {

struct LongBenchDataset {
  const char* name;
  const char* category;  // Single-Doc QA, Multi-Doc QA, Summarization, Few-shot, Synthetic, Code
  const char* prompt;    // template with {context} and {input}
  int max_new_tokens;
  LongBenchMetric metric;
  bool chat;        // wrap in the chat template
  bool first_line;  // score only the first line of the prediction
};

// The 16 English datasets, in LongBench's order.
const std::vector<LongBenchDataset>& longbench_datasets();
// Throws fastkv::Error listing the known names.
const LongBenchDataset& longbench_dataset(const std::string& name);

// The prompt of a record: {context} and {input} of the template replaced (once each, in the
// template only).
std::string longbench_prompt(const LongBenchDataset& d, const std::string& context,
                             const std::string& input);

// The score (0-100) of one prediction: post-processing, then the maximum over the answers.
double longbench_sample_score(const LongBenchDataset& d, const std::string& prediction,
                              const std::vector<std::string>& answers,
                              const std::vector<std::string>& all_classes);

class LongBenchTask : public Task {
 public:
  // `files`: jsonl files (dataset from each record's "dataset" field, else the file name).
  // max_length: prompt tokens before the chat template (0 = the context minus the dataset's
  // generation length minus 64 for the template).
  LongBenchTask(const Model& model, const EvalSettings& settings, std::vector<std::string> files,
                int max_length);
  std::string name() const override { return "longbench"; }
  nlohmann::json setup() const override;
  std::vector<SampleSpec> samples() override;
  BuiltPrompt build(const SampleSpec& s) override;
  double score(const SampleSpec& s, const BuiltPrompt& p, const std::string& prediction,
               nlohmann::json* extra) override;
  std::string report(const ReportInput& in) override;

 private:
  struct Record {
    std::string dataset, context, input, id;
    std::vector<std::string> answers, all_classes;
  };
  const Model& model_;
  EvalSettings settings_;
  std::vector<std::string> files_;
  int max_length_;
  std::map<std::string, Record> records_;  // by sample id
};

// The jsonl files of the English datasets found in `dir` (<name>.jsonl), in LongBench's order.
std::vector<std::string> longbench_files_in(const std::string& dir,
                                            const std::vector<std::string>& names);

}  // namespace fastkv::eval
