#include "token_ids_input.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "common/error.h"
#include "common/strings.h"

namespace fastkv::cli {
namespace {

constexpr int64_t kMaxId = std::numeric_limits<int32_t>::max();

// The parser's message on one line (it quotes what it last read, which may hold newlines).
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

std::vector<int32_t> parse_ids_text(const std::string& text) {
  std::string s = strip(text);
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = strip(s.substr(1, s.size() - 2));
  if (s.empty()) fail("--ids: the list of token ids is empty");
  std::vector<int32_t> ids;
  for (const std::string& raw : split(s, ",")) {
    const std::string t = strip(raw);
    if (t.empty()) fail("--ids: empty entry in '", text, "' (ids are separated by single commas)");
    // Decimal digits with an optional minus sign (which the range check then rejects).
    const size_t digits = t[0] == '-' ? 1 : 0;
    bool ok = t.size() > digits;
    for (size_t i = digits; i < t.size(); ++i) ok = ok && t[i] >= '0' && t[i] <= '9';
    if (!ok) fail("--ids: '", t, "' is not an integer token id");
    errno = 0;
    const long long v = std::strtoll(t.c_str(), nullptr, 10);
    if (errno == ERANGE || v < 0 || v > kMaxId) {
      fail("--ids: token id ", t, v < 0 ? " is negative" : " is too large");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

std::vector<int32_t> parse_ids_json(const std::string& json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::parse_error& e) {
    fail(source, ": not valid JSON (", one_line(e.what()), ")");
  }
  if (j.is_object()) {
    if (!j.contains("ids")) fail(source, ": a JSON object must have an \"ids\" array");
    j = j["ids"];
  }
  if (!j.is_array()) fail(source, ": expected a JSON array of token ids or {\"ids\": [...]}");
  if (j.empty()) fail(source, ": the list of token ids is empty");
  std::vector<int32_t> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& v = j[i];
    if (!v.is_number_integer()) {
      fail(source, ": entry ", i, " (",
           v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
           ") is not an integer token id");
    }
    if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(kMaxId)
                               : (v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxId)) {
      fail(source, ": entry ", i, " (", v.dump(), ") is ",
           v.is_number_unsigned() ? "too large" : "negative or too large", " for a token id");
    }
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

void check_ids_in_vocab(const std::vector<int32_t>& ids, int n_vocab, const std::string& flag) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= n_vocab) {
      fail(flag, ": token id ", ids[i], " (entry ", i, ") is outside the model's vocabulary [0, ",
           n_vocab, ")");
    }
  }
}

}  // namespace fastkv::cli
