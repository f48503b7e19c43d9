// fastkv serve: the OpenAI-compatible HTTP server (src/server/, API in docs/server.md).
// Binds its port first and loads the model after ("bound to http://HOST:PORT" on stderr;
// /health answers 503 meanwhile), then prints "listening on http://HOST:PORT" once requests
// are served; SIGINT or SIGTERM stops it (requests in progress stop at their next token; during
// the load, once the model file is read).
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "commands.h"
#include "common/error.h"
#include "backend_flag.h"
#include "calibration_file.h"
#include "method_options.h"
#include "model/model.h"
#include "runtime/context.h"
#include "server/server.h"

namespace fastkv::cli {
namespace {

struct ServeFlags {
  std::string model, alias, backend = "auto";
  server::ServerOptions opts;
  MethodFlags method;
};

void serve(ServeFlags& f) {
  if (f.opts.slots < 1) fail("--slots must be >= 1, got ", f.opts.slots);
  if (f.opts.queue < 0) fail("--queue must be >= 0, got ", f.opts.queue);
  if (f.opts.max_batch < 0) fail("--max-batch must be >= 0, got ", f.opts.max_batch);
  if (f.opts.port < 0 || f.opts.port > 65535)
    fail("--port must be in [0, 65535], got ", f.opts.port);
  f.method.collect();
  f.opts.defaults.method = f.method.method;
  f.opts.defaults.options = f.method.options;
  // Requests may name the model by --alias, by the file's name or by its stem; no other name.
  const std::filesystem::path file(f.model);
  f.opts.model_id = f.alias.empty() ? file.stem().string() : f.alias;
  f.opts.model_names = {file.stem().string(), file.filename().string()};

  // A client that disconnects must not kill the server with SIGPIPE; a failed write is
  // handled where it happens. SIGINT/SIGTERM are taken by one thread (blocked everywhere
  // else, so every thread created below inherits the mask) that stops the server.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Listen first, load after: /health answers 503 "loading" while the model loads, so a
  // balancer or an orchestrator's readiness probe knows this replica is alive but not ready.
  // "listening on" is printed once requests are served (the model is loaded).
  server::Server srv(f.opts);
  const int port = srv.bind();
  // IPv6 literals go in brackets in a URL.
  const std::string host =
      f.opts.host.find(':') != std::string::npos ? "[" + f.opts.host + "]" : f.opts.host;
  std::fprintf(stderr, "fastkv serve: bound to http://%s:%d; loading %s (/health answers 503 until "
               "it is loaded)\n", host.c_str(), port, f.model.c_str());
  std::fflush(stderr);
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> finishing{false};  // set before this thread wakes the waiter itself
  std::thread waiter([&srv, &stop_requested, &finishing, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (sig != 0 && !finishing) {
      stop_requested = true;
      srv.stop();
      // A load cannot be interrupted (it may even wait on a slow disk), and no request has
      // been served yet: nothing to finish, so leave now.
      if (!srv.ready()) {
        std::fprintf(stderr, "fastkv serve: stopped while loading the model\n");
        std::fflush(stderr);
        std::_Exit(0);
      }
    }
  });
  std::exception_ptr http_error;
  std::atomic<bool> http_done{false};
  std::thread http([&srv, &http_error, &http_done] {
    try {
      srv.run();
    } catch (...) {
      http_error = std::current_exception();
    }
    http_done = true;
  });
  // Stops the HTTP thread. httplib's stop() does nothing before its accept loop has started
  // (a load that fails at once can get here first), so it is repeated until run() returned.
  auto stop_http = [&] {
    while (!http_done) {
      srv.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    http.join();
  };
  // Stops the HTTP thread and the signal waiter (the model must outlive both).
  auto shut_down = [&] {
    stop_http();
    finishing = true;
    if (!stop_requested) pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
  };

  std::unique_ptr<Model> model;
  try {
    LoadOptions load;
    load.backend = parse_backend(f.backend, f.model);
    model = Model::load(f.model, load);
    // The calibrated TSP layer (MODEL.fastkv.json): the server's own fastkv default where
    // --tsp-layer is not given, and every request that asks for fastkv without a tsp_layer.
    f.opts.defaults.calibration = load_calibration(f.model, model->config().n_layer);
    if (f.opts.defaults.calibration) {
      std::fprintf(stderr,
                   "fastkv serve: calibrated TSP layer %d at rate %g from %s (used for fastkv "
                   "requests that give no tsp_layer)\n",
                   f.opts.defaults.calibration->tsp_layer, f.opts.defaults.calibration->tsp_rate,
                   calibration_path(f.model).c_str());
    }
    (void)apply_calibration(f.opts.defaults.calibration, f.opts.defaults.method,
                            f.opts.defaults.options);
    if (const std::string w = context_warning(*model, f.opts.ctx_size); !w.empty()) {
      std::fprintf(stderr, "warning: %s\n", w.c_str());
    }
    if (!stop_requested) {
      // The server copied its options before the model was read: the calibrated defaults
      // reach it here.
      srv.set_model(*model, f.opts.defaults);
      std::fprintf(stderr, "fastkv serve: %s\n", srv.summary().c_str());
      std::fprintf(stderr, "listening on http://%s:%d\n", host.c_str(), port);
      std::fflush(stderr);
    }
  } catch (...) {
    shut_down();
    throw;
  }
  // Serves until SIGINT/SIGTERM (the waiter stops the server) or a listening error. A signal
  // that came during the load, before the accept loop ran, is made good here.
  if (stop_requested) {
    stop_http();
  } else {
    http.join();
  }
  finishing = true;
  if (!stop_requested) pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  if (http_error) std::rethrow_exception(http_error);
}

}  // namespace

void register_serve(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (docs/server.md)");
  cmd->add_option("-m,--model", f->model, "GGUF model file")->required();
  cmd->add_option("--alias", f->alias, "model name reported by the API and accepted in requests besides the file's "
                  "name (default: the file name without .gguf)");
  cmd->add_option("--host", f->opts.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", f->opts.port, "port (0 = any free port, printed at start)")
      ->capture_default_str();
  cmd->add_option("--slots", f->opts.slots, "requests generating at once")->capture_default_str();
  cmd->add_option("--queue", f->opts.queue, "requests waiting for a slot before 503")
      ->capture_default_str();
  cmd->add_option("--max-body", f->opts.max_body, "largest request body in bytes (else 413)")
      ->capture_default_str();
  cmd->add_option("--api-key", f->opts.api_key,
                  "require 'Authorization: Bearer KEY' (every route but /health)");
  cmd->add_option("-c,--ctx-size", f->opts.ctx_size, "context size (0 = the model's)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", f->opts.threads,
                  "threads of the engine that runs every request (0 = all cores)")
      ->capture_default_str();
  cmd->add_option("--max-batch", f->opts.max_batch,
                  "most requests one decode step runs together (0 = --slots; 1 = each alone, "
                  "the numerics of a request served alone on every backend)")
      ->capture_default_str();
  add_backend_option(cmd, f->backend);
  f->method.add_to(cmd);
  cmd->callback([f] { serve(*f); });
}

}  // namespace fastkv::cli
