// Admission of a generation request: the API key, parsing and validation, the chat template,
// tokenization, the context check, the compression method, then a slot (or a place in the
// queue, or 503 when that is full too).
#include "common/error.h"
#include "server/auth.h"
#include "server/server_impl.h"

namespace fastkv::server {

bool Server::Impl::authorized(const httplib::Request& req) const {
  return api_key_accepted(opts.api_key, req.get_header_value("Authorization"));
}

void Server::Impl::require_auth(const httplib::Request& req, httplib::Response& res) const {
  if (authorized(req)) return;
  res.set_header("WWW-Authenticate", "Bearer");
  throw api_key_error(req.has_header("Authorization"));
}

std::shared_ptr<Job> Server::Impl::admit(const httplib::Request& http_req, httplib::Response& res,
                                         Endpoint ep) {
  require_auth(http_req, res);
  auto job = std::make_shared<Job>(http_req);
  job->req = parse_request(http_req.body, ep, opts.defaults, random_seed());
  check_model(job->req, served_names());
  check_logit_bias(job->req, tok->n_vocab());
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
  job->prompt = tok->encode(text, /*add_special=*/true, /*parse_special=*/true);
  check_prompt_fits(job->prompt.size(), ctx, ep);
  job->policy = make_policy(job->req, model->config().n_layer);
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

}  // namespace fastkv::server
