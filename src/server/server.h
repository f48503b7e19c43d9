// `fastkv serve`: an OpenAI-compatible HTTP server over one loaded model.
//
// Routes: POST /v1/completions, POST /v1/chat/completions (both may stream server-sent
// events), GET /v1/models, GET /health, GET /metrics (Prometheus). Each request gets its own
// Session (KV cache + compression policy, chosen per request by `kv_compression`); one engine
// thread runs them all, decoding the running requests together one batched step at a time
// (continuous batching; src/server/engine.cpp). `slots` requests generate at once, up to
// `queue` more wait in line,
// beyond that the answer is 503. A request whose client disconnects stops at its next token
// (streamed or not) or leaves the queue, and its cache is freed when it ends. See
// docs/server.md for the API.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "server/openai.h"

namespace fastkv::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;            // 0: any free port (bind() returns it)
  int slots = 2;              // requests generating at once, >= 1
  int queue = 64;             // requests waiting for a slot, >= 0
  size_t max_body = 8388608;  // bytes; larger bodies get 413
  std::string api_key;        // non-empty: every route but /health needs the bearer key
  int ctx_size = 0;           // 0 = the model's training context
  int threads = 0;            // OpenMP threads of the engine; 0 = all cores
  // Most running requests one decode step runs together (Model::decode_batch rows); more run
  // in several calls. 0 = slots. 1: each alone, as a request served alone computes it (on the
  // f32 / bf16 backends a batched GEMM may round differently from a lone one).
  int max_batch = 0;
  std::string model_id;       // the name /v1/models and responses report
  // Other names a request's "model" may carry (the file's name); any other name gets 404.
  std::vector<std::string> model_names;
  MethodDefaults defaults;    // the command line's --method and its options
};

class Server {
 public:
  // A server without its model yet: bind() and run() work at once; /health answers 503
  // {"status":"loading"} and the routes that need the model 503 with Retry-After until
  // set_model(), so a balancer or a readiness probe sends no request to a replica that is
  // still loading. Checks the options that need no model; throws fastkv::Error.
  explicit Server(ServerOptions opts);
  // Server(opts) and set_model(model) in one.
  Server(const Model& model, ServerOptions opts);
  // Serves `model` (which outlives the server) from now on: /health turns 200. Once only,
  // from any thread, also while run() serves. `defaults`, when given, replaces the options'
  // default method (its calibrated TSP layer is known only once the model is read). Checks
  // the default method against the model; throws fastkv::Error (the server then stays
  // "loading").
  void set_model(const Model& model, std::optional<MethodDefaults> defaults = std::nullopt);
  // set_model() has returned.
  bool ready() const;
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port (the chosen one for port 0). Throws
  // fastkv::Error when the address cannot be bound.
  int bind();
  // One line for the start-up message: model, backend, default method and its options, slots,
  // queue, context and threads per request. Needs the model (set_model()).
  std::string summary() const;
  // Serves until stop() (from any thread or a signal-handling thread); the engine thread ends
  // before it returns.
  void run();
  void stop();

  // The inside (src/server/server_impl.h, seen only by src/server/*.cpp).
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fastkv::server
