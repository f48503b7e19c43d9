// The OpenAI-compatible request and response formats of `fastkv serve`, without sockets:
// parsing and validating /v1/completions and /v1/chat/completions bodies into generation
// parameters, the per-request compression method (`kv_compression`), and building the
// response, stream-chunk and error JSON. Everything here is testable on strings.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "method/method.h"
#include "runtime/tsp_calibration.h"
#include "runtime/chat_template.h"
#include "runtime/session.h"

namespace fastkv::server {

// A request the server refuses: HTTP status plus the fields of OpenAI's error object
// {"error": {"message", "type", "param", "code"}}. Empty param / code are sent as null.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = "", std::string code = "",
           std::string type = "invalid_request_error")
      : std::runtime_error(message),
        status_(status),
        param_(std::move(param)),
        code_(std::move(code)),
        type_(std::move(type)) {}
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }
  const std::string& type() const { return type_; }

 private:
  int status_;
  std::string param_, code_, type_;
};

// {"error": {...}} for `e`.
nlohmann::json error_json(const ApiError& e);
// JSON text that never throws on invalid UTF-8 (bad bytes become U+FFFD).
std::string dump(const nlohmann::json& j);

enum class Endpoint { kCompletions, kChat };

// The server's command-line method, used when a request does not name one. Its options are
// the flags' text; a request gets them typed by the method's schema.
struct MethodDefaults {
  std::string method = "full";
  MethodOptions options;
  // The model's calibrated TSP layer (runtime/tsp_calibration.h): a request for fastkv that
  // gives no tsp_layer runs it.
  std::optional<TspCalibration> calibration;
};

// Generation length when a request gives no max_tokens: OpenAI's 16 for completions; chat
// completions run until EOS, a stop string or the end of the context.
constexpr int kDefaultCompletionMaxTokens = 16;

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string prompt;                 // /v1/completions
  std::vector<ChatMessage> messages;  // /v1/chat/completions
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // max_tokens, sampling, stop, stop_at_eog (ignore_eos); ctx_size is the server's.
  GenerationParams gen;
  std::string method;    // compression method
  OptionValues options;  // its options by JSON key, typed as given (checked by make_policy)
  std::string model;     // the "model" field ("" when absent); the server checks the name
  // Log-probabilities asked for: completions' "logprobs": N, or chat's "logprobs": true with
  // "top_logprobs": N; gen.logprobs holds N (the alternatives per token), -1 when not asked.
  bool logprobs = false;
};

// The most alternatives per token "logprobs" / "top_logprobs" may ask for (OpenAI's limit).
constexpr int kMaxTopLogprobs = 20;

// Parses and validates a request body. Unknown fields are ignored; null counts as absent.
// `fallback_seed` is the seed when the body has none. Throws ApiError (400) for malformed
// JSON, a known field of the wrong type or out of range, or an unsupported feature (n > 1,
// echo, presence/frequency penalties, tools, response_format other than text). logit_bias
// ids are checked against the vocabulary by check_logit_bias.
CompletionRequest parse_request(std::string_view body, Endpoint endpoint,
                                const MethodDefaults& defaults, uint64_t fallback_seed);

// The request's policy from MethodRegistry (typed path: the options are checked against the
// method's schema); the registry's errors (unknown method, unknown option, bad or out-of-range
// value) become ApiError 400 with param "kv_compression" and the option named by its JSON key.
std::unique_ptr<CompressionMethod> make_policy(const CompletionRequest& req, int n_layer);

// Command-line option text typed by the method's schema (left as text where it does not fit).
OptionValues typed_options(const std::string& method, const MethodOptions& text);
// {"method": ..., key: value...} with numbers as JSON numbers (responses, /v1/models).
nlohmann::json kv_compression_json(const std::string& method, const OptionValues& options);

// Throws ApiError 400 (param "logit_bias") for a token id outside [0, n_vocab).
void check_logit_bias(const CompletionRequest& req, int32_t n_vocab);

// Throws ApiError 404 (code "model_not_found") unless the request names no model or one of
// `names` (the server's model id and the names it accepts).
void check_model(const CompletionRequest& req, const std::vector<std::string>& names);

// Throws ApiError 400 (code "context_length_exceeded") unless the prompt leaves room for at
// least one generated token in a context of `ctx` tokens.
void check_prompt_fits(size_t n_prompt, int ctx, Endpoint endpoint);

// What every response object of one request shares.
struct ResponseMeta {
  std::string id;       // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

// usage: prompt_tokens, completion_tokens, total_tokens and kv_cache_bytes (cache held after
// prefill, the extension this server adds).
nlohmann::json usage_json(const GenerationResult& r);
// A choice's "logprobs" for `tokens` in OpenAI's shape: chat {"content": [{"token", "logprob",
// "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}], "refusal": null}; completions
// {"tokens", "token_logprobs", "top_logprobs": [{piece: logprob}], "text_offset"}, offsets in
// bytes of the completion's text counted from `text_offset`. A token's text is its piece
// (Tokenizer::token_to_piece); -inf (a banned token) is sent as -9999.
nlohmann::json logprobs_json(Endpoint endpoint, const std::vector<TokenLogprob>& tokens,
                             const Tokenizer& tok, size_t text_offset = 0);
// The whole (non-streamed) response; `logprobs` is the choice's (null when not asked for).
nlohmann::json completion_response(Endpoint endpoint, const ResponseMeta& meta,
                                   const GenerationResult& r, const CompletionRequest& req,
                                   const nlohmann::json& logprobs = nullptr);
// One stream chunk carrying `text` (chat: delta.content), the logprobs of its tokens (null when
// not asked for) and, when given, finish_reason.
nlohmann::json stream_chunk(Endpoint endpoint, const ResponseMeta& meta, const std::string& text,
                            const std::optional<std::string>& finish_reason,
                            const nlohmann::json& logprobs = nullptr);
// Chat streams start with a chunk whose delta is {"role": "assistant", "content": ""}.
nlohmann::json chat_role_chunk(const ResponseMeta& meta);
// The usage-only chunk (empty choices) sent before [DONE] when include_usage is set.
nlohmann::json usage_chunk(Endpoint endpoint, const ResponseMeta& meta, const GenerationResult& r);
// One server-sent event: "data: <json>\n\n".
std::string sse_event(const nlohmann::json& j);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace fastkv::server
