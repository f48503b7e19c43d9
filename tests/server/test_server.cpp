// `fastkv serve` (src/server/, tools/fastkv/cmd_serve.cpp).
//
// ServerParse / ServerMethod / ServerResponse / ServerMetrics / ServerSlots: the request
// parsing, validation, response building, metrics and slot queue without sockets.
// ServerE2E*: the real server as a child process on a free loopback port (--port 0), driven
// by curl over HTTP, on stories260K from ../shared. Every server and background client is
// killed when its test ends, pass or fail (RAII); every wait is bounded.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "model/model.h"
#include "server/metrics.h"
#include "server/openai.h"
#include "server/slots.h"
#include "runtime/tsp_calibration.h"
#include "test_util.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using server::ApiError;
using server::CompletionRequest;
using server::Endpoint;
using server::MethodDefaults;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Request parsing and validation (no sockets).

CompletionRequest parse(const json& body, Endpoint ep = Endpoint::kCompletions,
                        const MethodDefaults& d = {}) {
  return server::parse_request(body.dump(), ep, d, /*fallback_seed=*/77);
}

// The ApiError parse_request throws for `body` (fails the test when it does not throw).
ApiError parse_error(const std::string& body, Endpoint ep = Endpoint::kCompletions) {
  try {
    server::parse_request(body, ep, {}, 1);
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no ApiError for " << body;
  return ApiError(0, "");
}

TEST(ServerParse, CompletionDefaultsAreOpenAIs) {
  CompletionRequest r = parse({{"prompt", "Once upon a time"}});
  EXPECT_EQ(r.endpoint, Endpoint::kCompletions);
  EXPECT_EQ(r.prompt, "Once upon a time");
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_EQ(r.gen.max_tokens, server::kDefaultCompletionMaxTokens);
  EXPECT_TRUE(r.gen.stop_at_eog);
  EXPECT_TRUE(r.gen.stop.empty());
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 1.0f);  // OpenAI's default, not greedy
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 1.0f);
  EXPECT_EQ(r.gen.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.gen.sampling.min_p, 0.0f);
  EXPECT_FLOAT_EQ(r.gen.sampling.repeat_penalty, 1.0f);
  EXPECT_EQ(r.gen.sampling.seed, 77u);  // the fallback seed
  EXPECT_EQ(r.method, "full");
  EXPECT_TRUE(r.options.empty());
  // A one-string array is a prompt too.
  EXPECT_EQ(parse({{"prompt", {"abc"}}}).prompt, "abc");
}

TEST(ServerParse, ChatMessagesAndContentParts) {
  json body = {
      {"messages",
       {{{"role", "system"}, {"content", "Be brief."}},
        {{"role", "developer"}, {"content", "Really."}},
        {{"role", "user"},
         {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}},
        {{"role", "assistant"}, {"content", nullptr}}}}};
  CompletionRequest r = parse(body, Endpoint::kChat);
  ASSERT_EQ(r.messages.size(), 4u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].role, "system");  // developer = system
  EXPECT_EQ(r.messages[2].content, "a\nb");
  EXPECT_EQ(r.messages[3].role, "assistant");
  EXPECT_EQ(r.messages[3].content, "");
  EXPECT_GT(r.gen.max_tokens, 1 << 20);  // chat: until EOS, a stop string or the context's end
}

TEST(ServerParse, SamplingAndLengthFieldsMap) {
  CompletionRequest r = parse({{"prompt", "x"},
                               {"max_tokens", 7},
                               {"temperature", 0},
                               {"top_p", 0.5},
                               {"top_k", 12},
                               {"min_p", 0.1},
                               {"repeat_penalty", 1.3},
                               {"repeat_last_n", 9},
                               {"seed", 123456789012345ll},
                               {"stream", true},
                               {"stream_options", {{"include_usage", true}}},
                               {"ignore_eos", true},
                               {"stop", "\n\n"}});
  EXPECT_EQ(r.gen.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.5f);
  EXPECT_EQ(r.gen.sampling.top_k, 12);
  EXPECT_FLOAT_EQ(r.gen.sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(r.gen.sampling.repeat_penalty, 1.3f);
  EXPECT_EQ(r.gen.sampling.repeat_last_n, 9);
  EXPECT_EQ(r.gen.sampling.seed, 123456789012345ull);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_FALSE(r.gen.stop_at_eog);
  EXPECT_EQ(r.gen.stop, std::vector<std::string>{"\n\n"});
  // Arrays of stop strings (empty ones dropped), max_completion_tokens, integral floats,
  // negative seeds.
  r = parse(
      {{"prompt", "x"}, {"stop", {"a", "", "b"}}, {"max_completion_tokens", 5.0}, {"seed", -1}});
  EXPECT_EQ(r.gen.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.gen.max_tokens, 5);
  EXPECT_EQ(r.gen.sampling.seed, ~uint64_t{0});
}

TEST(ServerParse, NullIsAbsentAndUnknownFieldsAreIgnored) {
  CompletionRequest r = parse({{"prompt", "x"},
                               {"temperature", nullptr},
                               {"stop", nullptr},
                               {"model", "whatever"},
                               {"user", "u"},
                               {"n", 1},
                               {"logprobs", nullptr},
                               {"presence_penalty", 0},
                               {"frobnicate", {{"deep", {1, 2, {{"x", nullptr}}}}}}});
  EXPECT_FLOAT_EQ(r.gen.sampling.temperature, 1.0f);
  EXPECT_TRUE(r.gen.stop.empty());
}

TEST(ServerParse, KvCompressionValuesBecomeOptionText) {
  CompletionRequest r = parse({{"prompt", "x"},
                               {"kv_compression",
                                {{"method", "fastkv"},
                                 {"retain_rate", 0.1},
                                 {"tsp_rate", "0.2"},
                                 {"tsp_layer", 2},
                                 {"window", 8.0},
                                 {"kernel", nullptr},
                                 {"pool", "avg"}}}});
  EXPECT_EQ(r.method, "fastkv");
  // Typed by fastkv's schema: numbers stay numbers (8.0 is the integer 8; the text "0.2" of a
  // number option is read as the number 0.2).
  EXPECT_EQ(r.options, (OptionValues{{"retain_rate", 0.1},
                                     {"tsp_rate", 0.2},
                                     {"tsp_layer", int64_t{2}},
                                     {"window", int64_t{8}},
                                     {"pool", std::string("avg")}}));
  // A method name alone.
  r = parse({{"prompt", "x"}, {"kv_compression", "fastkv"}});
  EXPECT_EQ(r.method, "fastkv");
  EXPECT_TRUE(r.options.empty());
}

TEST(ServerParse, KvCompressionStartsFromTheServersMethod) {
  MethodDefaults d{"fastkv", {{"retain_rate", "0.2"}, {"tsp_rate", "0.4"}}, std::nullopt};
  // No kv_compression: the server's method and options.
  CompletionRequest r = parse({{"prompt", "x"}}, Endpoint::kCompletions, d);
  EXPECT_EQ(r.method, "fastkv");
  EXPECT_EQ(r.options, (OptionValues{{"retain_rate", 0.2}, {"tsp_rate", 0.4}}));
  // The same method (named or not): the server's options, overridden key by key.
  r = parse({{"prompt", "x"}, {"kv_compression", {{"retain_rate", 0.05}}}}, Endpoint::kCompletions,
            d);
  EXPECT_EQ(r.method, "fastkv");
  EXPECT_EQ(r.options, (OptionValues{{"retain_rate", 0.05}, {"tsp_rate", 0.4}}));
  r = parse({{"prompt", "x"}, {"kv_compression", {{"method", "fastkv"}, {"window", 4}}}},
            Endpoint::kCompletions, d);
  EXPECT_EQ(r.options.size(), 3u);
  // Another method: only the request's options.
  r = parse({{"prompt", "x"}, {"kv_compression", {{"method", "full"}}}}, Endpoint::kCompletions, d);
  EXPECT_EQ(r.method, "full");
  EXPECT_TRUE(r.options.empty());
}

// A calibrated TSP layer (MODEL.fastkv.json) reaches requests for fastkv that give no layer.
TEST(ServerParse, KvCompressionTakesTheCalibratedTspLayer) {
  TspCalibration cal;
  cal.n_layer = 30;
  cal.tsp_layer = 19;
  cal.tsp_rate = 0.25;
  MethodDefaults d{"full", {}, cal};
  CompletionRequest r = parse({{"prompt", "x"}}, Endpoint::kCompletions, d);
  EXPECT_EQ(r.method, "full");
  EXPECT_TRUE(r.options.empty());
  r = parse({{"prompt", "x"}, {"kv_compression", "fastkv"}}, Endpoint::kCompletions, d);
  EXPECT_EQ(r.options, (OptionValues{{"tsp_layer", int64_t{19}}, {"tsp_rate", 0.25}}));
  r = parse({{"prompt", "x"}, {"kv_compression", {{"method", "fastkv"}, {"tsp_rate", 0.3}}}},
            Endpoint::kCompletions, d);
  EXPECT_EQ(r.options, (OptionValues{{"tsp_layer", int64_t{19}}, {"tsp_rate", 0.3}}));
  r = parse({{"prompt", "x"}, {"kv_compression", {{"method", "fastkv"}, {"tsp_layer", 3}}}},
            Endpoint::kCompletions, d);
  EXPECT_EQ(r.options, (OptionValues{{"tsp_layer", int64_t{3}}}));
  r = parse({{"prompt", "x"}, {"kv_compression", {{"method", "snapkv"}}}}, Endpoint::kCompletions,
            d);
  EXPECT_TRUE(r.options.empty());
}

TEST(ServerParse, BadFieldsAre400NamingTheField) {
  struct Case {
    std::string body, param;
    Endpoint ep = Endpoint::kCompletions;
  };
  const std::vector<Case> cases = {
      {R"({"prompt": "x")", ""},  // truncated JSON
      {"", ""},
      {"[1, 2]", ""},
      {R"("just a string")", ""},
      {R"({})", "prompt"},
      {R"({"prompt": ""})", "prompt"},
      {R"({"prompt": 5})", "prompt"},
      {R"({"prompt": ["a", "b"]})", "prompt"},
      {R"({"prompt": [1, 2, 3]})", "prompt"},
      {R"({"prompt": "x", "max_tokens": "10"})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": -1})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 1.5})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 1e300})", "max_tokens"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature"},
      {R"({"prompt": "x", "temperature": -0.1})", "temperature"},
      {R"({"prompt": "x", "temperature": 2.5})", "temperature"},
      {R"({"prompt": "x", "top_p": 0})", "top_p"},
      {R"({"prompt": "x", "top_p": 1.01})", "top_p"},
      {R"({"prompt": "x", "top_k": -3})", "top_k"},
      {R"({"prompt": "x", "min_p": 1})", "min_p"},
      {R"({"prompt": "x", "repeat_penalty": 0})", "repeat_penalty"},
      {R"({"prompt": "x", "seed": "abc"})", "seed"},
      {R"({"prompt": "x", "seed": 1e30})", "seed"},
      {R"({"prompt": "x", "stream": "yes"})", "stream"},
      {R"({"prompt": "x", "stream_options": true})", "stream_options"},
      {R"({"prompt": "x", "stop": 3})", "stop"},
      {R"({"prompt": "x", "stop": ["a", 3]})", "stop"},
      {R"({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]})", "stop"},
      {R"({"prompt": "x", "ignore_eos": 1})", "ignore_eos"},
      {R"({"prompt": "x", "n": 2})", "n"},
      {R"({"prompt": "x", "echo": true})", "echo"},
      {R"({"prompt": "x", "logprobs": 21})", "logprobs"},
      {R"({"prompt": "x", "logprobs": -1})", "logprobs"},
      {R"({"prompt": "x", "logprobs": true})", "logprobs"},
      {R"({"prompt": "x", "top_logprobs": 2})", "top_logprobs"},
      {R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": 3})", "logprobs",
       Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 3})", "top_logprobs",
       Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 21})",
       "top_logprobs", Endpoint::kChat},
      {R"({"prompt": "x", "logit_bias": [1]})", "logit_bias"},
      {R"({"prompt": "x", "logit_bias": {"abc": 1}})", "logit_bias"},
      {R"({"prompt": "x", "logit_bias": {"12x": 1}})", "logit_bias"},
      {R"({"prompt": "x", "logit_bias": {"-1": 1}})", "logit_bias"},
      {R"({"prompt": "x", "logit_bias": {"5": 101}})", "logit_bias"},
      {R"({"prompt": "x", "logit_bias": {"5": "up"}})", "logit_bias"},
      {R"({"messages": [{"role": "user", "content": "hi"}], "tools": []})", "tools",
       Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "auto"})", "tool_choice",
       Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": "hi"}], "functions": [{"name": "f"}]})",
       "functions", Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": "hi"}], "function_call": "auto"})",
       "function_call", Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}})",
       "response_format", Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}})",
       "response_format", Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": "hi"}], "response_format": "json"})",
       "response_format", Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "xml"}})",
       "response_format.type", Endpoint::kChat},
      {R"({"prompt": "x", "presence_penalty": 0.5})", "presence_penalty"},
      {R"({"prompt": "x", "frequency_penalty": 3})", "frequency_penalty"},
      {R"({"prompt": "x", "model": 1})", "model"},
      {R"({"prompt": "x", "kv_compression": 0.1})", "kv_compression"},
      {R"({"prompt": "x", "kv_compression": {"method": 1}})", "kv_compression.method"},
      {R"({"prompt": "x", "kv_compression": {"retain_rate": [0.1]}})",
       "kv_compression.retain_rate"},
      {R"({"prompt": "x", "kv_compression": {"retain_rate": true}})", "kv_compression.retain_rate"},
      {R"({"messages": "hi"})", "messages", Endpoint::kChat},
      {R"({"messages": []})", "messages", Endpoint::kChat},
      {R"({"prompt": "x"})", "messages", Endpoint::kChat},
      {R"({"messages": ["hi"]})", "messages[0]", Endpoint::kChat},
      {R"({"messages": [{"content": "hi"}]})", "messages[0].role", Endpoint::kChat},
      {R"({"messages": [{"role": "robot", "content": "hi"}]})", "messages[0].role",
       Endpoint::kChat},
      {R"({"messages": [{"role": "tool", "content": "hi"}]})", "messages[0].role", Endpoint::kChat},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content", Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content", Endpoint::kChat},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
       "messages[0].content[0].type", Endpoint::kChat},
  };
  for (const Case& c : cases) {
    ApiError e = parse_error(c.body, c.ep);
    EXPECT_EQ(e.status(), 400) << c.body;
    EXPECT_EQ(e.param(), c.param) << c.body << " -> " << e.what();
    EXPECT_EQ(e.type(), "invalid_request_error") << c.body;
    EXPECT_FALSE(std::string(e.what()).empty()) << c.body;
  }
  // Invalid UTF-8 inside a JSON string is malformed JSON.
  EXPECT_EQ(parse_error("{\"prompt\": \"\xff\xfe\"}").code(), "invalid_json");
  // Deep nesting neither crashes nor passes.
  std::string deep = "{\"prompt\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(parse_error(deep).param(), "prompt");
}

TEST(ServerMethod, RegistryErrorsBecome400NamingTheJsonKeys) {
  auto policy_error = [](const std::string& method, const OptionValues& opts) {
    CompletionRequest r;
    r.method = method;
    r.options = opts;
    try {
      server::make_policy(r, 5);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_EQ(e.param(), "kv_compression");
      return std::string(e.what());
    }
    ADD_FAILURE() << "no error for " << method;
    return std::string();
  };
  EXPECT_NE(policy_error("nope", {}).find("unknown method 'nope'"), std::string::npos);
  EXPECT_NE(policy_error("fastkv", {{"retain_rate", "1.5"}}).find("retain_rate must be in (0, 1]"),
            std::string::npos);
  EXPECT_NE(policy_error("fastkv", {{"tsp_rate", "0"}}).find("tsp_rate"), std::string::npos);
  EXPECT_NE(policy_error("fastkv", {{"window", "wide"}}).find("window must be an integer"),
            std::string::npos);
  EXPECT_NE(policy_error("fastkv", {{"colour", "1"}}).find("does not take colour"),
            std::string::npos);
  EXPECT_NE(policy_error("full", {{"retain_rate", "0.1"}}).find("takes no options"),
            std::string::npos);
  CompletionRequest ok;
  ok.method = "fastkv";
  ok.options = {{"retain_rate", "0.1"}, {"tsp_rate", "0.2"}};
  EXPECT_NE(server::make_policy(ok, 5), nullptr);
}

// kv_compression numbers are checked as numbers against the method's schema (no detour through
// text): a non-integral window, an out-of-range rate and a boolean are each refused by name.
TEST(ServerMethod, KvCompressionNumbersAreCheckedAgainstTheSchema) {
  auto policy_error = [](const json& kv) {
    CompletionRequest r = parse({{"prompt", "x"}, {"kv_compression", kv}});
    try {
      server::make_policy(r, 5);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_EQ(e.param(), "kv_compression");
      EXPECT_EQ(e.code(), "invalid_kv_compression");
      return std::string(e.what());
    }
    ADD_FAILURE() << "no error for " << kv.dump();
    return std::string();
  };
  EXPECT_EQ(policy_error({{"method", "fastkv"}, {"retain_rate", 1.5}}),
            "kv_compression: retain_rate must be in (0, 1], got 1.5");
  EXPECT_EQ(policy_error({{"method", "fastkv"}, {"window", 2.5}}),
            "kv_compression: window must be an integer, got 2.5");
  EXPECT_EQ(policy_error({{"method", "snapkv"}, {"tsp_rate", 0.2}}),
            "kv_compression: method 'snapkv' does not take tsp_rate");
  const std::string boolean_window =
      R"({"prompt": "x", "kv_compression": {"method": "fastkv", "window": true}})";
  EXPECT_EQ(parse_error(boolean_window).param(), "kv_compression.window");
  // Valid numbers reach the policy as they are.
  CompletionRequest ok = parse({{"prompt", "x"},
                                {"kv_compression",
                                 {{"method", "fastkv"}, {"retain_rate", 0.05}, {"window", 4}}}});
  EXPECT_EQ(ok.options, (OptionValues{{"retain_rate", 0.05}, {"window", int64_t{4}}}));
  EXPECT_NE(server::make_policy(ok, 5), nullptr);
}

TEST(ServerMethod, PromptMustLeaveRoomForOneToken) {
  EXPECT_NO_THROW(server::check_prompt_fits(63, 64, Endpoint::kCompletions));
  try {
    server::check_prompt_fits(64, 64, Endpoint::kChat);
    ADD_FAILURE() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.param(), "messages");
    EXPECT_EQ(e.code(), "context_length_exceeded");
  }
}

// ---------------------------------------------------------------------------------------------
// Responses.

GenerationResult sample_result() {
  GenerationResult r;
  r.tokens = {5, 6, 7};
  r.text = "abc";
  r.finish_reason = "length";
  r.n_prompt = 4;
  r.kv_bytes = 1234;
  return r;
}

TEST(ServerParse, LogprobsLogitBiasResponseFormatAndModelAreRead) {
  CompletionRequest c = parse({{"prompt", "x"},
                               {"logprobs", 2},
                               {"logit_bias", {{"5", -100}, {"7", 2.5}}},
                               {"model", "m"}});
  EXPECT_TRUE(c.logprobs);
  EXPECT_EQ(c.gen.logprobs, 2);
  EXPECT_EQ(c.model, "m");
  ASSERT_EQ(c.gen.sampling.logit_bias.size(), 2u);
  EXPECT_EQ(c.gen.sampling.logit_bias[0], (std::pair<int32_t, float>{5, -100.0f}));
  EXPECT_EQ(c.gen.sampling.logit_bias[1], (std::pair<int32_t, float>{7, 2.5f}));
  EXPECT_TRUE(parse({{"prompt", "x"}, {"logprobs", 0}}).logprobs);  // tokens without alternatives
  EXPECT_FALSE(parse({{"prompt", "x"}}).logprobs);
  EXPECT_EQ(parse({{"prompt", "x"}}).gen.logprobs, -1);
  const json msgs = {{{"role", "user"}, {"content", "hi"}}};
  CompletionRequest chat = parse({{"messages", msgs}, {"logprobs", true}}, Endpoint::kChat);
  EXPECT_TRUE(chat.logprobs);
  EXPECT_EQ(chat.gen.logprobs, 0);
  chat = parse({{"messages", msgs}, {"logprobs", true}, {"top_logprobs", 5}}, Endpoint::kChat);
  EXPECT_EQ(chat.gen.logprobs, 5);
  chat = parse({{"messages", msgs}, {"logprobs", false}}, Endpoint::kChat);
  EXPECT_FALSE(chat.logprobs);
  EXPECT_EQ(chat.gen.logprobs, -1);
  // "text" is what the server does anyway.
  EXPECT_NO_THROW(parse({{"messages", msgs}, {"response_format", {{"type", "text"}}}},
                        Endpoint::kChat));
}

TEST(ServerParse, ModelNamesAndLogitBiasIdsAreCheckedAgainstTheServer) {
  CompletionRequest r = parse({{"prompt", "x"}});
  EXPECT_NO_THROW(server::check_model(r, {"a", "b"}));  // no name: the server's model
  r.model = "b";
  EXPECT_NO_THROW(server::check_model(r, {"a", "b"}));
  r.model = "gpt-4o";
  try {
    server::check_model(r, {"a", "b"});
    ADD_FAILURE() << "no error for an unknown model";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_EQ(e.code(), "model_not_found");
    EXPECT_EQ(e.param(), "model");
    EXPECT_NE(std::string(e.what()).find("'gpt-4o'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--alias"), std::string::npos) << e.what();
  }
  r.gen.sampling.logit_bias = {{9, 1.0f}};
  EXPECT_NO_THROW(server::check_logit_bias(r, 10));
  r.gen.sampling.logit_bias = {{10, 1.0f}};
  try {
    server::check_logit_bias(r, 10);
    ADD_FAILURE() << "no error for an id outside the vocabulary";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.param(), "logit_bias");
  }
  r.gen.sampling.logit_bias = {{0, -100.0f}, {1, -100.0f}, {1, -100.0f}};
  EXPECT_NO_THROW(server::check_logit_bias(r, 3));
  r.gen.sampling.logit_bias.push_back({2, -100.0f});
  EXPECT_THROW(server::check_logit_bias(r, 3), ApiError);  // every token banned
}

TEST(ServerResponse, CompletionAndChatShapes) {
  server::ResponseMeta meta{"cmpl-1", 1700000000, "stories260K"};
  CompletionRequest req;
  req.method = "fastkv";
  req.options = {{"retain_rate", 0.1}};
  json c = server::completion_response(Endpoint::kCompletions, meta, sample_result(), req);
  EXPECT_EQ(c["id"], "cmpl-1");
  EXPECT_EQ(c["object"], "text_completion");
  EXPECT_EQ(c["created"], 1700000000);
  EXPECT_EQ(c["model"], "stories260K");
  ASSERT_EQ(c["choices"].size(), 1u);
  EXPECT_EQ(c["choices"][0]["text"], "abc");
  EXPECT_EQ(c["choices"][0]["index"], 0);
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(c["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(c["usage"], (json{{"prompt_tokens", 4},
                              {"completion_tokens", 3},
                              {"total_tokens", 7},
                              {"kv_cache_bytes", 1234}}));
  // Numbers are echoed as numbers.
  EXPECT_EQ(c["kv_compression"], (json{{"method", "fastkv"}, {"retain_rate", 0.1}}));
  json chat = server::completion_response(Endpoint::kChat, meta, sample_result(), req);
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"], (json{{"role", "assistant"}, {"content", "abc"}}));
  // Invalid UTF-8 in generated text never makes dumping throw.
  GenerationResult bad = sample_result();
  bad.text = "a\xff";
  EXPECT_NO_THROW(server::dump(server::completion_response(Endpoint::kChat, meta, bad, req)));
}

TEST(ServerResponse, StreamChunksAndServerSentEvents) {
  server::ResponseMeta meta{"chatcmpl-1", 5, "m"};
  json role = server::chat_role_chunk(meta);
  EXPECT_EQ(role["object"], "chat.completion.chunk");
  EXPECT_EQ(role["choices"][0]["delta"], (json{{"role", "assistant"}, {"content", ""}}));
  json piece = server::stream_chunk(Endpoint::kChat, meta, "hi", std::nullopt);
  EXPECT_EQ(piece["choices"][0]["delta"], (json{{"content", "hi"}}));
  EXPECT_TRUE(piece["choices"][0]["finish_reason"].is_null());
  json last = server::stream_chunk(Endpoint::kChat, meta, "", std::string("stop"));
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  json text = server::stream_chunk(Endpoint::kCompletions, meta, "hi", std::nullopt);
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], "hi");
  json usage = server::usage_chunk(Endpoint::kChat, meta, sample_result());
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 7);
  EXPECT_EQ(server::sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(server::kSseDone, "data: [DONE]\n\n");
}

TEST(ServerResponse, LogprobsInOpenAIsShapes) {
  auto model = Model::load(test::shared_path("models/stories260K.gguf"));
  const Tokenizer& tok = model->require_tokenizer();
  const std::vector<int32_t> ids = tok.encode("Once upon", /*add_special=*/false, false);
  ASSERT_GE(ids.size(), 2u);
  std::vector<TokenLogprob> lps;
  for (size_t i = 0; i < 2; ++i) {
    lps.push_back({ids[i], -0.5f * (i + 1), {{ids[i], -0.5f * (i + 1)}, {ids[1 - i], -3.0f}}});
  }
  lps[1].top[1].second = -std::numeric_limits<float>::infinity();  // a banned alternative
  const std::string p0 = tok.token_to_piece(ids[0]), p1 = tok.token_to_piece(ids[1]);
  json chat = server::logprobs_json(Endpoint::kChat, lps, tok);
  EXPECT_TRUE(chat["refusal"].is_null());
  ASSERT_EQ(chat["content"].size(), 2u);
  json first = chat["content"][0];
  EXPECT_EQ(first["token"], p0);
  EXPECT_DOUBLE_EQ(first["logprob"].get<double>(), -0.5);
  ASSERT_EQ(first["bytes"].size(), p0.size());
  EXPECT_EQ(first["bytes"][0], static_cast<int>(static_cast<unsigned char>(p0[0])));
  ASSERT_EQ(first["top_logprobs"].size(), 2u);
  EXPECT_EQ(first["top_logprobs"][1]["token"], p1);
  EXPECT_TRUE(first["top_logprobs"][1].contains("bytes"));
  EXPECT_DOUBLE_EQ(chat["content"][1]["top_logprobs"][1]["logprob"].get<double>(), -9999.0);
  json text = server::logprobs_json(Endpoint::kCompletions, lps, tok, 7);
  EXPECT_EQ(text["tokens"], (json{p0, p1}));
  EXPECT_EQ(text["token_logprobs"], (json{-0.5, -1.0}));
  EXPECT_EQ(text["text_offset"], (json{7, 7 + p0.size()}));
  ASSERT_EQ(text["top_logprobs"].size(), 2u);
  EXPECT_DOUBLE_EQ(text["top_logprobs"][0][p1].get<double>(), -3.0);
  // The choice carries it; without it the field is null.
  server::ResponseMeta meta{"cmpl-1", 1, "m"};
  CompletionRequest req;
  json c = server::completion_response(Endpoint::kCompletions, meta, sample_result(), req, text);
  EXPECT_EQ(c["choices"][0]["logprobs"], text);
  json chunk = server::stream_chunk(Endpoint::kChat, meta, "x", std::nullopt, chat);
  EXPECT_EQ(chunk["choices"][0]["logprobs"], chat);
}

TEST(ServerResponse, ErrorJsonIsOpenAIs) {
  json e = server::error_json(ApiError(400, "bad 'x'", "x", "invalid_value"));
  EXPECT_EQ(e, (json{{"error",
                      {{"message", "bad 'x'"},
                       {"type", "invalid_request_error"},
                       {"param", "x"},
                       {"code", "invalid_value"}}}}));
  json n = server::error_json(ApiError(500, "boom", "", "", "server_error"));
  EXPECT_TRUE(n["error"]["param"].is_null());
  EXPECT_TRUE(n["error"]["code"].is_null());
  EXPECT_EQ(n["error"]["type"], "server_error");
}

// ---------------------------------------------------------------------------------------------
// Metrics and slots.

TEST(ServerMetrics, PrometheusTextHasCountersGaugesAndCumulativeBuckets) {
  server::Metrics m;
  m.count_request("/v1/completions", 200);
  m.count_request("/v1/completions", 200);
  m.count_request("/v1/completions", 400);
  m.record_generation(10, 4, 0.003, 0.02, 3, false);
  m.record_generation(6, 2, 0.2, 0.0, 0, true);
  std::string text = m.render({4096, 2, 1, 3});
  auto has = [&](const std::string& line) {
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << "missing: " << line << "\n" << text;
  };
  has("# TYPE fastkv_requests_total counter");
  has("fastkv_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2");
  has("fastkv_requests_total{endpoint=\"/v1/completions\",status=\"400\"} 1");
  has("fastkv_prompt_tokens_total 16");
  has("fastkv_completion_tokens_total 6");
  has("fastkv_generations_cancelled_total 1");
  has("# TYPE fastkv_time_to_first_token_seconds histogram");
  has("fastkv_time_to_first_token_seconds_bucket{le=\"0.0025\"} 0");
  has("fastkv_time_to_first_token_seconds_bucket{le=\"0.005\"} 1");
  has("fastkv_time_to_first_token_seconds_bucket{le=\"0.25\"} 2");
  has("fastkv_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2");
  has("fastkv_time_to_first_token_seconds_count 2");
  has("fastkv_decode_seconds_count 1");  // the second generation had no decode step
  has("fastkv_decode_seconds_bucket{le=\"0.05\"} 1");
  has("fastkv_kv_cache_bytes 4096");
  has("fastkv_slots 2");
  has("fastkv_slots_busy 1");
  has("fastkv_queue_length 3");
}

TEST(ServerSlots, BusySlotsQueueThenRefuse) {
  server::SlotPool pool(1, 1);
  int a = -1;
  ASSERT_EQ(pool.acquire(&a, nullptr), server::SlotPool::Result::kAcquired);
  EXPECT_EQ(pool.busy(), 1);
  // One may wait; the second waiter is refused at once.
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    int b = -1;
    EXPECT_EQ(pool.acquire(&b, nullptr), server::SlotPool::Result::kAcquired);
    got = true;
    pool.release(b);
  });
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (pool.queued() != 1 && Clock::now() < until) std::this_thread::yield();
  ASSERT_EQ(pool.queued(), 1);
  int c = -1;
  EXPECT_EQ(pool.acquire(&c, nullptr), server::SlotPool::Result::kQueueFull);
  EXPECT_FALSE(got);
  pool.set_kv_bytes(a, 100);
  EXPECT_EQ(pool.kv_bytes(), 100);
  pool.release(a);
  waiter.join();
  EXPECT_TRUE(got);
  EXPECT_EQ(pool.busy(), 0);
  EXPECT_EQ(pool.kv_bytes(), 0);
}

TEST(ServerSlots, WaitersAreServedInOrderAndMayLeave) {
  server::SlotPool pool(1, 8);
  int s = -1;
  ASSERT_EQ(pool.acquire(&s, nullptr), server::SlotPool::Result::kAcquired);
  std::atomic<bool> leave{false};
  std::vector<int> order;
  std::mutex mu;
  std::vector<std::thread> waiters;
  server::SlotPool::Result left_result = server::SlotPool::Result::kAcquired;
  waiters.emplace_back([&] {  // leaves the line when told
    int x = -1;
    left_result = pool.acquire(&x, [&] { return leave.load(); });
    if (left_result == server::SlotPool::Result::kAcquired) pool.release(x);
  });
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (pool.queued() != 1 && Clock::now() < until) std::this_thread::yield();
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&, i] {
      int x = -1;
      EXPECT_EQ(pool.acquire(&x, nullptr), server::SlotPool::Result::kAcquired);
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
      }
      pool.release(x);
    });
    while (pool.queued() != 2 + i && Clock::now() < until) std::this_thread::yield();
  }
  ASSERT_EQ(pool.queued(), 4);
  leave = true;
  while (pool.queued() != 3 && Clock::now() < until) std::this_thread::yield();
  EXPECT_EQ(pool.queued(), 3);
  pool.release(s);
  for (auto& t : waiters) t.join();
  EXPECT_EQ(left_result, server::SlotPool::Result::kCancelled);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

// ---------------------------------------------------------------------------------------------
// End to end: the server process and curl.

std::string stories() {
  return test::shared_path("models/stories260K.gguf");
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using test::shell_quote;

// A child process (argv[0] is the program, searched in PATH) with stdout and stderr in files. The
// destructor ends it: SIGTERM, then SIGKILL after 5 s. It also dies with the test process.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& out_path,
        const std::string& err_path) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int in = ::open("/dev/null", O_RDONLY);
      int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in < 0 || out < 0 || err < 0) ::_exit(126);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  void stop() {
    if (!running()) return;
    ::kill(pid_, SIGTERM);
    const auto until = Clock::now() + std::chrono::seconds(5);
    while (running() && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (running()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

 private:
  pid_t pid_ = -1;
};

struct Http {
  int status = 0;  // 0: curl got no answer
  std::string body;
  json j() const {
    json v = json::parse(body, nullptr, false);
    return v.is_discarded() ? json() : v;
  }
};

// `fastkv serve -m stories260K --port 0 -t 1 <args>`, ready once it printed its port.
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args, const std::string& model = stories())
      : dir_(test::temp_dir()) {
    std::vector<std::string> argv = {test::fastkv_bin(), "serve", "-m", model,
                                     "--port",           "0",     "-t", "1"};
    argv.insert(argv.end(), args.begin(), args.end());
    child_ = std::make_unique<Child>(argv, dir_ + "/server.out", dir_ + "/server.err");
    const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < until) {
      std::smatch m;
      std::string err = slurp(dir_ + "/server.err");
      if (std::regex_search(err, m, listening)) {
        port_ = std::stoi(m[1]);
        return;
      }
      if (!child_->running()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "the server did not start:\n" << slurp(dir_ + "/server.err");
  }
  ~ServeProcess() {
    child_.reset();
    fs::remove_all(dir_);
  }

  int port() const { return port_; }
  bool ok() const { return port_ > 0; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  const std::string& dir() const { return dir_; }
  std::string log() const { return slurp(dir_ + "/server.err"); }

  // One request with curl; `headers` are extra "Name: value" lines.
  Http request(const std::string& method, const std::string& path, const std::string& body = "",
               const std::vector<std::string>& headers = {}, double max_time = 120) const {
    static std::atomic<int> n{0};
    const std::string id = std::to_string(n++);
    const std::string req = dir_ + "/req" + id, out = dir_ + "/resp" + id;
    std::string cmd = "curl -sS -o " + shell_quote(out) + " -w '%{http_code}' -X " + method + " --max-time " +
                      std::to_string(max_time);
    for (const std::string& h : headers) cmd += " -H " + shell_quote(h);
    if (method == "POST") {
      std::ofstream(req, std::ios::binary) << body;
      cmd += " -H 'Content-Type: application/json' --data-binary @" + shell_quote(req);
    }
    cmd += " " + shell_quote(url(path));
    test::CommandResult r = test::run_shell(cmd);
    Http h;
    h.status = std::atoi(r.out.c_str());
    h.body = slurp(out);
    return h;
  }
  Http post(const std::string& path, const json& body,
            const std::vector<std::string>& headers = {}) const {
    return request("POST", path, body.dump(), headers);
  }
  Http get(const std::string& path, const std::vector<std::string>& headers = {}) const {
    return request("GET", path, "", headers);
  }
  // The value of an unlabelled metric line ("name value"), or -1.
  double metric(const std::string& name, const std::vector<std::string>& headers = {}) const {
    Http h = get("/metrics", headers);
    std::istringstream lines(h.body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
  }

 private:
  std::string dir_;
  std::unique_ptr<Child> child_;
  int port_ = 0;
};

// The text of a streamed response: the pieces of every data event but [DONE], in order.
struct Stream {
  std::vector<json> chunks;
  bool done = false;          // ended with data: [DONE]
  bool well_formed = true;    // every event a "data: <json>" line followed by a blank line
  std::string text;           // concatenated choices[0].text / delta.content
  std::string finish_reason;  // of the last chunk that had one
};

Stream parse_stream(const std::string& body, Endpoint ep) {
  Stream s;
  size_t at = 0;
  while (at < body.size()) {
    size_t end = body.find("\n\n", at);
    if (end == std::string::npos) {
      s.well_formed = false;
      break;
    }
    std::string event = body.substr(at, end - at);
    at = end + 2;
    if (event.rfind("data: ", 0) != 0) {
      s.well_formed = false;
      continue;
    }
    std::string data = event.substr(6);
    if (s.done) s.well_formed = false;  // nothing may follow [DONE]
    if (data == "[DONE]") {
      s.done = true;
      continue;
    }
    json j = json::parse(data, nullptr, false);
    if (j.is_discarded()) {
      s.well_formed = false;
      continue;
    }
    s.chunks.push_back(j);
    if (!j.contains("choices") || j["choices"].empty()) continue;
    json c = j["choices"][0];
    if (ep == Endpoint::kChat) {
      if (c["delta"].contains("content")) s.text += c["delta"]["content"].get<std::string>();
    } else {
      s.text += c["text"].get<std::string>();
    }
    if (c["finish_reason"].is_string()) s.finish_reason = c["finish_reason"];
  }
  return s;
}

// `fastkv run` text for the same prompt (stdout minus the final newline).
std::string run_text(const std::string& args) {
  test::CommandResult r = test::run_fastkv("run -m " + shell_quote(stories()) + " -t 1 " + args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string out = r.out;
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// About `sentences` × 26 tokens of plain story text.
std::string long_prompt(int sentences) {
  std::string p;
  for (int i = 0; i < sentences; ++i) {
    p += "The little dog ran to the park and played with a red ball with his friend Tom. ";
  }
  return p;
}

// The answer is `status` with OpenAI's error object (and the given param / message part).
void expect_api_error(const Http& h, int status, const std::string& param = "",
                      const std::string& message_part = "") {
  EXPECT_EQ(h.status, status) << h.body;
  json j = h.j();
  ASSERT_TRUE(j.is_object() && j.contains("error")) << h.body;
  json e = j["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << h.body;
  EXPECT_TRUE(e["type"].is_string()) << h.body;
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << h.body;
  if (!param.empty()) {
    EXPECT_EQ(e["param"], param) << h.body;
  }
  if (!message_part.empty()) {
    EXPECT_NE(e["message"].get<std::string>().find(message_part), std::string::npos) << h.body;
  }
}

class ServerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(stories())) << stories() << " is missing (../shared)";
  }
};

// A calibration sidecar beside the model (MODEL.fastkv.json) sets the server's fastkv TSP layer:
// the start-up says so, /v1/models shows it, and a request for fastkv runs with it.
TEST_F(ServerE2E, CalibratedTspLayerIsTheFastKVDefault) {
  const std::string dir = test::temp_dir();
  const std::string model = dir + "/s.gguf";
  fs::copy_file(stories(), model);
  TspCalibration cal;
  cal.model_file = "s.gguf";
  cal.sha256 = file_sha256(model);
  file_stamp(model, cal.file_size, cal.file_mtime);
  cal.n_layer = 5;
  cal.tsp_layer = 2;
  cal.tsp_rate = 0.25;
  save_calibration(calibration_path(model), cal);
  {
    ServeProcess srv({"--method", "fastkv"}, model);
    ASSERT_TRUE(srv.ok());
    EXPECT_NE(srv.log().find("calibrated TSP layer 2 at rate 0.25"), std::string::npos)
        << srv.log();
    const Http models = srv.get("/v1/models");
    ASSERT_EQ(models.status, 200) << models.body;
    const json kv = models.j()["data"][0]["kv_compression"];
    EXPECT_EQ(kv["method"], "fastkv") << models.body;
    EXPECT_EQ(kv["tsp_layer"], 2) << models.body;
    EXPECT_DOUBLE_EQ(kv["tsp_rate"].get<double>(), 0.25) << models.body;
    const Http done = srv.post("/v1/completions", {{"prompt", long_prompt(12)},
                                                   {"max_tokens", 2},
                                                   {"kv_compression", "fastkv"}});
    EXPECT_EQ(done.status, 200) << done.body;
  }
  // Without a sidecar the default layer floor(5/2) - 1 = 1 is not announced as calibrated.
  fs::remove(calibration_path(model));
  {
    ServeProcess srv({"--method", "fastkv"}, model);
    ASSERT_TRUE(srv.ok());
    EXPECT_EQ(srv.log().find("calibrated"), std::string::npos) << srv.log();
    EXPECT_FALSE(srv.get("/v1/models").j()["data"][0]["kv_compression"].contains("tsp_layer"));
  }
  fs::remove_all(dir);
}

TEST_F(ServerE2E, CompletionEqualsRunForGreedyAndSampled) {
  ServeProcess srv({});
  ASSERT_TRUE(srv.ok());
  Http h = srv.post("/v1/completions",
                    {{"prompt", "Once upon a time"}, {"max_tokens", 40}, {"temperature", 0}});
  ASSERT_EQ(h.status, 200) << h.body;
  json j = h.j();
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "stories260K");
  EXPECT_EQ(j["choices"][0]["text"], run_text("-p 'Once upon a time' -n 40"));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 40);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(j["usage"]["total_tokens"], 45);
  EXPECT_GT(j["usage"]["kv_cache_bytes"].get<int64_t>(), 0);
  // Sampled: OpenAI's plain temperature sampling = run with top-k, top-p and min-p off.
  h = srv.post(
      "/v1/completions",
      {{"prompt", "Once upon a time"}, {"max_tokens", 40}, {"temperature", 0.9}, {"seed", 1234}});
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(h.j()["choices"][0]["text"],
            run_text("-p 'Once upon a time' -n 40 --temp 0.9 --top-k 0 --top-p 1 --min-p 0 "
                     "--seed 1234"));
  // Stop strings are cut as run cuts them.
  h = srv.post(
      "/v1/completions",
      {{"prompt", "Once upon a time"}, {"max_tokens", 40}, {"temperature", 0}, {"stop", {"park"}}});
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(h.j()["choices"][0]["text"], run_text("-p 'Once upon a time' -n 40 --stop park"));
  EXPECT_EQ(h.j()["choices"][0]["finish_reason"], "stop");
}

TEST_F(ServerE2E, ChatCompletionEqualsRunChat) {
  ServeProcess srv({});
  ASSERT_TRUE(srv.ok());
  Http h = srv.post("/v1/chat/completions",
                    {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}},
                     {"max_tokens", 40},
                     {"temperature", 0}});
  ASSERT_EQ(h.status, 200) << h.body;
  json j = h.j();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], run_text("--chat -p 'Tell me a story.' -n 40"));
  h = srv.post("/v1/chat/completions", {{"messages",
                                         {{{"role", "system"}, {"content", "You tell stories."}},
                                          {{"role", "user"}, {"content", "A dog?"}}}},
                                        {"max_tokens", 30},
                                        {"temperature", 0.7},
                                        {"seed", 9}});
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(h.j()["choices"][0]["message"]["content"],
            run_text("--chat --system 'You tell stories.' -p 'A dog?' -n 30 --temp 0.7 "
                     "--top-k 0 --top-p 1 --min-p 0 --seed 9"));
}

TEST_F(ServerE2E, StreamedChunksReassembleTheText) {
  ServeProcess srv({});
  ASSERT_TRUE(srv.ok());
  for (Endpoint ep : {Endpoint::kCompletions, Endpoint::kChat}) {
    const bool chat = ep == Endpoint::kChat;
    const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
    json body = {{"max_tokens", 48}, {"temperature", 0.8}, {"seed", 5}};
    if (chat) {
      body["messages"] = {{{"role", "user"}, {"content", "Once upon a time"}}};
    } else {
      body["prompt"] = "Once upon a time";
    }
    Http whole = srv.post(path, body);
    ASSERT_EQ(whole.status, 200) << whole.body;
    const json w = whole.j();
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    Http streamed = srv.post(path, body);
    ASSERT_EQ(streamed.status, 200) << streamed.body;
    Stream s = parse_stream(streamed.body, ep);
    EXPECT_TRUE(s.well_formed) << streamed.body;
    EXPECT_TRUE(s.done) << streamed.body;
    EXPECT_GT(s.chunks.size(), 3u);
    EXPECT_EQ(s.text, chat ? w["choices"][0]["message"]["content"] : w["choices"][0]["text"]);
    EXPECT_EQ(s.finish_reason, w["choices"][0]["finish_reason"]);
    ASSERT_FALSE(s.chunks.empty());
    // Every chunk has the request's id and the chunk object; the last one carries usage.
    for (json c : s.chunks) {
      EXPECT_EQ(c["id"], s.chunks[0]["id"]);
      EXPECT_EQ(c["object"], chat ? "chat.completion.chunk" : "text_completion");
    }
    if (chat) {
      EXPECT_EQ(s.chunks.front()["choices"][0]["delta"]["role"], "assistant");
    }
    EXPECT_TRUE(s.chunks.back()["choices"].empty());
    EXPECT_EQ(s.chunks.back()["usage"], w["usage"]);
  }
  // Without include_usage no usage chunk; still [DONE] last.
  Http plain = srv.post(
      "/v1/completions",
      {{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0}, {"stream", true}});
  Stream s = parse_stream(plain.body, Endpoint::kCompletions);
  EXPECT_TRUE(s.done && s.well_formed) << plain.body;
  for (const json& c : s.chunks) EXPECT_FALSE(c.contains("usage"));
  EXPECT_EQ(s.text, run_text("-p 'Once upon a time' -n 8"));
}

// With --max-batch 1 the engine decodes the running requests one at a time, each as it would
// alone, so the identity holds on any backend (batched rows on the f32 / bf16 GEMMs may round
// differently: BatchedRequestsGetTheirSoloAnswersOnTheQuantPath tests batching itself).
TEST_F(ServerE2E, ConcurrentClientsGetTheirSoloAnswers) {
  ServeProcess srv({"--slots", "2", "--max-batch", "1"});
  ASSERT_TRUE(srv.ok());
  const std::vector<std::string> starts = {"Once upon a time", "The dog",    "Lily and Tom",
                                           "One day, a bird",  "The sun",    "A big red ball",
                                           "Mom said",         "In the park"};
  const int kClients = 8, kEach = 3;
  // Alone first, one at a time.
  std::vector<std::string> expected(kClients * kEach);
  std::vector<json> bodies(kClients * kEach);
  for (int c = 0; c < kClients; ++c) {
    for (int k = 0; k < kEach; ++k) {
      json b = {{"max_tokens", 24 + 8 * k}, {"temperature", 0}};
      if (k == 1) {
        b["messages"] = {{{"role", "user"}, {"content", starts[c]}}};
      } else {
        b["prompt"] = starts[c];
      }
      if (k == 2) b["kv_compression"] = {{"method", "fastkv"}, {"retain_rate", 0.1}};
      bodies[c * kEach + k] = b;
      Http h = srv.post(k == 1 ? "/v1/chat/completions" : "/v1/completions", b);
      ASSERT_EQ(h.status, 200) << h.body;
      expected[c * kEach + k] = h.body;
    }
  }
  // Then all clients at once, each sending its three requests in turn, plus a /health probe
  // while they run.
  const std::string d = srv.dir();
  std::string script;
  for (int c = 0; c < kClients; ++c) {
    script += "( ";
    for (int k = 0; k < kEach; ++k) {
      const std::string n = std::to_string(c * kEach + k);
      std::ofstream(d + "/c" + n + ".json") << bodies[c * kEach + k].dump();
      script += "curl -sS --max-time 120 -o " + d + "/o" + n + " -w '%{http_code}' -H " +
                "'Content-Type: application/json' --data-binary @" + d + "/c" + n + ".json " +
                srv.url(k == 1 ? "/v1/chat/completions" : "/v1/completions") + " > " + d + "/s" +
                n + "; ";
    }
    script += ") & ";
  }
  script += "curl -sS --max-time 30 -o " + d + "/health -w '%{http_code}' " + srv.url("/health") +
            " > " + d + "/health_status; wait";
  const auto t0 = Clock::now();
  test::CommandResult r = test::run_shell(script);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(300));
  EXPECT_EQ(slurp(d + "/health_status"), "200");
  for (int i = 0; i < kClients * kEach; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_EQ(slurp(d + "/s" + n), "200") << slurp(d + "/o" + n);
    json got = json::parse(slurp(d + "/o" + n)), want = json::parse(expected[i]);
    EXPECT_EQ(got["choices"], want["choices"]) << "request " << i;
    EXPECT_EQ(got["usage"], want["usage"]) << "request " << i;
  }
  // Nothing is held once every request ended.
  EXPECT_EQ(srv.metric("fastkv_kv_cache_bytes"), 0);
  EXPECT_EQ(srv.metric("fastkv_slots_busy"), 0);
  EXPECT_EQ(srv.metric("fastkv_generations_total"), 2 * kClients * kEach);
  EXPECT_EQ(srv.metric("fastkv_decode_batch_rows_total"), srv.metric("fastkv_decode_batch_steps_total"));
}

// Continuous batching on the quant path (SmolLM2 Q4_1: the integer-dot kernels compute every
// row alone, so a batched step equals a lone one bit for bit): each of several concurrent
// greedy requests (different prompts and lengths; full and fastkv; streamed and not; with
// logprobs and a stop string; one long prompt whose prefill runs while the others decode;
// more requests than slots) gets exactly the answer it gets served alone.
TEST_F(ServerE2E, BatchedRequestsGetTheirSoloAnswersOnTheQuantPath) {
  const std::string smol = test::find_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (smol.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not found (FASTKV_MODEL_PATH)";
  ServeProcess srv({"--slots", "4", "-c", "2048"}, smol);
  ASSERT_TRUE(srv.ok());
  const json fastkv = {{"method", "fastkv"}, {"retain_rate", 0.2}, {"tsp_layer", 8}};
  struct Case {
    std::string path;
    json body;
  };
  auto user = [](const std::string& text) { return json::array({{{"role", "user"}, {"content", text}}}); };
  std::vector<Case> cases = {
      {"/v1/completions", {{"prompt", "The capital of France is"}, {"max_tokens", 40}}},
      {"/v1/chat/completions",
       {{"messages", user("Write a short poem about the sea.")},
        {"max_tokens", 48},
        {"stream", true},
        {"logprobs", true},
        {"top_logprobs", 2},
        {"kv_compression", fastkv}}},
      // About 700 tokens: its prefill (several hundred ms) runs while the others decode.
      {"/v1/completions",
       {{"prompt", long_prompt(26) + "\nQuestion: what did the dog play with?\nAnswer:"},
        {"max_tokens", 24},
        {"stream", true},
        {"logprobs", 1}}},
      {"/v1/completions",
       {{"prompt", long_prompt(12) + " Then"}, {"max_tokens", 56}, {"kv_compression", fastkv}}},
      {"/v1/chat/completions",
       {{"messages", user("List three colours.")}, {"max_tokens", 32}, {"stop", json::array({"\n\n"})}}},
      {"/v1/completions",
       {{"prompt", "def fibonacci(n):"}, {"max_tokens", 36}, {"stream", true}, {"ignore_eos", true}}},
  };
  for (Case& c : cases) c.body["temperature"] = 0;
  // What a response says about its generation: text, finish reason, logprobs, usage (streamed:
  // reassembled from the chunks).
  auto answer = [&](const Case& c, const std::string& body) {
    const Endpoint ep = c.path == "/v1/chat/completions" ? Endpoint::kChat : Endpoint::kCompletions;
    if (!c.body.value("stream", false)) {
      json j = json::parse(body, nullptr, false);
      if (j.is_discarded() || !j.contains("choices")) return json(body);
      return json{{"choices", j["choices"]}, {"usage", j["usage"]}};
    }
    Stream st = parse_stream(body, ep);
    json lps = json::array();
    for (const json& ch : st.chunks) {
      if (ch["choices"].empty() || ch["choices"][0]["logprobs"].is_null()) continue;
      lps.push_back(ch["choices"][0]["logprobs"]);
    }
    return json{{"text", st.text}, {"finish", st.finish_reason}, {"done", st.done},
                {"well_formed", st.well_formed}, {"logprobs", lps}};
  };
  std::vector<json> solo;
  for (const Case& c : cases) {
    Http h = srv.post(c.path, c.body);
    ASSERT_EQ(h.status, 200) << h.body;
    solo.push_back(answer(c, h.body));
  }
  const double steps0 = srv.metric("fastkv_decode_batch_steps_total");
  const double rows0 = srv.metric("fastkv_decode_batch_rows_total");
  EXPECT_EQ(rows0, steps0) << "one request at a time decodes one row per step";
  // All at once (two of them wait in the queue for a slot), each twice in turn.
  const std::string d = srv.dir();
  std::string script;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string n = std::to_string(i);
    std::ofstream(d + "/b" + n + ".json") << cases[i].body.dump();
    script += "( ";
    for (int k = 0; k < 2; ++k) {
      const std::string o = n + "_" + std::to_string(k);
      script += "curl -sSN --max-time 120 -o " + d + "/bo" + o + " -w '%{http_code}' -H " +
                "'Content-Type: application/json' --data-binary @" + d + "/b" + n + ".json " +
                srv.url(cases[i].path) + " > " + d + "/bs" + o + "; ";
    }
    script += ") & ";
  }
  script += "wait";
  test::CommandResult r = test::run_shell(script);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (size_t i = 0; i < cases.size(); ++i) {
    for (int k = 0; k < 2; ++k) {
      const std::string o = std::to_string(i) + "_" + std::to_string(k);
      ASSERT_EQ(slurp(d + "/bs" + o), "200") << slurp(d + "/bo" + o);
      EXPECT_EQ(answer(cases[i], slurp(d + "/bo" + o)), solo[i]) << "request " << i << " run " << k;
    }
  }
  // The requests were decoded together: some steps had several rows.
  const double steps = srv.metric("fastkv_decode_batch_steps_total") - steps0;
  const double rows = srv.metric("fastkv_decode_batch_rows_total") - rows0;
  std::printf("concurrent: %.0f rows in %.0f batched steps (mean batch %.2f)\n", rows, steps,
              rows / std::max(1.0, steps));
  EXPECT_GT(rows, 1.5 * steps);
  EXPECT_EQ(srv.metric("fastkv_kv_cache_bytes"), 0);
  EXPECT_EQ(srv.metric("fastkv_slots_busy"), 0);
  EXPECT_EQ(srv.metric("fastkv_generations_total"), 3.0 * cases.size());
}

// A running stream keeps flowing while another request's long prefill runs: the engine runs
// a decode step from the prefill's per-layer hook (docs/server.md, inter-token latency bound).
// Without the interleaving the stream would get no token until the prefill ended.
TEST_F(ServerE2E, StreamsKeepFlowingDuringAnotherRequestsPrefill) {
  const std::string smol = test::find_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (smol.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not found (FASTKV_MODEL_PATH)";
  ServeProcess srv({"--slots", "2", "-c", "4096"}, smol);
  ASSERT_TRUE(srv.ok());
  const json endless = {{"prompt", "Once upon a time"},
                        {"max_tokens", 3000},
                        {"ignore_eos", true},
                        {"temperature", 0},
                        {"stream", true}};
  std::ofstream(srv.dir() + "/endless.json") << endless.dump();
  const std::string out = srv.dir() + "/endless.out";
  Child stream({"curl", "-sN", "--max-time", "300", "-H", "Content-Type: application/json",
                "--data-binary", "@" + srv.dir() + "/endless.json", srv.url("/v1/completions")},
               out, srv.dir() + "/endless.err");
  auto chunks = [&] {
    const std::string body = slurp(out);
    size_t n = 0;
    for (size_t at = body.find("data: {"); at != std::string::npos; at = body.find("data: {", at + 1)) ++n;
    return n;
  };
  const auto until = Clock::now() + std::chrono::seconds(60);
  while (chunks() < 3 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(chunks(), 3u) << slurp(out);
  // About 3000 tokens over 30 layers: each layer takes far longer than one decode step.
  const size_t before = chunks();
  Http h = srv.post("/v1/completions", {{"prompt", long_prompt(180)}, {"max_tokens", 1}});
  const size_t after = chunks();
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_GT(h.j()["usage"]["prompt_tokens"].get<int>(), 2500);
  std::printf("the stream got %zu chunks during the other request's prefill\n", after - before);
  EXPECT_GE(after - before, 10u) << "the running stream stalled during the prefill";
}

// Waits (bounded) until the server has recorded `n` generations.
void wait_for_generations(const ServeProcess& srv, int n) {
  const auto until = Clock::now() + std::chrono::seconds(60);
  while (srv.metric("fastkv_generations_total") < n && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

TEST_F(ServerE2E, ClientThatDisconnectsFreesItsSlot) {
  ServeProcess srv({"--slots", "1"});
  ASSERT_TRUE(srv.ok());
  // A stream that would run to the end of the context (2043 tokens), read up to its first
  // chunk: head exits, curl dies of SIGPIPE on its next write, the connection closes.
  const json endless = {{"prompt", "Once upon a time"},
                        {"max_tokens", 100000},
                        {"ignore_eos", true},
                        {"temperature", 0},
                        {"stream", true}};
  std::ofstream(srv.dir() + "/endless.json") << endless.dump();
  test::CommandResult first = test::run_shell(
      "curl -sN --max-time 120 -H 'Content-Type: application/json' --data-binary @" + srv.dir() +
      "/endless.json " + srv.url("/v1/completions") + " | head -n 1");
  EXPECT_EQ(first.out.rfind("data: {", 0), 0u) << first.out << first.err;
  // The only slot is free again at once: a second request completes.
  const auto t0 = Clock::now();
  Http second = srv.post("/v1/completions",
                         {{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 0}});
  const double second_s = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(second.j()["usage"]["completion_tokens"], 8);
  EXPECT_LT(second_s, 30.0);
  wait_for_generations(srv, 2);
  EXPECT_EQ(srv.metric("fastkv_generations_cancelled_total"), 1);
  // The abandoned stream stopped early (the second request made 8 of these tokens).
  EXPECT_LT(srv.metric("fastkv_completion_tokens_total"), 1500) << srv.get("/metrics").body;

  // Not streamed: a client that gives up (curl --max-time) stops the generation too. A
  // 1200-token prompt makes the full answer take far longer than the client waits.
  const json slow = {{"prompt", long_prompt(45)},
                     {"max_tokens", 100000},
                     {"ignore_eos", true},
                     {"temperature", 0}};
  Http gave_up = srv.request("POST", "/v1/completions", slow.dump(), {}, 0.3);
  if (gave_up.status == 200) GTEST_SKIP() << "the whole answer came within 0.3 s";
  wait_for_generations(srv, 3);
  EXPECT_EQ(srv.metric("fastkv_generations_cancelled_total"), 2);
  EXPECT_EQ(srv.metric("fastkv_slots_busy"), 0);
  EXPECT_EQ(srv.metric("fastkv_kv_cache_bytes"), 0);
}

TEST_F(ServerE2E, FullQueueAnswers503) {
  ServeProcess srv({"--slots", "1", "--queue", "0"});
  ASSERT_TRUE(srv.ok());
  // Occupy the slot with a long stream (long prompt, then 1500 tokens).
  const json busy = {{"prompt", long_prompt(25)},
                     {"max_tokens", 1500},
                     {"ignore_eos", true},
                     {"temperature", 0},
                     {"stream", true}};
  std::ofstream(srv.dir() + "/busy.json") << busy.dump();
  {
    Child client({"curl", "-sN", "--max-time", "120", "-H", "Content-Type: application/json",
                  "--data-binary", "@" + srv.dir() + "/busy.json", srv.url("/v1/completions")},
                 srv.dir() + "/busy.out", srv.dir() + "/busy.err");
    const auto until = Clock::now() + std::chrono::seconds(60);
    while (slurp(srv.dir() + "/busy.out").find("data: ") == std::string::npos &&
           Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Http h = srv.post("/v1/completions", {{"prompt", "hi"}, {"max_tokens", 2}});
    expect_api_error(h, 503);
    EXPECT_EQ(h.j()["error"]["type"], "server_error") << h.body;
    EXPECT_EQ(h.j()["error"]["code"], "server_busy") << h.body;
    EXPECT_EQ(slurp(srv.dir() + "/busy.out").find("[DONE]"), std::string::npos)
        << "the long stream ended before the second request was sent";
    // /health answers while the slot is taken.
    EXPECT_EQ(srv.get("/health").status, 200);
  }  // the client is killed here: its slot frees
  wait_for_generations(srv, 1);
  Http after = srv.post("/v1/completions", {{"prompt", "hi"}, {"max_tokens", 2}});
  EXPECT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(srv.metric("fastkv_queue_rejections_total"), 1);
}

TEST_F(ServerE2E, BadRequestsGetTheirStatusAndErrorJson) {
  ServeProcess srv({"--max-body", "4096", "-c", "64"});
  ASSERT_TRUE(srv.ok());
  auto post = [&](const std::string& path, const std::string& body) {
    return srv.request("POST", path, body);
  };
  const std::string C = "/v1/completions", CC = "/v1/chat/completions";
  expect_api_error(post(C, "{\"prompt\": "), 400, "", "not valid JSON");
  expect_api_error(post(C, "not json at all"), 400);
  expect_api_error(post(C, ""), 400);
  expect_api_error(post(C, "[]"), 400);
  expect_api_error(post(C, R"({"prompt": 5})"), 400, "prompt");
  expect_api_error(post(C, R"({"prompt": "x", "max_tokens": "ten"})"), 400, "max_tokens");
  expect_api_error(post(C, R"({"prompt": "x", "max_tokens": -1})"), 400, "max_tokens");
  expect_api_error(post(C, R"({"prompt": "x", "temperature": 2.5})"), 400, "temperature");
  expect_api_error(post(C, R"({"prompt": "x", "top_p": 0})"), 400, "top_p");
  expect_api_error(post(C, R"({"prompt": "x", "stream": "yes"})"), 400, "stream");
  expect_api_error(post(CC, R"({"messages": "hi"})"), 400, "messages");
  expect_api_error(post(CC, R"({"messages": [{"role": "robot", "content": "x"}]})"), 400,
                   "messages[0].role");
  // Compression: unknown method, rates out of range, bad values.
  expect_api_error(post(C, R"({"prompt": "x", "kv_compression": {"method": "nope"}})"), 400,
                   "kv_compression", "unknown method 'nope'");
  expect_api_error(
      post(C, R"({"prompt": "x", "kv_compression": {"method": "fastkv", "retain_rate": 0}})"), 400,
      "kv_compression", "retain_rate");
  expect_api_error(
      post(C, R"({"prompt": "x", "kv_compression": {"method": "fastkv", "tsp_rate": 1.5}})"), 400,
      "kv_compression", "tsp_rate");
  expect_api_error(post(C, R"({"prompt": "x", "kv_compression": {"method": "fastkv",
                              "retain_rate": 0.3, "tsp_rate": 0.1}})"),
                   400, "kv_compression");
  expect_api_error(
      post(C, R"({"prompt": "x", "kv_compression": {"method": "fastkv", "window": "wide"}})"), 400,
      "kv_compression", "window");
  expect_api_error(
      post(C, R"({"prompt": "x", "kv_compression": {"method": "fastkv", "tsp_layer": 9}})"), 400,
      "kv_compression", "tsp_layer");
  // Longer than the context (-c 64).
  Http too_long = post(C, json{{"prompt", long_prompt(5)}}.dump());
  expect_api_error(too_long, 400, "prompt", "context holds 64");
  EXPECT_EQ(too_long.j()["error"]["code"], "context_length_exceeded");
  expect_api_error(
      post(CC, json{{"messages", {{{"role", "user"}, {"content", long_prompt(5)}}}}}.dump()), 400,
      "messages");
  // Larger than --max-body.
  Http big = post(C, json{{"prompt", std::string(5000, 'a')}}.dump());
  expect_api_error(big, 413);
  EXPECT_EQ(big.j()["error"]["code"], "request_too_large");
  // Unknown routes.
  expect_api_error(srv.get("/v1/nothing"), 404);
  expect_api_error(post("/v1/nothing", "{}"), 404);
  expect_api_error(srv.get("/v1/completions"), 404);
  // Odd input that must neither crash nor pass.
  expect_api_error(post(C, "{\"prompt\": \"\xff\xfe\"}"), 400);
  expect_api_error(post(C, std::string(1500, '[') + std::string(1500, ']')), 400);
  expect_api_error(post(C, R"({"prompt": "x", "max_tokens": 1e400})"), 400);
  expect_api_error(post(C, std::string("{\"prompt\": \"a\0b\"}", 17)), 400);
  // Unknown fields are ignored; a null field is absent.
  Http fine = post(C, R"({"prompt": "Once", "max_tokens": 2, "frobnicate": {"a": [1]},
                          "temperature": null, "seed": -5})");
  EXPECT_EQ(fine.status, 200) << fine.body;
  // Still serving, and every answer was counted.
  EXPECT_EQ(srv.get("/health").status, 200);
  Http m = srv.get("/metrics");
  EXPECT_NE(m.body.find("fastkv_requests_total{endpoint=\"/v1/completions\",status=\"400\"}"),
            std::string::npos);
  EXPECT_NE(m.body.find("fastkv_requests_total{endpoint=\"/v1/completions\",status=\"413\"} 1"),
            std::string::npos);
  EXPECT_NE(m.body.find("fastkv_requests_total{endpoint=\"other\",status=\"404\"} 2"),
            std::string::npos);
}

// A second server on a port in use must not start (httplib's SO_REUSEPORT would let both
// listen, the kernel splitting connections between them).
TEST_F(ServerE2E, SecondServerOnAPortInUseFailsAtStart) {
  ServeProcess first({});
  ASSERT_TRUE(first.ok());
  test::CommandResult r = test::run_shell("timeout 60 '" + test::fastkv_bin() + "' serve -m " +
                                          shell_quote(stories()) + " --port " +
                                          std::to_string(first.port()));
  EXPECT_EQ(r.exit_code, 1) << test::describe(r);
  EXPECT_TRUE(test::has_error_line(r, "already in use")) << test::describe(r);
  EXPECT_EQ(r.err.find("listening on"), std::string::npos) << r.err;
  // The first one answers every request still.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(first.get("/health").status, 200);
}

// The listening socket's backlog is every connection the server takes at once (slots + queue +
// spare threads), not httplib's 5: `ss -ltn` shows it as the listener's Send-Q.
TEST_F(ServerE2E, ListenBacklogIsSizedToTheQueue) {
  if (test::run_shell("command -v ss").exit_code != 0) GTEST_SKIP() << "no ss (iproute2)";
  ServeProcess srv({"--slots", "3", "--queue", "100"});
  ASSERT_TRUE(srv.ok());
  test::CommandResult r =
      test::run_shell("ss -ltnH 'sport = :" + std::to_string(srv.port()) + "'");
  ASSERT_EQ(r.exit_code, 0) << test::describe(r);
  std::istringstream line(r.out);
  std::string state;
  int recv_q = -1, send_q = -1;
  line >> state >> recv_q >> send_q;
  EXPECT_EQ(state, "LISTEN") << r.out;
  EXPECT_EQ(send_q, 3 + 100 + 8) << r.out;
}

// curl -d sends application/x-www-form-urlencoded; httplib would parse that as a form and
// refuse one over 8 KiB. The body is JSON whatever its Content-Type.
TEST_F(ServerE2E, BodyWithoutAJsonContentTypeIsReadAsJson) {
  ServeProcess srv({"--max-body", "20000"});
  ASSERT_TRUE(srv.ok());
  // 12 KB: a 500-token prompt and an unknown field (ignored) as padding.
  const json body = {{"prompt", long_prompt(19)},
                     {"max_tokens", 2},
                     {"temperature", 0},
                     {"padding", std::string(10500, 'x')}};
  const std::string text = body.dump();
  ASSERT_GT(text.size(), 12000u);
  std::ofstream(srv.dir() + "/big.json", std::ios::binary) << text;
  for (const std::string& how : {std::string("-d @"), std::string("-H 'Content-Type:' --data-binary @"),
                                 std::string("-H 'Content-Type: text/plain' --data-binary @")}) {
    test::CommandResult r = test::run_shell("curl -sS --max-time 120 -w '\n%{http_code}' " + how +
                                            shell_quote(srv.dir() + "/big.json") + " " +
                                            shell_quote(srv.url("/v1/completions")));
    const size_t nl = r.out.rfind('\n');
    ASSERT_NE(nl, std::string::npos) << r.out << r.err;
    EXPECT_EQ(r.out.substr(nl + 1), "200") << how << ": " << r.out;
    json j = json::parse(r.out.substr(0, nl), nullptr, false);
    EXPECT_EQ(j["usage"]["completion_tokens"], 2) << how << ": " << r.out;
  }
  // --max-body still holds, whatever the type.
  std::ofstream(srv.dir() + "/huge.json", std::ios::binary)
      << json{{"prompt", std::string(30000, 'a')}}.dump();
  test::CommandResult big = test::run_shell(
      "curl -sS --max-time 60 -w '\n%{http_code}' -d @" + shell_quote(srv.dir() + "/huge.json") +
      " " + shell_quote(srv.url("/v1/completions")));
  EXPECT_NE(big.out.find("request_too_large"), std::string::npos) << big.out;
  EXPECT_EQ(big.out.substr(big.out.rfind('\n') + 1), "413") << big.out;
  // A multipart form is no JSON: refused without reading it.
  test::CommandResult form = test::run_shell("curl -sS --max-time 60 -w '\n%{http_code}' -F a=b " +
                                             shell_quote(srv.url("/v1/completions")));
  EXPECT_EQ(form.out.substr(form.out.rfind('\n') + 1), "415") << form.out;
  EXPECT_EQ(srv.get("/health").status, 200);
}

// Features the server does not have are refused, not ignored; model names are checked.
TEST_F(ServerE2E, ToolsResponseFormatAndUnknownModelsAreRefused) {
  ServeProcess srv({"--alias", "tiny"});
  ASSERT_TRUE(srv.ok());
  const std::string CC = "/v1/chat/completions", C = "/v1/completions";
  const json msgs = {{{"role", "user"}, {"content", "Hi"}}};
  json tools = {{"messages", msgs},
                {"tools",
                 {{{"type", "function"},
                   {"function", {{"name", "f"}, {"parameters", json::object()}}}}}}};
  expect_api_error(srv.post(CC, tools), 400, "tools", "tool");
  expect_api_error(srv.post(CC, {{"messages", msgs}, {"tool_choice", "none"}}), 400, "tool_choice");
  expect_api_error(
      srv.post(CC, {{"messages", msgs}, {"response_format", {{"type", "json_object"}}}}), 400,
      "response_format", "json_object");
  expect_api_error(srv.post(CC, {{"messages", msgs},
                                 {"response_format",
                                  {{"type", "json_schema"},
                                   {"json_schema", {{"name", "x"}, {"schema", json::object()}}}}}}),
                   400, "response_format", "json_schema");
  EXPECT_EQ(srv.post(CC, {{"messages", msgs},
                          {"max_tokens", 2},
                          {"response_format", {{"type", "text"}}}})
                .status,
            200);
  Http unknown = srv.post(C, {{"prompt", "Once"}, {"max_tokens", 2}, {"model", "gpt-4o"}});
  expect_api_error(unknown, 404, "model", "'gpt-4o'");
  EXPECT_EQ(unknown.j()["error"]["code"], "model_not_found");
  // The alias, the file's name and its stem are served; the answer names the alias.
  for (const std::string name : {"tiny", "stories260K", "stories260K.gguf"}) {
    Http ok = srv.post(C, {{"prompt", "Once"}, {"max_tokens", 2}, {"model", name}});
    EXPECT_EQ(ok.status, 200) << name << ": " << ok.body;
    EXPECT_EQ(ok.j()["model"], "tiny") << ok.body;
  }
  EXPECT_EQ(srv.get("/v1/models").j()["data"][0]["id"], "tiny");
}

// logprobs / top_logprobs in OpenAI's shapes, streamed too, and logit_bias.
TEST_F(ServerE2E, LogprobsAndLogitBias) {
  ServeProcess srv({});
  ASSERT_TRUE(srv.ok());
  const std::string C = "/v1/completions", CC = "/v1/chat/completions";
  json body = {{"prompt", "Once upon a time"},
               {"max_tokens", 12},
               {"temperature", 0},
               {"logprobs", 3}};
  Http plain = srv.post(C, body);
  ASSERT_EQ(plain.status, 200) << plain.body;
  json choice = plain.j()["choices"][0];
  json lp = choice["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 12u) << plain.body;
  ASSERT_EQ(lp["token_logprobs"].size(), 12u);
  ASSERT_EQ(lp["top_logprobs"].size(), 12u);
  ASSERT_EQ(lp["text_offset"].size(), 12u);
  std::string joined;
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(lp["text_offset"][i], joined.size());
    joined += lp["tokens"][i].get<std::string>();
    // Greedy: the chosen token is the most likely of its alternatives.
    const json& top = lp["top_logprobs"][i];
    ASSERT_EQ(top.size(), 3u) << top;
    double best = -1e9;
    for (const auto& [piece, v] : top.items()) best = std::max(best, v.get<double>());
    EXPECT_DOUBLE_EQ(lp["token_logprobs"][i].get<double>(), best);
    EXPECT_LE(best, 0.0);
  }
  EXPECT_EQ(joined, choice["text"]);
  // Streamed: the chunks' logprobs add up to the same tokens and values.
  body["stream"] = true;
  Http streamed = srv.post(C, body);
  ASSERT_EQ(streamed.status, 200);
  Stream st = parse_stream(streamed.body, Endpoint::kCompletions);
  EXPECT_EQ(st.text, choice["text"]);
  json tokens = json::array(), values = json::array(), offsets = json::array();
  for (const json& ch : st.chunks) {
    if (ch["choices"].empty() || ch["choices"][0]["logprobs"].is_null()) continue;
    const json& l = ch["choices"][0]["logprobs"];
    for (size_t i = 0; i < l["tokens"].size(); ++i) {
      tokens.push_back(l["tokens"][i]);
      values.push_back(l["token_logprobs"][i]);
      offsets.push_back(l["text_offset"][i]);
    }
  }
  EXPECT_EQ(tokens, lp["tokens"]);
  EXPECT_EQ(values, lp["token_logprobs"]);
  EXPECT_EQ(offsets, lp["text_offset"]);
  // Chat: logprobs true + top_logprobs, as content entries with bytes.
  json chat = {{"messages", {{{"role", "user"}, {"content", "Tell me a story"}}}},
               {"max_tokens", 6},
               {"temperature", 0},
               {"logprobs", true},
               {"top_logprobs", 2}};
  Http c = srv.post(CC, chat);
  ASSERT_EQ(c.status, 200) << c.body;
  json content = c.j()["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), c.j()["usage"]["completion_tokens"].get<size_t>()) << c.body;
  for (const json& e : content) {
    EXPECT_TRUE(e["token"].is_string());
    EXPECT_EQ(e["bytes"].size(), e["token"].get<std::string>().size()) << e;
    ASSERT_EQ(e["top_logprobs"].size(), 2u);
    EXPECT_EQ(e["top_logprobs"][0]["token"], e["token"]);
  }
  chat["stream"] = true;
  Stream cs = parse_stream(srv.post(CC, chat).body, Endpoint::kChat);
  size_t n_streamed = 0;
  for (const json& ch : cs.chunks) {
    if (!ch["choices"].empty() && ch["choices"][0]["logprobs"].is_object()) {
      n_streamed += ch["choices"][0]["logprobs"]["content"].size();
    }
  }
  EXPECT_EQ(n_streamed, content.size());
  // Without logprobs the field is null.
  EXPECT_TRUE(srv.post(C, {{"prompt", "Once"}, {"max_tokens", 2}})
                  .j()["choices"][0]["logprobs"]
                  .is_null());
  // logit_bias: banning the greedy first token makes the second most likely one come first.
  auto model = Model::load(stories());
  const Tokenizer& tok = model->require_tokenizer();
  auto id_of = [&](const std::string& piece) {
    for (int32_t id = 0; id < tok.n_vocab(); ++id) {
      if (tok.token_to_piece(id) == piece) return id;
    }
    return -1;
  };
  // Every token whose piece is the first one's (a byte token may spell it too) is banned.
  json bans = json::object();
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    if (tok.token_to_piece(id) == lp["tokens"][0].get<std::string>()) bans[std::to_string(id)] = -100;
  }
  ASSERT_FALSE(bans.empty());
  std::string second_piece;
  double second_lp = -1e9;
  for (const auto& [piece, v] : lp["top_logprobs"][0].items()) {
    if (piece != lp["tokens"][0] && v.get<double>() > second_lp) {
      second_lp = v.get<double>();
      second_piece = piece;
    }
  }
  json banned = {{"prompt", "Once upon a time"},
                 {"max_tokens", 1},
                 {"temperature", 0},
                 {"logprobs", 1},
                 {"logit_bias", bans}};
  Http b = srv.post(C, banned);
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(b.j()["choices"][0]["logprobs"]["tokens"][0], second_piece) << b.body;
  // ... and a big enough bias makes any token come first.
  const int32_t forced = id_of(" dragon") >= 0 ? id_of(" dragon") : id_of("a");
  ASSERT_GE(forced, 0);
  banned["logit_bias"] = {{std::to_string(forced), 100}};
  b = srv.post(C, banned);
  EXPECT_EQ(b.j()["choices"][0]["logprobs"]["tokens"][0], tok.token_to_piece(forced)) << b.body;
  expect_api_error(srv.post(C, {{"prompt", "x"}, {"logit_bias", {{"999999", 1}}}}), 400,
                   "logit_bias", "vocabulary");
}

// A client that leaves during a long prefill frees its slot after the layer that is running,
// not at the end of the prefill: the generation ends with no token sampled.
TEST_F(ServerE2E, ClientThatLeavesDuringPrefillFreesItsSlot) {
  const std::string smol = test::find_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (smol.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not found (FASTKV_MODEL_PATH)";
  ServeProcess srv({"--slots", "1", "-c", "4096"}, smol);
  ASSERT_TRUE(srv.ok());
  // About 3000 tokens: seconds of prefill on one thread.
  const json slow = {{"prompt", long_prompt(180)}, {"max_tokens", 4}, {"temperature", 0}};
  const auto t0 = Clock::now();
  Http gave_up = srv.request("POST", "/v1/completions", slow.dump(), {}, 1.0);
  const auto left = Clock::now();
  if (gave_up.status == 200) GTEST_SKIP() << "the whole answer came within 1 s";
  wait_for_generations(srv, 1);
  const double free_after = std::chrono::duration<double>(Clock::now() - left).count();
  std::printf("client left after %.2f s; the slot was free %.2f s later\n",
              std::chrono::duration<double>(left - t0).count(), free_after);
  EXPECT_EQ(srv.metric("fastkv_generations_cancelled_total"), 1);
  EXPECT_EQ(srv.metric("fastkv_completion_tokens_total"), 0) << "the prefill ran to its end";
  EXPECT_EQ(srv.metric("fastkv_slots_busy"), 0);
  EXPECT_EQ(srv.metric("fastkv_kv_cache_bytes"), 0);
  // The slot serves the next request.
  Http next = srv.post("/v1/completions", {{"prompt", "Hello"}, {"max_tokens", 2}});
  EXPECT_EQ(next.status, 200) << next.body;
}

TEST_F(ServerE2E, ApiKeyIsRequiredEverywhereButHealth) {
  ServeProcess srv({"--api-key", "s3cret"});
  ASSERT_TRUE(srv.ok());
  const json body = {{"prompt", "Once upon a time"}, {"max_tokens", 4}, {"temperature", 0}};
  const std::string good = "Authorization: Bearer s3cret";
  expect_api_error(srv.post("/v1/completions", body), 401);
  expect_api_error(srv.post("/v1/completions", body, {"Authorization: Bearer wrong"}), 401);
  expect_api_error(srv.post("/v1/completions", body, {"Authorization: s3cret"}), 401);
  expect_api_error(srv.post("/v1/completions", body, {"Authorization: Bearer s3cret2"}), 401);
  expect_api_error(srv.post("/v1/chat/completions", body), 401);
  expect_api_error(srv.get("/v1/models"), 401);
  expect_api_error(srv.get("/metrics"), 401);
  expect_api_error(srv.get("/v1/nothing"), 401);
  EXPECT_EQ(srv.post("/v1/completions", body).j()["error"]["code"], "invalid_api_key");
  EXPECT_EQ(srv.get("/health").status, 200);
  Http ok = srv.post("/v1/completions", body, {good});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.j()["usage"]["completion_tokens"], 4);
  Http models = srv.get("/v1/models", {good});
  ASSERT_EQ(models.status, 200) << models.body;
  EXPECT_EQ(models.j()["object"], "list");
  EXPECT_EQ(models.j()["data"][0]["id"], "stories260K");
  EXPECT_EQ(srv.get("/metrics", {good}).status, 200);
}

TEST_F(ServerE2E, PerRequestCompressionShrinksTheCacheAndMetricsCount) {
  ServeProcess srv({});
  ASSERT_TRUE(srv.ok());
  const std::string prompt = long_prompt(15);  // about 400 tokens
  json full_body = {{"prompt", prompt}, {"max_tokens", 8}, {"temperature", 0}};
  Http full = srv.post("/v1/completions", full_body);
  ASSERT_EQ(full.status, 200) << full.body;
  json fast_body = full_body;
  fast_body["kv_compression"] = {{"method", "fastkv"}, {"retain_rate", 0.1}, {"tsp_rate", "0.2"}};
  Http fast = srv.post("/v1/completions", fast_body);
  ASSERT_EQ(fast.status, 200) << fast.body;
  const json fu = full.j()["usage"], ku = fast.j()["usage"];
  EXPECT_GT(fu["prompt_tokens"].get<int>(), 350);
  EXPECT_LT(fu["prompt_tokens"].get<int>(), 450);
  EXPECT_EQ(ku["prompt_tokens"], fu["prompt_tokens"]);
  EXPECT_EQ(full.j()["kv_compression"]["method"], "full");
  EXPECT_EQ(fast.j()["kv_compression"]["method"], "fastkv");
  const int64_t full_bytes = fu["kv_cache_bytes"], fast_bytes = ku["kv_cache_bytes"];
  EXPECT_GT(full_bytes, 0);
  EXPECT_LT(fast_bytes, full_bytes / 4) << "fastkv " << fast_bytes << " vs full " << full_bytes;
  // The same cache as `fastkv run --method fastkv` reports.
  test::CommandResult run =
      test::run_shell("printf %s " + shell_quote(prompt) + " > " + srv.dir() + "/p.txt && '" +
                      test::fastkv_bin() + "' run -m " + shell_quote(stories()) + " -t 1 -f " + srv.dir() +
                      "/p.txt -n 8 --method fastkv --retain-rate 0.1 --tsp-rate 0.2");
  EXPECT_NE(run.err.find("(" + std::to_string(fast_bytes) + " bytes)"), std::string::npos)
      << run.err;

  // Metrics: per-endpoint requests, token totals, histograms, cache held now.
  Http m = srv.get("/metrics");
  ASSERT_EQ(m.status, 200);
  const int prompt_tokens = fu["prompt_tokens"].get<int>() * 2;
  auto has = [&](const std::string& line) {
    EXPECT_NE(m.body.find(line + "\n"), std::string::npos) << "missing: " << line << "\n" << m.body;
  };
  has("fastkv_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2");
  has("fastkv_prompt_tokens_total " + std::to_string(prompt_tokens));
  has("fastkv_completion_tokens_total 16");
  has("# TYPE fastkv_time_to_first_token_seconds histogram");
  has("fastkv_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2");
  has("fastkv_time_to_first_token_seconds_count 2");
  has("fastkv_decode_seconds_count 2");
  has("fastkv_kv_cache_bytes 0");
  // A scrape is counted once it has been answered: the next one shows it.
  EXPECT_NE(srv.get("/metrics")
                .body.find("fastkv_requests_total{endpoint=\"/metrics\",status=\"200\"} 1\n"),
            std::string::npos);
}

TEST_F(ServerE2E, ServerDefaultMethodComesFromTheCommandLine) {
  ServeProcess srv({"--method", "fastkv", "--retain-rate", "0.1", "--tsp-rate", "0.2"});
  ASSERT_TRUE(srv.ok());
  json body = {{"prompt", long_prompt(15)}, {"max_tokens", 2}, {"temperature", 0}};
  Http dflt = srv.post("/v1/completions", body);
  ASSERT_EQ(dflt.status, 200) << dflt.body;
  // The command line's options, typed by fastkv's schema: numbers echoed as numbers.
  EXPECT_EQ(dflt.j()["kv_compression"],
            (json{{"method", "fastkv"}, {"retain_rate", 0.1}, {"tsp_rate", 0.2}}));
  body["kv_compression"] = {{"method", "full"}};
  Http full = srv.post("/v1/completions", body);
  ASSERT_EQ(full.status, 200) << full.body;
  EXPECT_LT(dflt.j()["usage"]["kv_cache_bytes"].get<int64_t>(),
            full.j()["usage"]["kv_cache_bytes"].get<int64_t>());
  Http models = srv.get("/v1/models");
  EXPECT_EQ(models.j()["data"][0]["kv_compression"],
            (json{{"method", "fastkv"}, {"retain_rate", 0.1}, {"tsp_rate", 0.2}}))
      << "the server's defaults, numbers as numbers";
  EXPECT_EQ(models.j()["data"][0]["slots"], 2) << models.body;
  EXPECT_EQ(models.j()["data"][0]["context_length"], 2048) << models.body;
  // The backend in use (--backend auto is the default: bf16 where the CPU has native bf16).
  const std::string backend = models.j()["data"][0].value("backend", "");
  EXPECT_TRUE(backend == "bf16" || backend == "f32") << models.body;
  // The start-up line names the model, backend, default method with its options, slots and
  // context, so that a log shows what the server runs.
  const std::string log = srv.log();
  for (const std::string& part :
       {std::string("fastkv serve: model stories260K (llama, 5 layers), backend ") + backend,
        std::string("method fastkv (retain_rate=0.1 tsp_rate=0.2)"), std::string("slots 2"),
        std::string("context 2048")}) {
    EXPECT_NE(log.find(part), std::string::npos) << part << "\n" << log;
  }
}

TEST_F(ServerE2E, BadCommandLinesFailAtStart) {
  // `timeout`: a server that started anyway must not hang the test.
  auto serve = [](const std::string& args) {
    return test::run_shell("timeout 60 '" + test::fastkv_bin() + "' serve --port 0 " + args);
  };
  test::CommandResult r = serve("-m " + shell_quote(stories()) + " --method nope");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: unknown method 'nope'"), std::string::npos) << r.err;
  r = serve("-m " + shell_quote(stories()) + " --method fastkv --retain-rate 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: --retain-rate"), std::string::npos) << r.err;
  r = serve("-m " + shell_quote(stories()) + " --slots 0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: --slots must be >= 1"), std::string::npos) << r.err;
  r = serve("-m " + shell_quote(stories()) + " --max-batch -1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: --max-batch must be >= 0"), std::string::npos) << r.err;
  r = serve("-m /nonexistent.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("listening on"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fastkv
