// Running an admitted request on its slot: one JSON response, or server-sent events written as
// the tokens come; a client that goes away (or a stopping server) ends the generation at its
// next token, and the slot and the cache are freed when it ends.
#include <optional>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common/error.h"
#include "kernels/parallel.h"
#include "server/server_impl.h"

namespace fastkv::server {

using json = nlohmann::json;

namespace {
// Thrown by the prefill's per-layer hook when the client has gone: it unwinds the prefill
// between two layers (the Session and its cache are freed on the way out).
struct PrefillCancelled {};
}  // namespace

GenerationResult Server::Impl::generate(Job& job,
                                        const std::function<bool(const std::string&)>& on_piece,
                                        bool* cancelled) {
  kernels::set_threads(threads);
  *cancelled = false;
  GenerationResult r;
  r.n_prompt = static_cast<int>(job.prompt.size());
  // A long prefill (seconds) checks the client after every layer, so that one who left frees
  // the slot within a layer's time rather than at the first token.
  GenerationParams gen = job.req.gen;
  gen.on_prefill_layer = [&](const PrefillProgress&) {
    if (stopping || job.watch.closed()) throw PrefillCancelled{};
  };
  try {
    Session session(*model, std::move(job.policy));
    r = session.generate(job.prompt, gen, [&](const std::string& piece) {
      job.lease->set_kv_bytes(session.cache().bytes());
      if (stopping || job.watch.closed() || !on_piece(piece)) {
        *cancelled = true;
        return false;
      }
      return true;
    });
  } catch (const PrefillCancelled&) {  // the Session and its cache are gone
    *cancelled = true;
  }
  job.lease->set_kv_bytes(0);
#if defined(__GLIBC__)
  // The prefill's buffers (activations, attention tiles: tens of MB for long prompts) were
  // freed into this thread's malloc arena, which glibc keeps; hand the free pages back so that
  // the server's RSS returns to its idle size between requests (a few ms per call).
  malloc_trim(0);
#endif
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
    const json logprobs = job->req.logprobs ? logprobs_json(ep, r.logprobs, *tok) : json(nullptr);
    res.set_content(dump(completion_response(ep, job->meta, r, job->req, logprobs)),
                    "application/json");
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
  if (job.req.logprobs) {
    job.req.gen.on_logprobs = [&](const TokenLogprob& t) { pending.push_back(t); };
  }
  bool cancelled = false;
  GenerationResult r;
  try {
    r = generate(
        job,
        [&](const std::string& piece) {
          return send(sse_event(stream_chunk(ep, job.meta, piece, std::nullopt, take_logprobs())));
        },
        &cancelled);
  } catch (const std::exception& e) {
    send(sse_event(error_json(ApiError(500, e.what(), "", "", "server_error"))));
    send(kSseDone);
    return;
  }
  if (cancelled) return;
  // Tokens whose text was cut by a stop string still carry their log-probabilities.
  send(sse_event(stream_chunk(ep, job.meta, "", r.finish_reason,
                              pending.empty() ? json(nullptr) : take_logprobs())));
  if (job.req.include_usage) send(sse_event(usage_chunk(ep, job.meta, r)));
  send(kSseDone);
}

}  // namespace fastkv::server
