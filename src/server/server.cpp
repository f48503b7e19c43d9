#include "server/server.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include "common/error.h"
#include "runtime/context.h"
#include "server/server_impl.h"

namespace fastkv::server {

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

Server::Impl::Impl(ServerOptions o) : opts(std::move(o)), pool(opts.slots, opts.queue) {
  if (opts.ctx_size < 0) fail("-c/--ctx-size must be >= 0, got ", opts.ctx_size);
  if (opts.threads < 0) fail("-t/--threads must be >= 0, got ", opts.threads);
  if (opts.max_batch < 0) fail("--max-batch must be >= 0, got ", opts.max_batch);
  if (opts.max_body == 0) fail("--max-body must be > 0");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08llx",
                static_cast<unsigned long long>(random_seed() & 0xffffffffull));
  id_prefix = buf;
  setup_routes();
}

void Server::Impl::set_model(const Model& m, std::optional<MethodDefaults> defaults) {
  if (ready.load(std::memory_order_acquire)) fail("the server already has its model");
  if (defaults) opts.defaults = std::move(*defaults);
  const Tokenizer& t = m.require_tokenizer();
  const int c = effective_context(m, opts.ctx_size);
  // The server's default method must be valid before any request relies on it.
  (void)MethodRegistry::instance().create(opts.defaults.method, opts.defaults.options,
                                          m.config().n_layer);
  try {
    tmpl = ChatTemplate::detect(m.file(), t);
  } catch (const Error& e) {
    tmpl_error = e.what();
  }
  // One engine thread runs every request (prefills and batched decode steps), on all cores.
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = opts.threads > 0 ? opts.threads : cores;
  ctx = c;
  tok = &t;
  model = &m;
  start_engine();
  // Publishes everything above to the request threads, which test `ready` first.
  ready.store(true, std::memory_order_release);
}

Server::Impl::~Impl() {
  stopping = true;
  stop_engine();
}

std::string Server::Impl::next_id_str(Endpoint ep) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s-%s%06llx", ep == Endpoint::kChat ? "chatcmpl" : "cmpl",
                id_prefix.c_str(), static_cast<unsigned long long>(next_id++));
  return buf;
}

Server::Server(ServerOptions opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}

Server::Server(const Model& model, ServerOptions opts) : Server(std::move(opts)) {
  set_model(model, std::nullopt);
}

void Server::set_model(const Model& model, std::optional<MethodDefaults> defaults) {
  impl_->set_model(model, std::move(defaults));
}

bool Server::ready() const { return impl_->ready.load(std::memory_order_acquire); }

Server::~Server() = default;

std::string Server::summary() const {
  const Impl& m = *impl_;
  if (!m.model) fail("the server has no model yet");
  std::string method = m.opts.defaults.method;
  std::string options;
  for (const auto& [k, v] : m.opts.defaults.options) options += cat(options.empty() ? "" : " ", k, "=", v);
  if (!options.empty()) method += " (" + options + ")";
  const ModelConfig& c = m.model->config();
  return cat("model ", m.opts.model_id, " (", c.name.empty() ? c.arch : c.name, ", ", c.n_layer,
             " layers), backend ", kernels::backend_name(m.model->backend()), ", method ", method,
             ", slots ", m.opts.slots, ", queue ", m.opts.queue, ", context ", m.ctx,
             ", threads ", m.threads, ", batch ", m.opts.max_batch > 0 ? m.opts.max_batch : m.opts.slots);
}

std::vector<std::string> Server::Impl::served_names() const {
  std::vector<std::string> names = {opts.model_id};
  for (const std::string& n : opts.model_names) {
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
  }
  return names;
}

int Server::Impl::connections() const {
  return opts.slots + opts.queue + std::max(8, opts.slots);
}

int Server::bind() {
  Impl& m = *impl_;
  const ServerOptions& o = m.opts;
  if (o.port < 0 || o.port > 65535) fail("--port must be in [0, 65535], got ", o.port);
  // httplib's default socket options add SO_REUSEPORT, which lets a second server bind a port
  // that one is listening on (the kernel then splits connections between them). Ours keep only
  // SO_REUSEADDR (a restart may bind over connections in TIME_WAIT, never over a listener).
  m.http.set_socket_options([&m](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    m.listen_fd = sock;
  });
  errno = 0;
  int port = o.port;
  bool ok = false;
  if (o.port == 0) {
    port = m.http.bind_to_any_port(o.host);
    ok = port > 0;
  } else {
    ok = m.http.bind_to_port(o.host, o.port);
  }
  if (!ok) {
    const int err = errno;
    const std::string where = o.port == 0 ? cat(o.host, " (any port)") : cat(o.host, ":", o.port);
    if (err == EADDRINUSE) {
      fail("cannot listen on ", where, ": the address is already in use (is another server "
           "running on this port?)");
    }
    fail("cannot listen on ", where, err ? cat(": ", std::strerror(err)) : std::string());
  }
  // httplib listens with a backlog of 5: a burst of clients up to the queue's size would be
  // refused by the kernel. listen() on a listening socket resizes its backlog (Linux; the
  // kernel caps it at net.core.somaxconn).
  if (m.listen_fd >= 0) (void)::listen(m.listen_fd, m.connections());
  return port;
}

void Server::run() {
  const bool ok = impl_->http.listen_after_bind();
  // Every connection thread has ended (httplib joins its pool): the engine is idle; it ends
  // here, while the model (which may be destroyed right after run() returns) is still there.
  impl_->stop_engine();
  if (!ok && !impl_->stopping) fail("the server stopped");
}

void Server::stop() {
  impl_->stopping = true;
  impl_->http.stop();
}

}  // namespace fastkv::server
