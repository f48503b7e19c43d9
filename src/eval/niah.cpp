#include "eval/niah.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "eval/metrics.h"
#include "eval/plot.h"
#include "eval/results.h"
#include "runtime/context.h"

namespace fastkv::eval {
namespace fs = std::filesystem;

namespace {

bool is_ascii_space(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

std::string length_label(int tokens) {
  if (tokens % 1024 == 0) return std::to_string(tokens / 1024) + "K";
  return std::to_string(tokens);
}

}  // namespace

std::string load_essays(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": no such folder (the haystack essays; see --data)");
  const std::vector<std::string> files = files_with_extension(dir, ".txt");
  if (files.empty()) fail(dir, ": no *.txt essays");
  std::string all;
  for (const std::string& f : files) all += read_file(f);
  return all;
}

size_t needle_position(std::string_view text, size_t target) {
  if (target >= text.size()) return text.size();
  for (size_t pos = target; pos > 0; --pos) {
    // Text before `pos` must end a sentence: punctuation, then closing quotes/brackets.
    size_t q = pos;
    while (q > 0 && (text[q - 1] == '"' || text[q - 1] == '\'' || text[q - 1] == ')' ||
                     text[q - 1] == ']')) {
      --q;
    }
    if (q == 0) continue;
    const char end = text[q - 1];
    if (end != '.' && end != '!' && end != '?') continue;
    if (pos == text.size() || is_ascii_space(text[pos])) return pos;
  }
  return 0;
}

std::vector<int> default_niah_lengths(int ctx) {
  constexpr int kSteps = 8;
  const int lo = std::min(1024, ctx);
  std::vector<int> out;
  for (int i = 0; i < kSteps; ++i) {
    int v =
        i == kSteps - 1
            ? ctx
            : static_cast<int>(std::lround((lo + (ctx - lo) * i / double(kSteps - 1)) / 256.0)) *
                  256;
    v = std::clamp(v, 1, ctx);
    if (out.empty() || v > out.back()) out.push_back(v);
  }
  return out;
}

std::vector<int> default_niah_depths() {
  std::vector<int> out;
  for (int i = 0; i < 10; ++i) out.push_back(static_cast<int>(std::lround(100.0 * i / 9)));
  return out;
}

NiahTask::NiahTask(const Model& model, const EvalSettings& settings, std::vector<int> lengths,
                   std::vector<int> depths, std::string essay_dir)
    : model_(model),
      settings_(settings),
      lengths_(std::move(lengths)),
      depths_(std::move(depths)),
      essay_dir_(std::move(essay_dir)) {
  const int ctx = effective_context(model_, settings_.ctx_size);
  if (lengths_.empty()) lengths_ = default_niah_lengths(ctx);
  if (depths_.empty()) depths_ = default_niah_depths();
  for (int l : lengths_) {
    if (l < 64) fail("--lengths: ", l, " is too short (at least 64 tokens)");
    if (l > ctx) fail("--lengths: ", l, " is more than the context (", ctx, "; see -c/--ctx-size)");
  }
  for (int d : depths_) {
    if (d < 0 || d > 100) fail("--depths: ", d, " is not a percentage in 0..100");
  }
  if (settings_.samples < 1 || settings_.samples > kMaxNiahSamples) {
    fail("--samples must be in 1..", kMaxNiahSamples, " for niah, got ", settings_.samples);
  }
  essays_ = load_essays(essay_dir_);
}

nlohmann::json NiahTask::setup() const {
  return {{"task", "niah"},
          {"chat", settings_.chat},
          {"ctx", effective_context(model_, settings_.ctx_size)}};
}

std::vector<SampleSpec> NiahTask::samples() {
  std::vector<SampleSpec> out;
  for (int l : lengths_) {
    for (int d : depths_) {
      for (int s = 0; s < settings_.samples; ++s) {
        if (settings_.limit > 0 && static_cast<int>(out.size()) >= settings_.limit) return out;
        const std::string id = "L" + std::to_string(l) + "/D" + std::to_string(d) +
                               (s > 0 ? "/S" + std::to_string(s) : "");
        out.push_back({id, {{"length", l}, {"depth", d}, {"sample", s}}});
      }
    }
  }
  return out;
}

std::string NiahTask::make_prompt(const std::string& context) const {
  if (settings_.chat) {
    return chat_prompt(model_,
                       context +
                           "\n\nWhat is the best thing to do in San Francisco? Answer "
                           "from the text above.",
                       kNiahQuestion);
  }
  return context + "\n\n" + kNiahQuestion;
}

std::string_view NiahTask::essays_of(int s) {
  Hay& h = hay_[s];
  if (h.text.empty()) {
    size_t at = 0;
    if (s > 0) {
      // s/8 of the way in, moved on to the start of the next paragraph.
      at = essays_.size() * static_cast<size_t>(s) / kMaxNiahSamples;
      const size_t para = essays_.find("\n\n", at);
      at = para == std::string::npos ? 0 : para + 2;
    }
    h.text = essays_.substr(at) + (at > 0 ? "\n\n" + essays_.substr(0, at) : "");
  }
  return h.text;
}

const std::vector<int32_t>& NiahTask::haystack_tokens(int s, size_t n) {
  const Tokenizer& tok = model_.require_tokenizer();
  const std::string_view text = essays_of(s);
  Hay& h = hay_[s];
  while (h.tokens.size() < n && h.chars_used < text.size()) {
    // Tokenise a prefix of the essays large enough for n tokens (about 4 bytes per token,
    // doubled until it is enough).
    size_t want = std::max<size_t>(h.chars_used * 2, n * 6 + 1024);
    h.chars_used = std::min(text.size(), want);
    h.tokens = tok.encode(text.substr(0, h.chars_used), /*add_special=*/false,
                          /*parse_special=*/false);
  }
  return h.tokens;
}

BuiltPrompt NiahTask::build(const SampleSpec& s) {
  const Tokenizer& tok = model_.require_tokenizer();
  const int length = s.meta["length"].get<int>();
  const int depth = s.meta["depth"].get<int>();
  const int sample = s.meta.value("sample", 0);
  const int ctx = effective_context(model_, settings_.ctx_size);
  const int budget = std::min(length, ctx - kNiahMaxNewTokens);

  const int overhead =
      static_cast<int>(tokenize_prompt(tok, make_prompt(kNiahNeedle), settings_.chat).size());
  int k = std::max(0, budget - overhead);
  const std::vector<int32_t>& hay = haystack_tokens(sample, static_cast<size_t>(k) + 64);
  BuiltPrompt p;
  std::string context;
  size_t insert_at = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    k = std::clamp(k, 0, static_cast<int>(hay.size()));
    std::vector<int32_t> used(hay.begin(), hay.begin() + k);
    const std::string text = tok.decode(used);
    size_t target = text.size();
    if (depth < 100) {
      const int at_token = static_cast<int>(std::lround(k * depth / 100.0));
      target = tok.decode(std::vector<int32_t>(hay.begin(), hay.begin() + at_token)).size();
      target = std::min(target, text.size());
      insert_at = needle_position(text, target);
    } else {
      insert_at = text.size();
    }
    context = text.substr(0, insert_at) + kNiahNeedle + text.substr(insert_at);
    p.tokens = tokenize_prompt(tok, make_prompt(context), settings_.chat);
    const int n = static_cast<int>(p.tokens.size());
    if (n <= budget || k == 0) {
      p.info["haystack_tokens"] = k;
      p.info["needle_char"] = insert_at;
      p.info["needle_depth_actual"] =
          text.empty() ? 0.0
                       : 100.0 * static_cast<double>(insert_at) / static_cast<double>(text.size());
      break;
    }
    k -= n - budget;  // retokenising moved a few tokens; trim and retry
  }
  if (static_cast<int>(p.tokens.size()) > budget) {
    fail("niah: cannot fit length ", length, " (the prompt alone takes ", p.tokens.size(),
         " tokens)");
  }
  p.max_new_tokens = kNiahMaxNewTokens;
  return p;
}

double NiahTask::score(const SampleSpec&, const BuiltPrompt&, const std::string& prediction,
                       nlohmann::json*) {
  return 100.0 * niah_word_score(prediction, kNiahAnswer);
}

std::string NiahTask::report(const ReportInput& in) {
  // grid[method][depth index][length index]
  auto li = [&](int l) {
    return std::find(lengths_.begin(), lengths_.end(), l) - lengths_.begin();
  };
  auto di = [&](int d) { return std::find(depths_.begin(), depths_.end(), d) - depths_.begin(); };
  const nlohmann::json costs = method_costs(in.methods, in.records);

  nlohmann::json out;
  out["task"] = "niah";
  out["model"] = in.model;
  out["lengths"] = lengths_;
  out["depths"] = depths_;
  out["needle"] = kNiahNeedle;
  out["question"] = kNiahQuestion;
  out["chat"] = settings_.chat;
  out["methods"] = nlohmann::json::object();

  Heatmap hm;
  hm.title = "Needle in a haystack: " + in.model;
  hm.x_title = "context length (tokens)";
  hm.y_title = "needle depth (%)";
  hm.colorbar_title = "score";
  for (int l : lengths_) hm.col_labels.push_back(length_label(l));
  for (int d : depths_) hm.row_labels.push_back(std::to_string(d));

  std::vector<std::vector<std::string>> table;
  std::vector<std::string> head = {"method"};
  for (int l : lengths_) head.push_back(length_label(l));
  head.insert(head.end(), {"avg", "KV MiB", "TTFT s", "tg t/s", "n"});
  table.push_back(head);
  std::string grids;

  for (const MethodSpec& m : in.methods) {
    // A cell is the mean over its samples (those of sample index < --samples).
    std::vector<std::vector<double>> sum(depths_.size(), std::vector<double>(lengths_.size(), 0));
    std::vector<std::vector<int>> count(depths_.size(), std::vector<int>(lengths_.size(), 0));
    std::vector<double> all;
    for (const auto& r : in.records) {
      if (r["method"] != m.label) continue;
      if (r.value("sample", 0) >= settings_.samples) continue;
      auto l = li(r["length"].get<int>());
      auto d = di(r["depth"].get<int>());
      if (l >= static_cast<long>(lengths_.size()) || d >= static_cast<long>(depths_.size()))
        continue;
      sum[d][l] += r["score"].get<double>();
      ++count[d][l];
      all.push_back(r["score"].get<double>());
    }
    std::vector<std::vector<double>> grid(depths_.size(),
                                          std::vector<double>(lengths_.size(), std::nan("")));
    for (size_t d = 0; d < depths_.size(); ++d) {
      for (size_t l = 0; l < lengths_.size(); ++l) {
        if (count[d][l] > 0) grid[d][l] = sum[d][l] / count[d][l];
      }
    }
    std::vector<std::string> row = {m.label};
    nlohmann::json by_length = nlohmann::json::object();
    for (size_t l = 0; l < lengths_.size(); ++l) {
      std::vector<double> col;
      for (size_t d = 0; d < depths_.size(); ++d) {
        if (!std::isnan(grid[d][l])) col.push_back(grid[d][l]);
      }
      row.push_back(fmt1(mean(col)));
      if (!col.empty()) by_length[std::to_string(lengths_[l])] = mean(col);
    }
    const nlohmann::json& c = costs[m.label];
    row.push_back(fmt1(mean(all)));
    row.push_back(fmt1(c["mean_kv_bytes"].get<double>() / 1048576.0));
    char ttft[32];
    std::snprintf(ttft, sizeof ttft, "%.2f", c["mean_ttft_s"].get<double>());
    row.push_back(ttft);
    row.push_back(fmt1(c["decode_tok_s"].get<double>()));
    row.push_back(std::to_string(all.size()));
    table.push_back(row);

    nlohmann::json jm;
    jm["method"] = m.name;
    jm["options"] = m.options;
    nlohmann::json jgrid = nlohmann::json::array();
    for (const auto& gr : grid) {
      nlohmann::json jr = nlohmann::json::array();
      for (double v : gr) jr.push_back(std::isnan(v) ? nlohmann::json() : nlohmann::json(v));
      jgrid.push_back(jr);
    }
    jm["scores"] = jgrid;  // [depth][length]
    jm["mean"] = all.empty() ? nlohmann::json() : nlohmann::json(mean(all));
    jm["mean_by_length"] = by_length;
    jm["samples"] = all.size();
    jm["mean_kv_bytes"] = c["mean_kv_bytes"];
    jm["mean_ttft_s"] = c["mean_ttft_s"];
    jm["decode_tok_s"] = c["decode_tok_s"];
    jm["mean_prompt_tokens"] = c["mean_prompt_tokens"];
    out["methods"][m.label] = jm;

    hm.panels.push_back({m.label, "mean " + fmt1(mean(all)), grid});

    std::vector<std::vector<std::string>> g = {{"depth \\ length"}};
    for (int l : lengths_) g[0].push_back(length_label(l));
    for (size_t d = 0; d < depths_.size(); ++d) {
      std::vector<std::string> gr = {std::to_string(depths_[d]) + "%"};
      for (size_t l = 0; l < lengths_.size(); ++l) gr.push_back(fmt1(grid[d][l]));
      g.push_back(gr);
    }
    grids += "\n" + m.label + "\n" + format_table(g);
  }

  const std::string text =
      "niah: " + in.model + " (score 0-100, mean over depths)\n" + format_table(table) + grids;
  write_file(in.out_dir + "/niah.txt", text);
  write_file(in.out_dir + "/niah.json", out.dump(2) + "\n");
  write_heatmap_png(in.out_dir + "/niah.png", hm);
  return text;
}

}  // namespace fastkv::eval
