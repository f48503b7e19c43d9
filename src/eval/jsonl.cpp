#include "eval/jsonl.h"

#include <fstream>

#include "common/error.h"
#include "common/strings.h"

namespace fastkv::eval {

void for_each_jsonl_record(const std::string& path, const std::string& kind,
                           std::initializer_list<const char*> required,
                           const std::function<void(const nlohmann::json&, int)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot read");
  std::string needs;
  for (const char* key : required) {
    needs += (needs.empty() ? "" : " and ") + std::string("\"") + key + "\"";
  }
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (strip(line).empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    bool ok = !j.is_discarded() && j.is_object();
    for (const char* key : required) ok = ok && j.contains(key);
    if (!ok) fail(path, ":", lineno, ": not a ", kind, " record (needs ", needs, ")");
    fn(j, lineno);
  }
}

}  // namespace fastkv::eval
