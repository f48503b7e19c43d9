// The server's inside, shared by the files that hold its parts (private to src/server/):
//   server.cpp      construction, the public Server calls, helpers
//   admission.cpp   the API key check and admission: parse, tokenize, check, wait for a slot
//   generation.cpp  running an admitted request: one JSON response or a server-sent stream
//   routes.cpp      the routes, httplib's own error responses, the request log
// and connection_watch.* (has the client gone?), auth.* (the bearer key), slots.* (slots and
// queue), metrics.* (Prometheus counters), openai.* (the API's JSON).
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/connection_watch.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/slots.h"

namespace fastkv::server {

// A request that holds a slot: everything its generation needs.
struct Job {
  CompletionRequest req;
  std::vector<int32_t> prompt;
  std::unique_ptr<CompressionMethod> policy;
  ResponseMeta meta;
  std::unique_ptr<SlotLease> lease;
  ConnectionWatch watch;
  explicit Job(const httplib::Request& http_req)
      : watch(http_req.remote_addr, http_req.remote_port, http_req.local_port) {}
};

// Writes `e` as the OpenAI-style JSON error body with its status.
void send_error(httplib::Response& res, const ApiError& e);
// A fresh random seed (requests without "seed").
uint64_t random_seed();
// Seconds since the Unix epoch ("created").
int64_t unix_now();

struct Server::Impl {
  ServerOptions opts;
  // Set once by set_model(), before `ready` turns true; read only by routes that saw `ready`
  // (the listening socket and /health, /metrics come first, the model after).
  const Model* model = nullptr;
  const Tokenizer* tok = nullptr;
  std::optional<ChatTemplate> tmpl;
  std::string tmpl_error;
  int ctx = 0;
  int threads = 1;
  std::atomic<bool> ready{false};
  SlotPool pool;
  Metrics metrics;
  httplib::Server http;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> next_id{1};
  std::string id_prefix;
  int listen_fd = -1;  // the listening socket once bound (set by the socket-options hook)

  // server.cpp
  explicit Impl(ServerOptions o);
  void set_model(const Model& m, std::optional<MethodDefaults> defaults);
  std::string next_id_str(Endpoint ep);
  // Connections the server serves at once: one per generating slot, one per waiter, and
  // spares so /health, /metrics and refusals answer while every slot and queue place is taken.
  // The size of the thread pool and of the listening socket's backlog.
  int connections() const;
  // The names a request's "model" may carry: the model id, then opts.model_names.
  std::vector<std::string> served_names() const;

  // admission.cpp
  bool authorized(const httplib::Request& req) const;
  // Throws the 401 (and sets WWW-Authenticate) unless the request carries the key.
  void require_auth(const httplib::Request& req, httplib::Response& res) const;
  // Parses, validates, tokenizes and waits for a slot. Returns nullptr when the client went
  // away while waiting. Throws ApiError.
  std::shared_ptr<Job> admit(const httplib::Request& http_req, httplib::Response& res, Endpoint ep);

  // generation.cpp
  // Runs one generation in the calling thread; frees the cache before returning.
  // on_piece returning false stops it (the client went away).
  GenerationResult generate(Job& job, const std::function<bool(const std::string&)>& on_piece,
                            bool* cancelled);
  // POST /v1/completions and /v1/chat/completions.
  void handle_generation(const httplib::Request& http_req, httplib::Response& res, Endpoint ep);
  // The server-sent events of a streamed request, written to `sink`.
  void stream(Job& job, Endpoint ep, httplib::DataSink& sink);

  // routes.cpp
  void setup_routes();
  void add_generation_routes();
  void add_info_routes();     // /v1/models, /health, /metrics
  // Until the model is loaded: answers a route that needs it with 503 + Retry-After (after
  // the key check) and returns true.
  bool refuse_until_ready(const httplib::Request& q, httplib::Response& s);
  void add_error_handlers();  // httplib's own error responses, exceptions, the request log
};

}  // namespace fastkv::server
