// The server's inside, shared by the files that hold its parts (private to src/server/):
//   server.cpp      construction, the public Server calls, helpers
//   admission.cpp   the API key check and admission: parse, tokenize, check, wait for a slot
//   generation.cpp  an admitted request's answer: one JSON response or a server-sent stream
//   engine.cpp      the engine thread: owns the model, prefills new requests and decodes all
//                   running ones together, one batched step at a time (continuous batching)
//   routes.cpp      the routes, httplib's own error responses, the request log
// and connection_watch.* (has the client gone?), auth.* (the bearer key), slots.* (slots and
// queue), metrics.* (Prometheus counters), openai.* (the API's JSON).
#pragma once

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "server/connection_watch.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/slots.h"

namespace fastkv::server {

// What the engine tells a request's connection thread, in order: text pieces (streamed
// requests only), then one kDone or kError.
struct JobEvent {
  enum class Kind { kPiece, kDone, kError };
  Kind kind = Kind::kPiece;
  std::string text;  // kPiece: the piece; kError: the message
  // The log-probabilities of the tokens whose text this piece completes (kPiece), or of the
  // tokens left over at the end (kDone: their text was cut by a stop string or is empty);
  // filled only for streamed requests with logprobs.
  std::vector<TokenLogprob> logprobs;
  GenerationResult result;  // kDone
  bool cancelled = false;   // kDone: the client went away (or the server stopped)
  bool bad_request = false;  // kError: a fastkv::Error (the request's fault: 400), else 500
};

// A request that holds a slot: everything its generation needs, and the channel from the
// engine thread (which generates it) to the connection thread (which answers).
struct Job {
  CompletionRequest req;
  std::vector<int32_t> prompt;
  std::unique_ptr<CompressionMethod> policy;  // moved into the engine's Session
  ResponseMeta meta;
  std::unique_ptr<SlotLease> lease;  // reset by the connection thread after kDone / kError
  ConnectionWatch watch;
  explicit Job(const httplib::Request& http_req)
      : watch(http_req.remote_addr, http_req.remote_port, http_req.local_port) {}

  // Engine side: queues an event for the connection thread.
  void post(JobEvent e);
  // Connection side: the next event (waits for it).
  JobEvent next();
  // Connection side: the client can no longer be written to; the engine drops the request at
  // its next step.
  void abandon() { abandoned.store(true); }
  std::atomic<bool> abandoned{false};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<JobEvent> events_;
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

  // The engine (engine.cpp): one thread, started by set_model(), owns every Session. Requests
  // reach it through `incoming`; `running` and the rest of its state live in engine.cpp.
  std::mutex engine_mu;
  std::condition_variable engine_cv;
  std::deque<std::shared_ptr<Job>> incoming;  // admitted, not yet prefilled (guarded)
  bool engine_exit = false;                   // guarded by engine_mu
  std::thread engine_thread;

  // server.cpp
  explicit Impl(ServerOptions o);
  ~Impl();  // stops the engine (its running requests end as cancelled)
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

  // engine.cpp
  void start_engine();
  void stop_engine();
  // Hands an admitted job to the engine; its events then come through job->next().
  void submit(std::shared_ptr<Job> job);
  void engine_loop();  // the engine thread's body

  // generation.cpp
  // POST /v1/completions and /v1/chat/completions.
  void handle_generation(const httplib::Request& http_req, httplib::Response& res, Endpoint ep);
  // The server-sent events of a streamed request, written to `sink`.
  void stream(const std::shared_ptr<Job>& job, Endpoint ep, httplib::DataSink& sink);

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
