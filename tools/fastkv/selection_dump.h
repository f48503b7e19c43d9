// `run --dump-selection FILE`: what a method selected during one prefill, as JSON, for comparing
// against another implementation on the same token ids (docs/fastkv.md, "Comparing against
// another implementation"):
//   propagated  every point where the live set shrank: {pass, layer, restart, positions}
//   kept        [layer][cache head] the sorted original positions the cache held after prefill
//   top_logits  the k largest last-token logits of the prefill: {id, logit, text}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/kv_cache.h"
#include "method/options.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace fastkv::cli {

struct SelectionDumpInput {
  std::string model_path;
  std::string backend;
  std::string method;
  MethodOptions options;
  std::vector<int32_t> prompt;  // [N] the ids the prefill ran on
  const PrefillStats* stats = nullptr;
  // The session's cache, after the prefill (rows at positions >= stats->next_position, which
  // decoding appended, are left out, so it may also be read after generation).
  const KVCache* cache = nullptr;
  const std::vector<float>* first_logits = nullptr;  // [V] the prefill's last-token logits
  int top_k = 10;
  const Tokenizer* tokenizer = nullptr;  // optional: token texts in top_logits
};

nlohmann::json selection_dump(const Model& model, const SelectionDumpInput& in);

// Writes j to `path` (invalid UTF-8 in token texts replaced); throws fastkv::Error naming the
// file when it cannot be written.
void write_json(const std::string& path, const nlohmann::json& j);

}  // namespace fastkv::cli
