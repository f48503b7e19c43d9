#include "server/openai.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <exception>

#include "common/error.h"
#include "runtime/context.h"

namespace fastkv::server {
namespace {

using json = nlohmann::json;

ApiError bad(const std::string& param, const std::string& message,
             const std::string& code = "invalid_value") {
  return ApiError(400, message, param, code);
}

// A JSON value for an error message, cut to a readable length.
std::string shown(const json& v) {
  std::string s = dump(v);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

const char* type_name(const json& v) {
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

ApiError wrong_type(const std::string& param, const char* expected, const json& v) {
  return bad(param, cat("'", param, "' must be ", expected, ", got ", type_name(v)),
             "invalid_type");
}

// The field's value, or nullptr when it is absent or null (OpenAI treats both the same).
const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

double number(const json& v, const std::string& param) {
  if (!v.is_number()) throw wrong_type(param, "a number", v);
  return v.get<double>();
}

// Integers; a float with an integral value (5.0, as some clients send) counts as one.
int64_t integer(const json& v, const std::string& param) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      throw bad(param, cat("'", param, "' is out of range, got ", shown(v)));
    }
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<int64_t>(d);
    }
  }
  throw wrong_type(param, "an integer", v);
}

bool boolean(const json& v, const std::string& param) {
  if (!v.is_boolean()) throw wrong_type(param, "a boolean", v);
  return v.get<bool>();
}

std::string string(const json& v, const std::string& param) {
  if (!v.is_string()) throw wrong_type(param, "a string", v);
  return v.get<std::string>();
}

// A kv_compression value as it is in the JSON: an integer, a number or a text; the method's
// schema checks it (a number given as text is parsed there, as on the command line).
OptionValue option_value(const json& v, const std::string& param) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      throw bad(param, cat("'", param, "' is out of range, got ", shown(v)));
    }
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) return v.get<double>();
  if (v.is_string()) return v.get<std::string>();
  throw wrong_type(param, "a number or a string", v);
}

// Options in the types of the method's schema (8.0 -> 8 for an integer, "0.2" -> 0.2 for a
// number), as the response echoes them; left as they are where the method is unknown or
// refuses them (make_policy then reports it).
OptionValues typed(const std::string& method, const OptionValues& values) {
  try {
    return check_options(method, MethodRegistry::instance().method(method).options, values)
        .values();
  } catch (const Error&) {
    return values;
  }
}

}  // namespace

OptionValues typed_options(const std::string& method, const MethodOptions& text) {
  OptionValues v;
  for (const auto& [k, t] : text) v[k] = t;
  return typed(method, v);
}

namespace {

std::vector<std::string> parse_stop(const json& v) {
  std::vector<std::string> stops;
  if (v.is_string()) {
    stops.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > 4) throw bad("stop", cat("'stop' takes at most 4 strings, got ", v.size()));
    for (const json& s : v) {
      if (!s.is_string()) throw wrong_type("stop", "a string or an array of strings", v);
      stops.push_back(s.get<std::string>());
    }
  } else {
    throw wrong_type("stop", "a string or an array of strings", v);
  }
  std::erase_if(stops, [](const std::string& s) { return s.empty(); });
  return stops;
}

std::string parse_prompt(const json& body) {
  const json* p = field(body, "prompt");
  if (!p) throw bad("prompt", "'prompt' is required", "missing_required_parameter");
  std::string prompt;
  if (p->is_string()) {
    prompt = p->get<std::string>();
  } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
    prompt = (*p)[0].get<std::string>();
  } else if (p->is_array()) {
    throw bad("prompt",
              "'prompt' must be one string (batches and token arrays are not "
              "supported)");
  } else {
    throw wrong_type("prompt", "a string", *p);
  }
  if (prompt.empty()) throw bad("prompt", "'prompt' is empty");
  return prompt;
}

std::vector<ChatMessage> parse_messages(const json& body) {
  const json* m = field(body, "messages");
  if (!m) throw bad("messages", "'messages' is required", "missing_required_parameter");
  if (!m->is_array()) throw wrong_type("messages", "an array", *m);
  if (m->empty()) throw bad("messages", "'messages' is empty");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = (*m)[i];
    const std::string where = cat("messages[", i, "]");
    if (!msg.is_object()) throw wrong_type(where, "an object", msg);
    const json* role_v = field(msg, "role");
    if (!role_v) throw bad(where + ".role", cat("'", where, ".role' is required"));
    std::string role = string(*role_v, where + ".role");
    if (role == "developer") role = "system";  // OpenAI's newer name for system messages
    if (role != "system" && role != "user" && role != "assistant") {
      throw bad(where + ".role", cat("'", where,
                                     ".role' must be system, user, assistant or "
                                     "developer, got '",
                                     role, "'"));
    }
    std::string content;
    const json* c = field(msg, "content");
    if (!c) {
      if (role != "assistant") {
        throw bad(where + ".content", cat("'", where, ".content' is required"));
      }
    } else if (c->is_string()) {
      content = c->get<std::string>();
    } else if (c->is_array()) {
      // Content parts: only text parts, joined with newlines.
      for (size_t k = 0; k < c->size(); ++k) {
        const json& part = (*c)[k];
        const std::string pw = cat(where, ".content[", k, "]");
        if (!part.is_object()) throw wrong_type(pw, "an object", part);
        const json* type = field(part, "type");
        if (!type || !type->is_string() || type->get<std::string>() != "text") {
          throw bad(pw + ".type", cat("'", pw, ".type' must be 'text' (only text is supported)"));
        }
        const json* text = field(part, "text");
        if (!text) throw bad(pw + ".text", cat("'", pw, ".text' is required"));
        if (k) content += "\n";
        content += string(*text, pw + ".text");
      }
    } else {
      throw wrong_type(where + ".content", "a string or an array of content parts", *c);
    }
    out.push_back({role, content});
  }
  return out;
}

void parse_kv_compression(const json& body, const MethodDefaults& d, CompletionRequest& r) {
  r.method = d.method;
  r.options = typed_options(d.method, d.options);
  const json* kv = field(body, "kv_compression");
  if (!kv) return;
  if (kv->is_string()) {  // shorthand: "kv_compression": "fastkv" (that method's defaults)
    r.method = kv->get<std::string>();
    if (r.method != d.method) r.options.clear();
    (void)apply_calibration(d.calibration, r.method, r.options);
    return;
  }
  if (!kv->is_object()) throw wrong_type("kv_compression", "an object or a method name", *kv);
  OptionValues given;
  std::string method;
  for (const auto& [key, value] : kv->items()) {
    if (value.is_null()) continue;
    const std::string param = "kv_compression." + key;
    if (key == "method") {
      method = string(value, param);
    } else {
      given[key] = option_value(value, param);
    }
  }
  // Another method than the server's starts from that method's own defaults; the server's
  // method keeps the server's options, overridden key by key.
  if (!method.empty() && method != d.method) {
    r.method = method;
    r.options.clear();
  }
  for (auto& [k, v] : given) r.options[k] = v;
  (void)apply_calibration(d.calibration, r.method, r.options);
  r.options = typed(r.method, r.options);
}

void parse_stream(const json& body, CompletionRequest& r) {
  if (const json* v = field(body, "stream")) r.stream = boolean(*v, "stream");
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw wrong_type("stream_options", "an object", *so);
    if (const json* v = field(*so, "include_usage")) {
      r.include_usage = boolean(*v, "stream_options.include_usage");
    }
  }
}

// max_tokens (or max_completion_tokens), stop, ignore_eos.
void parse_length(const json& body, Endpoint endpoint, GenerationParams& gen) {
  gen.max_tokens = endpoint == Endpoint::kCompletions ? kDefaultCompletionMaxTokens : INT_MAX;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (const json* v = field(body, key)) {
      int64_t n = integer(*v, key);
      if (n < 0) throw bad(key, cat("'", key, "' must be >= 0, got ", n));
      gen.max_tokens = static_cast<int>(std::min<int64_t>(n, INT_MAX));
    }
  }
  if (const json* v = field(body, "stop")) gen.stop = parse_stop(*v);
  if (const json* v = field(body, "ignore_eos")) gen.stop_at_eog = !boolean(*v, "ignore_eos");
}

// A number field checked by `ok`, which the message `range` describes ("in [0, 2]").
void number_field(const json& body, const char* key, bool (*ok)(double), const char* range,
                  float& out) {
  if (const json* v = field(body, key)) {
    const double x = number(*v, key);
    if (!ok(x)) throw bad(key, cat("'", key, "' must be ", range, ", got ", x));
    out = static_cast<float>(x);
  }
}

// Sampling with OpenAI's defaults: temperature 1, top_p 1, nothing else.
SamplingParams parse_sampling(const json& body, uint64_t fallback_seed) {
  SamplingParams s;
  s.temperature = 1.0f;
  s.top_p = 1.0f;
  s.top_k = 0;
  s.min_p = 0.0f;
  s.repeat_penalty = 1.0f;
  s.seed = fallback_seed;
  number_field(
      body, "temperature", [](double t) { return t >= 0 && t <= 2; }, "in [0, 2]", s.temperature);
  number_field(
      body, "top_p", [](double p) { return p > 0 && p <= 1; }, "in (0, 1]", s.top_p);
  if (const json* v = field(body, "top_k")) {
    int64_t k = integer(*v, "top_k");
    if (k < 0 || k > INT_MAX) throw bad("top_k", cat("'top_k' must be >= 0, got ", k));
    s.top_k = static_cast<int>(k);
  }
  number_field(
      body, "min_p", [](double p) { return p >= 0 && p < 1; }, "in [0, 1)", s.min_p);
  number_field(
      body, "repeat_penalty", [](double p) { return p > 0 && std::isfinite(p) && p <= 1e6; }, "> 0",
      s.repeat_penalty);
  if (const json* v = field(body, "repeat_last_n")) {
    int64_t n = integer(*v, "repeat_last_n");
    if (n < 0 || n > INT_MAX)
      throw bad("repeat_last_n", cat("'repeat_last_n' must be >= 0, got ", n));
    s.repeat_last_n = static_cast<int>(n);
  }
  if (const json* v = field(body, "seed")) {
    if (v->is_number_unsigned()) {
      s.seed = v->get<uint64_t>();
    } else {
      s.seed = static_cast<uint64_t>(integer(*v, "seed"));
    }
  }
  return s;
}

// OpenAI features this server does not have: refused rather than silently ignored.
void reject_unsupported(const json& body) {
  if (const json* v = field(body, "n")) {
    if (integer(*v, "n") != 1) throw bad("n", "only 'n': 1 is supported");
  }
  if (const json* v = field(body, "best_of")) {
    if (integer(*v, "best_of") != 1) throw bad("best_of", "only 'best_of': 1 is supported");
  }
  if (const json* v = field(body, "echo")) {
    if (boolean(*v, "echo")) throw bad("echo", "'echo' is not supported");
  }
  if (const json* v = field(body, "suffix")) {
    if (!string(*v, "suffix").empty()) throw bad("suffix", "'suffix' is not supported");
  }
  // Tool calls are not implemented: a request that offers tools would get plain text back.
  for (const char* key : {"tools", "tool_choice", "functions", "function_call"}) {
    if (field(body, key)) {
      throw bad(key, cat("'", key, "' is not supported: this server does not make tool calls"),
                "unsupported_parameter");
    }
  }
  // Structured output would need constrained decoding, which this server does not do.
  if (const json* v = field(body, "response_format")) {
    if (!v->is_object()) throw wrong_type("response_format", "an object", *v);
    const json* type = field(*v, "type");
    if (!type) throw bad("response_format.type", "'response_format.type' is required");
    const std::string t = string(*type, "response_format.type");
    if (t == "json_object" || t == "json_schema") {
      throw bad("response_format",
                cat("'response_format' type '", t,
                    "' is not supported: this server has no constrained decoding; only 'text' is"),
                "unsupported_parameter");
    }
    if (t != "text") {
      throw bad("response_format.type",
                cat("'response_format.type' must be 'text', 'json_object' or 'json_schema', got '",
                    t, "'"));
    }
  }
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (const json* v = field(body, key)) {
      double p = number(*v, key);
      if (!(p >= -2 && p <= 2)) throw bad(key, cat("'", key, "' must be in [-2, 2], got ", p));
      if (p != 0) {
        throw bad(key, cat("'", key,
                           "' is not supported (use 'repeat_penalty'); only 0 is "
                           "accepted"));
      }
    }
  }
}

int top_count(const json& v, const char* key) {
  const int64_t n = integer(v, key);
  if (n < 0 || n > kMaxTopLogprobs) {
    throw bad(key, cat("'", key, "' must be in [0, ", kMaxTopLogprobs, "], got ", n));
  }
  return static_cast<int>(n);
}

// Completions: "logprobs": N (alternatives per token). Chat: "logprobs": true, and
// "top_logprobs": N, which needs logprobs.
void parse_logprobs(const json& body, Endpoint endpoint, CompletionRequest& r) {
  const json* lp = field(body, "logprobs");
  const json* top = field(body, "top_logprobs");
  if (endpoint == Endpoint::kCompletions) {
    if (top) throw bad("top_logprobs", "'top_logprobs' is for chat; completions take 'logprobs': N");
    if (lp) {
      r.logprobs = true;
      r.gen.logprobs = top_count(*lp, "logprobs");
    }
    return;
  }
  if (lp) r.logprobs = boolean(*lp, "logprobs");
  if (top) {
    const int n = top_count(*top, "top_logprobs");
    if (!r.logprobs) throw bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    r.gen.logprobs = n;
  } else if (r.logprobs) {
    r.gen.logprobs = 0;
  }
}

// {"<token id>": bias in [-100, 100], ...}; ids are checked against the vocabulary later.
std::vector<std::pair<int32_t, float>> parse_logit_bias(const json& v) {
  if (!v.is_object()) throw wrong_type("logit_bias", "an object of token id: bias", v);
  std::vector<std::pair<int32_t, float>> out;
  for (const auto& [key, b] : v.items()) {
    int64_t id = -1;
    size_t used = 0;
    try {
      id = std::stoll(key, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != key.size() || id < 0 || id > INT32_MAX) {
      throw bad("logit_bias", cat("'logit_bias' keys must be token ids, got '", key, "'"));
    }
    const double x = number(b, "logit_bias");
    if (!(x >= -100 && x <= 100)) {
      throw bad("logit_bias", cat("'logit_bias' values must be in [-100, 100], got ", x,
                                  " for token ", id));
    }
    out.emplace_back(static_cast<int32_t>(id), static_cast<float>(x));
  }
  return out;
}

json parse_body(std::string_view body_text) {
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::exception& e) {  // the library's message has the byte position
    throw ApiError(400, cat("the request body is not valid JSON: ", e.what()), "", "invalid_json");
  }
  if (!body.is_object())
    throw ApiError(400, "the request body must be a JSON object", "", "invalid_json");
  return body;
}

}  // namespace

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json error_json(const ApiError& e) {
  json err;
  err["message"] = e.what();
  err["type"] = e.type();
  err["param"] = e.param().empty() ? json(nullptr) : json(e.param());
  err["code"] = e.code().empty() ? json(nullptr) : json(e.code());
  return json{{"error", err}};
}

CompletionRequest parse_request(std::string_view body_text, Endpoint endpoint,
                                const MethodDefaults& defaults, uint64_t fallback_seed) {
  const json body = parse_body(body_text);
  CompletionRequest r;
  r.endpoint = endpoint;
  if (endpoint == Endpoint::kCompletions) {
    r.prompt = parse_prompt(body);
  } else {
    r.messages = parse_messages(body);
  }
  if (const json* v = field(body, "model")) r.model = string(*v, "model");
  parse_stream(body, r);
  parse_length(body, endpoint, r.gen);
  r.gen.sampling = parse_sampling(body, fallback_seed);
  if (const json* v = field(body, "logit_bias")) r.gen.sampling.logit_bias = parse_logit_bias(*v);
  reject_unsupported(body);
  parse_logprobs(body, endpoint, r);
  parse_kv_compression(body, defaults, r);
  try {
    r.gen.sampling.validate();
  } catch (const Error& e) {  // unreachable after the checks above; kept as a safety net
    throw bad("", e.what());
  }
  return r;
}

std::unique_ptr<CompressionMethod> make_policy(const CompletionRequest& req, int n_layer) {
  try {
    return MethodRegistry::instance().create_typed(req.method, req.options, n_layer);
  } catch (const Error& e) {  // an OptionError names the option by its JSON key
    throw ApiError(400, cat("kv_compression: ", e.what()), "kv_compression",
                   "invalid_kv_compression");
  }
}

void check_logit_bias(const CompletionRequest& req, int32_t n_vocab) {
  std::vector<bool> banned(static_cast<size_t>(std::max(n_vocab, 0)));
  size_t n_banned = 0;
  for (const auto& [id, b] : req.gen.sampling.logit_bias) {
    if (id >= n_vocab) {
      throw bad("logit_bias", cat("'logit_bias' token id ", id,
                                  " is outside the model's vocabulary of ", n_vocab, " tokens"));
    }
    if (b <= -100 && !banned[id]) {
      banned[id] = true;
      ++n_banned;
    }
  }
  if (n_vocab > 0 && n_banned == static_cast<size_t>(n_vocab)) {
    throw bad("logit_bias", "'logit_bias' bans every token of the vocabulary");
  }
}

void check_model(const CompletionRequest& req, const std::vector<std::string>& names) {
  if (req.model.empty()) return;
  for (const std::string& n : names) {
    if (req.model == n) return;
  }
  std::string served;
  for (const std::string& n : names) served += cat(served.empty() ? "'" : ", '", n, "'");
  throw ApiError(404,
                 cat("the model '", req.model, "' does not exist; this server serves ", served,
                     " (GET /v1/models; fastkv serve --alias NAME accepts another name)"),
                 "model", "model_not_found");
}

void check_prompt_fits(size_t n_prompt, int ctx, Endpoint endpoint) {
  const char* param = endpoint == Endpoint::kChat ? "messages" : "prompt";
  if (n_prompt == 0) throw bad(param, "the prompt has no tokens");
  if (!prompt_fits(n_prompt, ctx)) {
    throw ApiError(400, prompt_too_long(n_prompt, ctx), param, "context_length_exceeded");
  }
}

json kv_compression_json(const std::string& method, const OptionValues& options) {
  json kv = {{"method", method}};
  for (const auto& [k, v] : options) {
    if (const auto* i = std::get_if<int64_t>(&v)) {
      kv[k] = *i;
    } else if (const auto* d = std::get_if<double>(&v)) {
      kv[k] = *d;
    } else {
      kv[k] = std::get<std::string>(v);
    }
  }
  return kv;
}

json usage_json(const GenerationResult& r) {
  const int64_t completion = static_cast<int64_t>(r.tokens.size());
  return json{{"prompt_tokens", r.n_prompt},
              {"completion_tokens", completion},
              {"total_tokens", r.n_prompt + completion},
              {"kv_cache_bytes", r.kv_bytes}};
}

static json base(Endpoint endpoint, const ResponseMeta& meta, bool chunk) {
  const char* object = endpoint == Endpoint::kChat
                           ? (chunk ? "chat.completion.chunk" : "chat.completion")
                           : "text_completion";
  return json{
      {"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
}

namespace {

// OpenAI sends -9999 for a log-probability too small to show; JSON has no -inf.
double shown_logprob(float lp) {
  return std::isfinite(lp) ? static_cast<double>(lp) : -9999.0;
}

json piece_bytes(const std::string& piece) {
  json b = json::array();
  for (unsigned char c : piece) b.push_back(static_cast<int>(c));
  return b;
}

}  // namespace

json logprobs_json(Endpoint endpoint, const std::vector<TokenLogprob>& tokens, const Tokenizer& tok,
                   size_t text_offset) {
  if (endpoint == Endpoint::kChat) {
    json content = json::array();
    for (const TokenLogprob& t : tokens) {
      const std::string piece = tok.token_to_piece(t.token);
      json top = json::array();
      for (const auto& [id, lp] : t.top) {
        const std::string p = tok.token_to_piece(id);
        top.push_back({{"token", p}, {"logprob", shown_logprob(lp)}, {"bytes", piece_bytes(p)}});
      }
      content.push_back({{"token", piece},
                         {"logprob", shown_logprob(t.logprob)},
                         {"bytes", piece_bytes(piece)},
                         {"top_logprobs", top}});
    }
    return json{{"content", content}, {"refusal", nullptr}};
  }
  json pieces = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  size_t at = text_offset;
  for (const TokenLogprob& t : tokens) {
    const std::string piece = tok.token_to_piece(t.token);
    pieces.push_back(piece);
    lps.push_back(shown_logprob(t.logprob));
    json top = json::object();
    for (const auto& [id, lp] : t.top) top[tok.token_to_piece(id)] = shown_logprob(lp);
    tops.push_back(top);
    offsets.push_back(at);
    at += piece.size();
  }
  return json{{"tokens", pieces},
              {"token_logprobs", lps},
              {"top_logprobs", tops},
              {"text_offset", offsets}};
}

json completion_response(Endpoint endpoint, const ResponseMeta& meta, const GenerationResult& r,
                         const CompletionRequest& req, const json& logprobs) {
  json j = base(endpoint, meta, false);
  json choice = {{"index", 0}, {"logprobs", logprobs}, {"finish_reason", r.finish_reason}};
  if (endpoint == Endpoint::kChat) {
    choice["message"] = {{"role", "assistant"}, {"content", r.text}};
  } else {
    choice["text"] = r.text;
  }
  j["choices"] = json::array({choice});
  j["usage"] = usage_json(r);
  j["kv_compression"] = kv_compression_json(req.method, req.options);
  return j;
}

json stream_chunk(Endpoint endpoint, const ResponseMeta& meta, const std::string& text,
                  const std::optional<std::string>& finish_reason, const json& logprobs) {
  json j = base(endpoint, meta, true);
  json choice = {{"index", 0}, {"logprobs", logprobs}};
  if (endpoint == Endpoint::kChat) {
    choice["delta"] = text.empty() && finish_reason ? json::object() : json{{"content", text}};
  } else {
    choice["text"] = text;
  }
  choice["finish_reason"] = finish_reason ? json(*finish_reason) : json(nullptr);
  j["choices"] = json::array({choice});
  return j;
}

json chat_role_chunk(const ResponseMeta& meta) {
  json j = base(Endpoint::kChat, meta, true);
  j["choices"] = json::array({json{{"index", 0},
                                   {"delta", {{"role", "assistant"}, {"content", ""}}},
                                   {"logprobs", nullptr},
                                   {"finish_reason", nullptr}}});
  return j;
}

json usage_chunk(Endpoint endpoint, const ResponseMeta& meta, const GenerationResult& r) {
  json j = base(endpoint, meta, true);
  j["choices"] = json::array();
  j["usage"] = usage_json(r);
  return j;
}

std::string sse_event(const json& j) {
  return "data: " + dump(j) + "\n\n";
}

}  // namespace fastkv::server
