// Reading evaluation data stored as JSON Lines (one JSON object per line).
#pragma once

#include <functional>
#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

namespace fastkv::eval {

// Calls fn(record, line_number) for each non-blank line of `path`, in order. A line that is
// not a JSON object holding every key in `required` (two keys in practice) fails with
// "<path>:<line>: not a <kind> record (needs "a" and "b")"; an unreadable file with
// "<path>: cannot read".
void for_each_jsonl_record(const std::string& path, const std::string& kind,
                           std::initializer_list<const char*> required,
                           const std::function<void(const nlohmann::json&, int)>& fn);

}  // namespace fastkv::eval
