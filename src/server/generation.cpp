// An admitted request's answer: it goes to the engine (engine.cpp), which generates it
// together with the other running requests; this thread (the connection's) waits for its
// events and writes one JSON response, or server-sent events as the pieces come. A client that
// goes away (or a stopping server) ends the generation at its next step; the slot is freed when
// the engine is done with it.
#include <optional>

#include "common/error.h"
#include "server/server_impl.h"

namespace fastkv::server {

using json = nlohmann::json;

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
    submit(job);
    JobEvent e = job->next();
    job->lease.reset();
    if (e.kind == JobEvent::Kind::kError) {
      send_error(res, e.bad_request ? ApiError(400, e.text)
                                    : ApiError(500, "internal error: " + e.text, "", "",
                                               "server_error"));
      return;
    }
    const GenerationResult& r = e.result;
    const json logprobs = job->req.logprobs ? logprobs_json(ep, r.logprobs, *tok) : json(nullptr);
    res.set_content(dump(completion_response(ep, job->meta, r, job->req, logprobs)),
                    "application/json");
    return;
  }
  // Streamed: headers go out now; the provider hands the job to the engine and writes its
  // events on this connection's thread; the job owns the slot until the engine is done with it
  // (or the response is dropped unsent).
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream",
                                   [this, job, ep](size_t, httplib::DataSink& sink) {
                                     stream(job, ep, sink);
                                     job->lease.reset();
                                     sink.done();
                                     return true;
                                   });
}

void Server::Impl::stream(const std::shared_ptr<Job>& job_ptr, Endpoint ep,
                          httplib::DataSink& sink) {
  Job& job = *job_ptr;
  bool open = true;
  auto send = [&](std::string_view s) {
    if (open && !sink.write(s.data(), s.size())) open = false;
    return open;
  };
  if (ep == Endpoint::kChat) send(sse_event(chat_role_chunk(job.meta)));
  // Log-probabilities of the tokens whose text has not gone out yet (a piece may wait for the
  // rest of a UTF-8 character or of a possible stop string); each chunk carries its tokens'.
  std::vector<TokenLogprob> pending;
  size_t offset = 0;  // bytes of completion text before the pending tokens
  auto take_logprobs = [&]() -> json {
    if (!job.req.logprobs) return nullptr;
    json j = logprobs_json(ep, pending, *tok, offset);
    for (const TokenLogprob& t : pending) offset += tok->token_to_piece(t.token).size();
    pending.clear();
    return j;
  };
  submit(job_ptr);
  for (;;) {
    JobEvent e = job.next();
    if (e.kind == JobEvent::Kind::kError) {
      send(sse_event(error_json(ApiError(500, e.text, "", "", "server_error"))));
      send(kSseDone);
      return;
    }
    pending.insert(pending.end(), e.logprobs.begin(), e.logprobs.end());
    if (e.kind == JobEvent::Kind::kPiece) {
      // A client that cannot be written to is dropped at the engine's next step.
      if (!send(sse_event(stream_chunk(ep, job.meta, e.text, std::nullopt, take_logprobs())))) {
        job.abandon();
      }
      continue;
    }
    if (e.cancelled) return;
    const GenerationResult& r = e.result;
    // Tokens whose text was cut by a stop string still carry their log-probabilities.
    send(sse_event(stream_chunk(ep, job.meta, "", r.finish_reason,
                                pending.empty() ? json(nullptr) : take_logprobs())));
    if (job.req.include_usage) send(sse_event(usage_chunk(ep, job.meta, r)));
    send(kSseDone);
    return;
  }
}

}  // namespace fastkv::server
