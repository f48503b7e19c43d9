#include "runtime/session.h"

#include "common/error.h"
#include "runtime/generation.h"

namespace fastkv {

Session::Session(const Model& model, std::unique_ptr<CompressionMethod> policy)
    : model_(model), policy_(std::move(policy)) {
  if (!policy_) policy_ = std::make_unique<FullMethod>();
}

const std::vector<float>& Session::prefill(const std::vector<int32_t>& tokens,
                                           const PrefillProgressFn& progress) {
  PrefillOutput out = model_.prefill(tokens, *policy_, cache_, {}, progress);
  logits_ = std::move(out.logits);
  stats_ = std::move(out.stats);
  next_pos_ = stats_.next_position;
  return logits_;
}

const std::vector<float>& Session::decode(int32_t token) {
  logits_ = model_.decode(token, next_pos_, cache_);
  ++next_pos_;
  return logits_;
}

void Session::decode_batch(const std::vector<Session*>& sessions,
                           const std::vector<int32_t>& tokens) {
  if (sessions.empty()) fail("Session::decode_batch needs at least one session");
  if (sessions.size() != tokens.size()) {
    fail("Session::decode_batch: ", sessions.size(), " sessions and ", tokens.size(), " tokens");
  }
  const Model& model = sessions[0]->model_;
  std::vector<int64_t> positions;
  std::vector<KVCache*> caches;
  for (Session* s : sessions) {
    if (&s->model_ != &model) fail("Session::decode_batch: the sessions use different models");
    positions.push_back(s->next_pos_);
    caches.push_back(&s->cache_);
  }
  // [B, V] one row per session
  const std::vector<float> logits = model.decode_batch(tokens, positions, caches);
  const size_t V = logits.size() / sessions.size();
  for (size_t b = 0; b < sessions.size(); ++b) {
    Session& s = *sessions[b];
    s.logits_.assign(logits.begin() + b * V, logits.begin() + (b + 1) * V);
    ++s.next_pos_;
  }
}

GenerationResult Session::generate(const std::vector<int32_t>& prompt,
                                   const GenerationParams& params,
                                   const std::function<bool(const std::string&)>& on_text) {
  Generation g(*this, prompt, params, on_text);
  g.prefill();
  while (!g.done()) {
    decode(g.pending_token());
    g.accept_decoded();
  }
  return g.finish();
}

}  // namespace fastkv
