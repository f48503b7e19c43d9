// Running an admitted request on its slot: one JSON response, or server-sent events written as
// the tokens come; a client that goes away (or a stopping server) ends the generation at its
// next token, and the slot and the cache are freed when it ends.
#include <optional>

#include "common/error.h"
#include "kernels/parallel.h"
#include "server/server_impl.h"

namespace fastkv::server {

GenerationResult Server::Impl::generate(Job& job,
                                        const std::function<bool(const std::string&)>& on_piece,
                                        bool* cancelled) {
  kernels::set_threads(threads);
  *cancelled = false;
  GenerationResult r;
  {
    Session session(*model, std::move(job.policy));
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
  metrics.record_generation(r.n_prompt, static_cast<int64_t>(r.tokens.size()), r.ttft_s, r.decode_s,
                            r.n_decode_steps, *cancelled);
  return r;
}

void Server::Impl::handle_generation(const httplib::Request& http_req, httplib::Response& res,
                                     Endpoint ep) {
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

void Server::Impl::stream(Job& job, Endpoint ep, httplib::DataSink& sink) {
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

}  // namespace fastkv::server
