// The routes of the server (POST /v1/completions, POST /v1/chat/completions, GET /v1/models,
// GET /health, GET /metrics), the JSON answers to what httplib refuses itself (unknown route,
// body too large, malformed HTTP) and to exceptions, and the request log.
#include <algorithm>
#include <cstdio>
#include <exception>

#include "common/error.h"
#include "server/server_impl.h"

namespace fastkv::server {
namespace {

using json = nlohmann::json;

const char* kKnownRoutes[] = {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health",
                              "/metrics"};

std::string route_label(const std::string& path) {
  for (const char* r : kKnownRoutes) {
    if (path == r) return r;
  }
  return "other";
}

}  // namespace

void Server::Impl::setup_routes() {
  const size_t n_threads = static_cast<size_t>(connections());
  http.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
  http.set_payload_max_length(opts.max_body);
  add_generation_routes();
  add_info_routes();
  add_error_handlers();
}

void Server::Impl::add_generation_routes() {
  // The body is read here rather than by httplib, so that it is taken as JSON whatever its
  // Content-Type: httplib parses an application/x-www-form-urlencoded body (what `curl -d`
  // sends) as a form and refuses one over 8 KiB with 413; llama-server and OpenAI's API read
  // such a body as JSON too. The size limit (--max-body, 413) is httplib's, as for every route.
  auto route = [this](Endpoint ep) {
    return [this, ep](const httplib::Request& q, httplib::Response& s,
                      const httplib::ContentReader& read) {
      if (q.is_multipart_form_data()) {
        s.set_header("Connection", "close");  // the body is left unread
        return send_error(s, ApiError(415, "the request body must be JSON, not multipart/form-data",
                                      "", "unsupported_media_type"));
      }
      httplib::Request req = q;
      const bool complete = read([&req](const char* data, size_t n) {
        req.body.append(data, n);
        return true;
      });
      if (!complete) {  // httplib set the status (413 over --max-body, 400 malformed)
        if (s.status < 400) s.status = 400;
        s.set_header("Connection", "close");
        return;
      }
      if (refuse_until_ready(req, s)) return;
      handle_generation(req, s, ep);
    };
  };
  http.Post("/v1/completions", route(Endpoint::kCompletions));
  http.Post("/v1/chat/completions", route(Endpoint::kChat));
}

bool Server::Impl::refuse_until_ready(const httplib::Request& q, httplib::Response& s) {
  if (ready.load(std::memory_order_acquire)) return false;
  try {
    require_auth(q, s);
  } catch (const ApiError& e) {
    send_error(s, e);
    return true;
  }
  // 503 (not 500): nginx's proxy_next_upstream http_503 retries it on another replica.
  s.set_header("Retry-After", "1");
  send_error(s, ApiError(503, "the model is still loading: retry when GET /health answers 200", "",
                         "model_loading", "server_error"));
  return true;
}

void Server::Impl::add_info_routes() {
  http.Get("/v1/models", [this](const httplib::Request& q, httplib::Response& s) {
    try {
      require_auth(q, s);
    } catch (const ApiError& e) {
      return send_error(s, e);
    }
    if (refuse_until_ready(q, s)) return;
    json m = {{"id", opts.model_id},
              {"object", "model"},
              {"created", unix_now()},
              {"owned_by", "fastkv"},
              {"context_length", ctx},
              {"slots", opts.slots},
              {"backend", kernels::backend_name(model->backend())},
              {"kv_compression",
               kv_compression_json(opts.defaults.method,
                                   typed_options(opts.defaults.method, opts.defaults.options))}};
    s.set_content(dump(json{{"object", "list"}, {"data", json::array({m})}}), "application/json");
  });
  // /health needs no key: load balancers and orchestrators probe it without credentials.
  // 503 "loading" until the model is loaded, then 200 "ok" however busy the replica is (a
  // liveness probe must not restart a replica for being busy; slots_free and queued say how
  // busy it is).
  http.Get("/health", [this](const httplib::Request&, httplib::Response& s) {
    const bool up = ready.load(std::memory_order_acquire);
    const int busy = pool.busy();
    json h = {{"status", up ? "ok" : "loading"},
              {"slots", pool.size()},
              {"slots_busy", busy},
              {"slots_free", pool.size() - busy},
              {"queued", pool.queued()}};
    s.status = up ? 200 : 503;
    s.set_content(dump(h), "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request& q, httplib::Response& s) {
    try {
      require_auth(q, s);
    } catch (const ApiError& e) {
      return send_error(s, e);
    }
    LiveGauges g{pool.kv_bytes(), pool.size(), pool.busy(), pool.queued(),
                 ready.load(std::memory_order_acquire)};
    s.set_content(metrics.render(g), "text/plain; version=0.0.4");
  });
}

void Server::Impl::add_error_handlers() {
  // Responses httplib makes itself (unknown route, body too large, malformed HTTP) get
  // OpenAI-style JSON too; ours already carry a body.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([this](const httplib::Request& q, httplib::Response& s) {
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
          e = ApiError(413,
                       cat("the request body is larger than the server's limit of ", opts.max_body,
                           " bytes"),
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

}  // namespace fastkv::server
