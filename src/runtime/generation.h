// Generation: one request's generation driven a step at a time, so that a caller can decode
// several of them together (the server's batched engine, Session::decode_batch) while the
// sampling, stop strings, end-of-generation, max_tokens, logprobs, logit_bias and the streamed
// text pieces stay in one place. Session::generate is this loop with one sequence:
//
//   Generation g(session, prompt, params, on_text);
//   g.prefill();                          // prefill, then the first token is sampled
//   while (!g.done()) {
//     session.decode(g.pending_token());  // or a batched step of several sessions
//     g.accept_decoded();                 // samples from session.logits()
//   }
//   GenerationResult r = g.finish();
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/session.h"

namespace fastkv {

class Generation {
 public:
  using TextFn = std::function<bool(const std::string&)>;
  // Checks the parameters (max_tokens >= 0, the prompt fits the context: runtime/context.h);
  // throws fastkv::Error. `session`, `params` and `on_text` are kept by reference/copy for the
  // Generation's lifetime (the session must outlive it). on_text gets printable chunks as they
  // are produced; returning false from it ends the generation (finish_reason "stop").
  Generation(Session& session, std::vector<int32_t> prompt, GenerationParams params,
             TextFn on_text = {});

  // Runs the prefill (params.on_prefill_layer after each layer; an exception thrown from it
  // unwinds out of here) and takes the first token from its logits. Call once, first.
  void prefill();
  // True once the generation has ended (stop, end of generation, max_tokens, context full,
  // on_text returned false); then finish() gives the result.
  bool done() const { return done_; }
  // The token the next decode step must append (the last sampled one). Only while !done().
  int32_t pending_token() const { return history_.back(); }
  // After the session decoded pending_token() (Session::decode or Session::decode_batch): takes
  // the next token from session.logits().
  void accept_decoded();
  // Flushes the text held back (a partial UTF-8 character or stop-string prefix) to on_text and
  // returns the result. Call once, after done() (or to end a generation early: its
  // finish_reason is then that of the last step).
  GenerationResult finish();
  // True when on_text returned false (the consumer went away).
  bool cancelled() const { return cancelled_; }
  Session& session() { return session_; }
  // Tokens generated so far.
  int n_generated() const { return static_cast<int>(r_.tokens.size()); }

 private:
  using Clock = std::chrono::steady_clock;
  // Samples from session.logits() and handles the new token: EOG, logprobs, text, stop
  // strings, on_text, max_tokens and the context's end.
  void take_token();

  Session& session_;
  GenerationParams params_;
  TextFn on_text_;
  Sampler sampler_;
  int ctx_ = 0;
  const Tokenizer* tok_ = nullptr;
  std::vector<int32_t> history_;  // the prompt, then every generated token
  std::unique_ptr<StreamDecoder> stream_;
  std::string text_;    // all generated text so far
  size_t emitted_ = 0;  // bytes of text_ already handed to on_text
  GenerationResult r_;
  Clock::time_point t0_{}, t_first_{};
  bool prefilled_ = false, done_ = false, finished_ = false;
  bool cut_at_stop_string_ = false, cancelled_ = false;
};

}  // namespace fastkv
