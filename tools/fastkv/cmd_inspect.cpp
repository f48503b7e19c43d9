// fastkv inspect: a summary of a GGUF file (format, architecture, hyper-parameters, tensor
// types, tokenizer); --metadata lists every key, --tensors the tensor table.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "common/error.h"
#include "io/gguf.h"
#include "model/config.h"

namespace fastkv::cli {
namespace {

struct InspectFlags {
  std::string model;
  bool metadata = false;
  bool tensors = false;
};

std::string human_bytes(uint64_t b) {
  char buf[64];
  if (b >= (uint64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1 << 30));
  } else if (b >= (uint64_t{1} << 20)) {
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(b) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  }
  return buf;
}

std::string human_count(uint64_t n) {
  char buf[64];
  if (n >= 1000000000) {
    std::snprintf(buf, sizeof buf, "%.2f B", static_cast<double>(n) / 1e9);
  } else if (n >= 1000000) {
    std::snprintf(buf, sizeof buf, "%.2f M", static_cast<double>(n) / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f K", static_cast<double>(n) / 1e3);  // n >= 1000
  }
  return buf;
}

// A value for display: strings without quotes, everything else as to_string() renders it.
std::string show(const gguf::Value& v) {
  if (v.type == gguf::ValueType::STRING) {
    std::string s = v.str;
    for (char& ch : s) {
      if (static_cast<unsigned char>(ch) < 0x20) ch = ' ';  // one line, no terminal controls
    }
    return s.empty() ? "(empty)" : s;
  }
  return gguf::to_string(v);
}

std::string show_key(const gguf::File& f, const std::string& key) {
  const gguf::Value* v = f.find(key);
  return v ? show(*v) : "(none)";
}

void print_summary(const gguf::File& f, std::string& out) {
  out += cat("file: ", f.path(), "\n");
  out += cat("size: ", f.file_size(), " bytes (", human_bytes(f.file_size()), ")\n");
  out += cat("gguf version: ", f.version(), "\n");
  out += cat("alignment: ", f.alignment(), "\n");
  out += cat("metadata keys: ", f.metadata().size(), "\n");

  const gguf::Value* arch_value = f.find("general.architecture");
  std::string arch =
      arch_value && arch_value->type == gguf::ValueType::STRING ? arch_value->str : std::string();
  out += cat("architecture: ", arch_value ? show(*arch_value) : "(none)", "\n");
  out += cat("name: ", show_key(f, "general.name"), "\n");

  // Hyper-parameters of the architecture, in a fixed order, then any rope scaling keys.
  if (!arch.empty()) {
    static const char* const kHyper[] = {
        "context_length",
        "embedding_length",
        "block_count",
        "feed_forward_length",
        "attention.head_count",
        "attention.head_count_kv",
        "attention.key_length",
        "attention.value_length",
        "rope.freq_base",
        "attention.layer_norm_rms_epsilon",
        "attention.layer_norm_epsilon",
        "rope.dimension_count",
        "vocab_size",
        "attention.sliding_window",
        "attention.sliding_window_pattern",
        "rope.freq_base_swa",
    };
    std::string lines;
    for (const char* name : kHyper) {
      if (const gguf::Value* v = f.find(arch + "." + name)) {
        lines += cat("  ", name, ": ", show(*v), "\n");
      }
    }
    const std::string scaling = arch + ".rope.scaling.";
    for (const auto& [key, v] : f.metadata()) {
      if (key.compare(0, scaling.size(), scaling) == 0) {
        lines += cat("  ", key.substr(arch.size() + 1), ": ", show(v), "\n");
      }
    }
    out +=
        lines.empty() ? std::string("hyper-parameters: none\n") : cat("hyper-parameters:\n", lines);
    // A hybrid model (Gemma 3): which layers are local, as fastkv reads them. Files fastkv
    // cannot run are still summarised, without this line.
    try {
      const ModelConfig c = ModelConfig::from_gguf(f);
      if (c.sliding_window > 0) {
        int local = 0;
        double local_base = 0, global_base = 0;
        std::string global;
        for (int l = 0; l < c.n_layer; ++l) {
          if (c.layers[l].local()) {
            ++local;
            local_base = c.layers[l].rope_theta;
          } else {
            global += cat(global.empty() ? "" : ", ", l);
            global_base = c.layers[l].rope_theta;
          }
        }
        out += cat("layers: ", local, " local (window ", c.sliding_window, ", RoPE base ",
                   local_base, "), ", c.n_layer - local, " global (",
                   global.empty() ? std::string("none") : global, "; RoPE base ", global_base,
                   ")\n");
      }
    } catch (const Error&) {
    }
  }

  // Parameters and tensor types, most frequent type first.
  uint64_t params = 0, bytes = 0;
  std::map<std::string, int> by_type;
  for (const gguf::TensorInfo& t : f.tensors()) {
    params += static_cast<uint64_t>(t.n_elements());
    bytes += t.nbytes;
    ++by_type[gguf::type_name(t.type)];
  }
  std::vector<std::pair<std::string, int>> types(by_type.begin(), by_type.end());
  std::stable_sort(types.begin(), types.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  out += cat("parameters: ", params);
  if (params >= 1000) out += cat(" (", human_count(params), ")");
  out += "\n";
  std::string counts;
  for (const auto& [name, n] : types) counts += cat(counts.empty() ? "" : ", ", name, ": ", n);
  out += cat("tensors: ", f.tensors().size());
  if (!counts.empty()) out += cat(" (", counts, ")");
  if (!f.tensors().empty()) out += cat(", ", bytes, " bytes of data");
  out += "\n";

  // Tokenizer.
  const gguf::Value* model = f.find("tokenizer.ggml.model");
  if (!model) {
    out += "tokenizer: none\n";
    return;
  }
  out += cat("tokenizer: ", show(*model), "\n");
  out += cat("  pre: ", show_key(f, "tokenizer.ggml.pre"), "\n");
  const gguf::Value* tokens = f.find("tokenizer.ggml.tokens");
  out += cat("  vocab size: ",
             tokens && tokens->type == gguf::ValueType::ARRAY ? cat(tokens->arr.size())
                                                              : std::string("(no token list)"),
             "\n");
  if (const gguf::Value* merges = f.find("tokenizer.ggml.merges");
      merges && merges->type == gguf::ValueType::ARRAY) {
    out += cat("  merges: ", merges->arr.size(), "\n");
  }
  out += cat("  bos id: ", show_key(f, "tokenizer.ggml.bos_token_id"), "\n");
  out += cat("  eos id: ", show_key(f, "tokenizer.ggml.eos_token_id"), "\n");
}

void print_metadata(const gguf::File& f, std::string& out) {
  size_t width = 0;
  for (const auto& [key, v] : f.metadata()) width = std::max(width, key.size());
  out += cat("\nmetadata (", f.metadata().size(), " keys):\n");
  for (const auto& [key, v] : f.metadata()) {
    std::string line = "  " + key;
    line.resize(2 + width + 2, ' ');
    std::string type = gguf::value_type_name(v.type);
    type.resize(std::max<size_t>(type.size(), 6) + 2, ' ');
    out += line + type + gguf::to_string(v) + "\n";
  }
}

// Left-aligns (width > 0) or right-aligns (width < 0) `s` in a column.
std::string pad(std::string s, int width) {
  size_t w = static_cast<size_t>(width < 0 ? -width : width);
  if (s.size() >= w) return s;
  return width < 0 ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

void print_tensors(const gguf::File& f, std::string& out) {
  int width = 4;
  for (const gguf::TensorInfo& t : f.tensors()) {
    width = std::max(width, static_cast<int>(std::min<size_t>(t.name.size(), 200)));
  }
  out += cat("\ntensors (", f.tensors().size(), "; data section at byte ", f.data_offset(), "):\n");
  auto row = [&](const std::string& k, const std::string& name, const std::string& type,
                 const std::string& shape, const std::string& n, const std::string& offset,
                 const std::string& bytes) {
    out += cat("  ", pad(k, -5), "  ", pad(name, width), "  ", pad(type, 7), "  ", pad(shape, 22),
               "  ", pad(n, -12), "  ", pad(offset, -12), "  ", pad(bytes, -12), "\n");
  };
  row("#", "name", "type", "shape", "elements", "offset", "bytes");
  size_t k = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    row(cat(k++), t.name, gguf::type_name(t.type), t.shape_string(), cat(t.n_elements()),
        cat(t.offset), cat(t.nbytes));
  }
}

void inspect(const InspectFlags& flags) {
  gguf::File f = gguf::File::open(flags.model);
  std::string out;
  print_summary(f, out);
  if (flags.metadata) print_metadata(f, out);
  if (flags.tensors) print_tensors(f, out);
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto flags = std::make_shared<InspectFlags>();
  CLI::App* cmd = app.add_subcommand("inspect", "summarise a GGUF file");
  cmd->add_option("model", flags->model, "GGUF file")->required();
  cmd->add_flag("--metadata", flags->metadata, "list every metadata key and value");
  cmd->add_flag("--tensors", flags->tensors, "list every tensor");
  cmd->callback([flags] { inspect(*flags); });
}

}  // namespace fastkv::cli
