#include "server/server.h"

#include <dirent.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <httplib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <thread>

#include "common/error.h"
#include "runtime/context.h"
#include "server/metrics.h"
#include "server/slots.h"

namespace fastkv::server {
namespace {

using json = nlohmann::json;

// Watches the TCP connection a request came on, to notice a client that went away while its
// request waits or generates. httplib 0.11 hands handlers no socket, so the socket is found by
// its addresses: the one whose local and peer ports (and peer address) are the request's. It
// stays open while the handler or its content provider runs, on the thread that owns it.
// When it cannot be found, the client is taken to be there.
class ConnectionWatch {
 public:
  explicit ConnectionWatch(const httplib::Request& req) : fd_(find(req)) {}
  // True once the peer has closed (or reset) the connection.
  bool closed() const {
    if (fd_ < 0) return false;
    pollfd p{fd_, static_cast<short>(POLLRDHUP), 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  }

 private:
  static int port_of(const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
    if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
    return -1;
  }

  static int find(const httplib::Request& req) {
    if (req.remote_port <= 0 || req.local_port <= 0) return -1;
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return -1;
    int found = -1;
    while (dirent* e = ::readdir(dir)) {
      char* end = nullptr;
      long fd = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0' || fd == ::dirfd(dir)) continue;
      struct stat st;
      if (::fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
      sockaddr_storage local{}, peer{};
      socklen_t ll = sizeof local, pl = sizeof peer;
      if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
          ::getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &pl) != 0) {
        continue;
      }
      if (port_of(local) != req.local_port || port_of(peer) != req.remote_port) continue;
      char host[NI_MAXHOST];
      if (::getnameinfo(reinterpret_cast<sockaddr*>(&peer), pl, host, sizeof host, nullptr, 0,
                        NI_NUMERICHOST) != 0 ||
          req.remote_addr != host) {
        continue;
      }
      found = static_cast<int>(fd);
      break;
    }
    ::closedir(dir);
    return found;
  }

  int fd_;
};

const char* kKnownRoutes[] = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health",
                              "/metrics"};

std::string route_label(const std::string& path) {
  for (const char* r : kKnownRoutes) {
    if (path == r) return r;
  }
  return "other";
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  res.set_content(dump(error_json(e)), "application/json");
}

uint64_t random_seed() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A request that holds a slot: everything its generation needs.
struct Job {
  CompletionRequest req;
  std::vector<int32_t> prompt;
  std::unique_ptr<Policy> policy;
  ResponseMeta meta;
  std::unique_ptr<SlotLease> lease;
  ConnectionWatch watch;
  explicit Job(const httplib::Request& http_req) : watch(http_req) {}
};

}  // namespace

struct Server::Impl {
  const Model& model;
  ServerOptions opts;
  const Tokenizer& tok;
  std::optional<ChatTemplate> tmpl;
  std::string tmpl_error;
  int ctx = 0;
  int threads = 1;
  SlotPool pool;
  Metrics metrics;
  httplib::Server http;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> next_id{1};
  std::string id_prefix;

  Impl(const Model& m, ServerOptions o)
      : model(m), opts(std::move(o)), tok(m.require_tokenizer()), pool(opts.slots, opts.queue) {
    if (opts.ctx_size < 0) fail("-c/--ctx-size must be >= 0, got ", opts.ctx_size);
    if (opts.threads < 0) fail("-t/--threads must be >= 0, got ", opts.threads);
    if (opts.max_body == 0) fail("--max-body must be > 0");
    ctx = effective_context(model, opts.ctx_size);
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = opts.threads > 0 ? opts.threads : std::max(1, cores / opts.slots);
    // The server's default method must be valid before any request relies on it.
    (void)PolicyRegistry::instance().create(opts.defaults.method, opts.defaults.options,
                                            model.config().n_layer);
    try {
      tmpl = ChatTemplate::detect(model.file(), tok);
    } catch (const Error& e) {
      tmpl_error = e.what();
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08llx",
                  static_cast<unsigned long long>(random_seed() & 0xffffffffull));
    id_prefix = buf;
    setup_routes();
  }

  bool authorized(const httplib::Request& req) const {
    if (opts.api_key.empty()) return true;
    const std::string want = "Bearer " + opts.api_key;
    const std::string got = req.get_header_value("Authorization");
    // Compare every byte whatever the first mismatch, so timing does not reveal the key.
    unsigned diff = got.size() != want.size();
    for (size_t i = 0; i < want.size(); ++i) {
      diff |= static_cast<unsigned char>(want[i]) ^
              static_cast<unsigned char>(i < got.size() ? got[i] : 0);
    }
    return diff == 0;
  }

  void require_auth(const httplib::Request& req, httplib::Response& res) const {
    if (authorized(req)) return;
    res.set_header("WWW-Authenticate", "Bearer");
    throw ApiError(401,
                   req.has_header("Authorization")
                       ? "invalid API key (expected 'Authorization: Bearer <key>')"
                       : "missing API key: send 'Authorization: Bearer <key>'",
                   "", "invalid_api_key");
  }

  std::string next_id_str(Endpoint ep) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s-%s%06llx", ep == Endpoint::kChat ? "chatcmpl" : "cmpl",
                  id_prefix.c_str(), static_cast<unsigned long long>(next_id++));
    return buf;
  }

  // Runs one generation in the calling thread; frees the cache before returning.
  // on_piece returning false stops it (the client went away).
  GenerationResult generate(Job& job, const std::function<bool(const std::string&)>& on_piece,
                            bool* cancelled) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    *cancelled = false;
    GenerationResult r;
    {
      Session session(model, std::move(job.policy));
      r = session.generate(job.prompt, job.req.gen, [&](const std::string& piece) {
        job.lease->set_kv_bytes(session.cache().bytes());
        if (stopping || job.watch.closed() || !on_piece(piece)) {
          *cancelled = true;
          return false;
        }
        return true;
      });
    }  // the Session and its cache go here
    job.lease->set_kv_bytes(0);
    metrics.record_generation(r.n_prompt, static_cast<int64_t>(r.tokens.size()), r.ttft_s,
                              r.decode_s, r.n_decode_steps, *cancelled);
    return r;
  }

  // Parses, validates, tokenizes and waits for a slot. Returns nullptr when the client went
  // away while waiting. Throws ApiError.
  std::shared_ptr<Job> admit(const httplib::Request& http_req, httplib::Response& res,
                             Endpoint ep) {
    require_auth(http_req, res);
    auto job = std::make_shared<Job>(http_req);
    job->req = parse_request(http_req.body, ep, opts.defaults, random_seed());
    std::string text;
    if (ep == Endpoint::kChat) {
      if (!tmpl) {
        throw ApiError(
            400,
            "this model has no supported chat template (" + tmpl_error + "); use /v1/completions",
            "messages", "unsupported_model");
      }
      text = tmpl->render(job->req.messages, /*add_generation_prompt=*/true);
    } else {
      text = job->req.prompt;
    }
    job->prompt = tok.encode(text, /*add_special=*/true, /*parse_special=*/true);
    check_prompt_fits(job->prompt.size(), ctx, ep);
    job->policy = make_policy(job->req, model.config().n_layer);
    job->req.gen.ctx_size = ctx;
    job->meta = {next_id_str(ep), unix_now(), opts.model_id};

    int slot = -1;
    switch (pool.acquire(&slot, [&] { return stopping || job->watch.closed(); })) {
      case SlotPool::Result::kQueueFull:
        metrics.count_rejected_queue_full();
        throw ApiError(503,
                       cat("the server is busy: ", pool.size(), " requests are generating and ",
                           opts.queue, " are waiting; retry later"),
                       "", "server_busy", "server_error");
      case SlotPool::Result::kCancelled:
        return nullptr;
      case SlotPool::Result::kAcquired:
        break;
    }
    job->lease = std::make_unique<SlotLease>(pool, slot);
    return job;
  }

  void handle_generation(const httplib::Request& http_req, httplib::Response& res, Endpoint ep) {
    std::shared_ptr<Job> job;
    try {
      job = admit(http_req, res, ep);
    } catch (const ApiError& e) {
      send_error(res, e);
      return;
    } catch (const Error& e) {  // tokenizer or template refusing the input
      send_error(res, ApiError(400, e.what()));
      return;
    }
    if (!job) {  // the client left while queued; nobody reads this
      send_error(res, ApiError(499, "client closed the request", "", "client_closed"));
      return;
    }
    if (!job->req.stream) {
      bool cancelled = false;
      GenerationResult r;
      try {
        r = generate(
            *job, [](const std::string&) { return true; }, &cancelled);
      } catch (const Error& e) {
        send_error(res, ApiError(400, e.what()));
        return;
      }
      job->lease.reset();
      res.set_content(dump(completion_response(ep, job->meta, r, job->req)), "application/json");
      return;
    }
    // Streamed: headers go out now; the provider runs the generation on this connection's
    // thread and owns the slot until it finishes (or the response is dropped unsent).
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream",
                                     [this, job, ep](size_t, httplib::DataSink& sink) {
                                       stream(*job, ep, sink);
                                       job->lease.reset();
                                       sink.done();
                                       return true;
                                     });
  }

  void stream(Job& job, Endpoint ep, httplib::DataSink& sink) {
    bool open = true;
    auto send = [&](std::string_view s) {
      if (open && !sink.write(s.data(), s.size())) open = false;
      return open;
    };
    if (ep == Endpoint::kChat) send(sse_event(chat_role_chunk(job.meta)));
    bool cancelled = false;
    GenerationResult r;
    try {
      r = generate(
          job,
          [&](const std::string& piece) {
            return send(sse_event(stream_chunk(ep, job.meta, piece, std::nullopt)));
          },
          &cancelled);
    } catch (const std::exception& e) {
      send(sse_event(error_json(ApiError(500, e.what(), "", "", "server_error"))));
      send(kSseDone);
      return;
    }
    if (cancelled) return;
    send(sse_event(stream_chunk(ep, job.meta, "", r.finish_reason)));
    if (job.req.include_usage) send(sse_event(usage_chunk(ep, job.meta, r)));
    send(kSseDone);
  }

  void setup_routes() {
    // Threads: one per generating slot, one per waiter, and spares so /health, /metrics and
    // refusals answer while every slot and queue place is taken.
    const size_t n_threads = static_cast<size_t>(opts.slots) + opts.queue +
                             std::max<size_t>(8, static_cast<size_t>(opts.slots));
    http.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
    http.set_payload_max_length(opts.max_body);

    http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& s) {
      handle_generation(q, s, Endpoint::kCompletions);
    });
    http.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& s) {
      handle_generation(q, s, Endpoint::kChat);
    });
    http.Get("/v1/models", [this](const httplib::Request& q, httplib::Response& s) {
      try {
        require_auth(q, s);
      } catch (const ApiError& e) {
        return send_error(s, e);
      }
      json m = {{"id", opts.model_id},
                {"object", "model"},
                {"created", unix_now()},
                {"owned_by", "fastkv"},
                {"context_length", ctx},
                {"backend", kernels::backend_name(model.backend())},
                {"kv_compression", {{"method", opts.defaults.method}}}};
      for (const auto& [k, v] : opts.defaults.options) m["kv_compression"][k] = v;
      s.set_content(dump(json{{"object", "list"}, {"data", json::array({m})}}), "application/json");
    });
    // /health needs no key: load balancers and orchestrators probe it without credentials.
    http.Get("/health", [this](const httplib::Request&, httplib::Response& s) {
      json h = {{"status", "ok"},
                {"slots", pool.size()},
                {"slots_busy", pool.busy()},
                {"queued", pool.queued()}};
      s.set_content(dump(h), "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request& q, httplib::Response& s) {
      try {
        require_auth(q, s);
      } catch (const ApiError& e) {
        return send_error(s, e);
      }
      LiveGauges g{pool.kv_bytes(), pool.size(), pool.busy(), pool.queued()};
      s.set_content(metrics.render(g), "text/plain; version=0.0.4");
    });

    // Responses httplib makes itself (unknown route, body too large, malformed HTTP) get
    // OpenAI-style JSON too; ours already carry a body.
    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& q,
                                                                       httplib::Response& s) {
      if (!s.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      ApiError e(s.status, "request failed");
      if (s.status == 404) {
        if (!authorized(q)) {
          s.status = 401;
          s.set_header("WWW-Authenticate", "Bearer");
          e = ApiError(401, "missing or invalid API key", "", "invalid_api_key");
        } else {
          e = ApiError(404, cat("unknown route: ", q.method, " ", q.path), "", "not_found");
        }
      } else if (s.status == 413) {
        e = ApiError(
            413,
            cat("the request body is larger than the server's limit of ", opts.max_body, " bytes"),
            "", "request_too_large");
      } else if (s.status == 400) {
        e = ApiError(400, "malformed HTTP request", "", "bad_request");
      } else if (s.status >= 500) {
        e = ApiError(s.status, "internal server error", "", "", "server_error");
      }
      send_error(s, e);
      return httplib::Server::HandlerResponse::Handled;
    }));
    http.set_exception_handler(
        [](const httplib::Request&, httplib::Response& s, std::exception_ptr ep) {
          std::string what = "unknown exception";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          send_error(s, ApiError(500, "internal error: " + what, "", "", "server_error"));
        });
    http.set_logger([this](const httplib::Request& q, const httplib::Response& s) {
      metrics.count_request(route_label(q.path), s.status);
      std::fprintf(stderr, "%s %s %d\n", q.method.c_str(), q.path.c_str(), s.status);
    });
  }
};

Server::Server(const Model& model, ServerOptions opts)
    : impl_(std::make_unique<Impl>(model, std::move(opts))) {}

Server::~Server() = default;

std::string Server::summary() const {
  const Impl& m = *impl_;
  std::string method = m.opts.defaults.method;
  std::string options;
  for (const auto& [k, v] : m.opts.defaults.options) options += cat(options.empty() ? "" : " ", k, "=", v);
  if (!options.empty()) method += " (" + options + ")";
  const ModelConfig& c = m.model.config();
  return cat("model ", m.opts.model_id, " (", c.name.empty() ? c.arch : c.name, ", ", c.n_layer,
             " layers), backend ", kernels::backend_name(m.model.backend()), ", method ", method,
             ", slots ", m.opts.slots, ", queue ", m.opts.queue, ", context ", m.ctx,
             ", threads per request ", m.threads);
}

int Server::bind() {
  const ServerOptions& o = impl_->opts;
  if (o.port == 0) {
    int port = impl_->http.bind_to_any_port(o.host);
    if (port <= 0) fail("cannot listen on ", o.host, " (any port)");
    return port;
  }
  if (o.port < 0 || o.port > 65535) fail("--port must be in [0, 65535], got ", o.port);
  if (!impl_->http.bind_to_port(o.host, o.port)) fail("cannot listen on ", o.host, ":", o.port);
  return o.port;
}

void Server::run() {
  if (!impl_->http.listen_after_bind() && !impl_->stopping) fail("the server stopped");
}

void Server::stop() {
  impl_->stopping = true;
  impl_->http.stop();
}

}  // namespace fastkv::server
