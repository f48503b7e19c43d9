#include "runtime/generation.h"

#include <algorithm>

#include "common/error.h"
#include "runtime/context.h"

namespace fastkv {
namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Length of the longest suffix of `text` that is a proper prefix of some stop string: those
// bytes must be held back while streaming, as the next token may complete the stop string.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& s : stops) {
    for (size_t len = std::min(s.size() - 1, text.size()); len > hold; --len) {
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  return hold;
}

// Moves a cut point back to the start of a UTF-8 character.
size_t utf8_floor(const std::string& s, size_t cut) {
  while (cut > 0 && cut < s.size() && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}
}  // namespace

Generation::Generation(Session& session, std::vector<int32_t> prompt, GenerationParams params,
                       TextFn on_text)
    : session_(session),
      params_(std::move(params)),
      on_text_(std::move(on_text)),
      sampler_(params_.sampling),
      history_(std::move(prompt)) {
  if (params_.max_tokens < 0) fail("--n-predict must be >= 0, got ", params_.max_tokens);
  const Model& model = session_.model();
  check_prompt_fits(model, history_.size(), params_.ctx_size);
  ctx_ = effective_context(model, params_.ctx_size);
  tok_ = model.tokenizer();
  r_.n_prompt = static_cast<int>(history_.size());
  r_.finish_reason = "length";
  // The generated tokens continue the prompt: a leading space of the first piece is real text,
  // not the space SentencePiece adds at the start of an input (at_text_start = false).
  if (tok_) stream_ = std::make_unique<StreamDecoder>(*tok_, /*at_text_start=*/false);
}

void Generation::prefill() {
  if (prefilled_) fail("Generation::prefill called twice");
  prefilled_ = true;
  t0_ = Clock::now();
  // a decode step appends each generated token but the last (max_tokens - 1 rows at most; one
  // spare), and the context bounds them too
  session_.set_decode_headroom(std::max<int64_t>(
      0, std::min<int64_t>(params_.max_tokens, ctx_ - static_cast<int64_t>(history_.size()))));
  session_.prefill(history_, params_.on_prefill_layer);
  r_.prefill = session_.last_prefill();
  r_.kv_bytes = session_.cache().bytes();
  if (params_.keep_first_logits) r_.first_logits = session_.logits();
  if (params_.max_tokens == 0) {
    // With nothing to generate, the time to first token is the prefill alone (so that reports
    // of prefill speed are not zero).
    r_.ttft_s = seconds_since(t0_);
    done_ = true;
    return;
  }
  take_token();
}

void Generation::accept_decoded() {
  if (!prefilled_ || done_) fail("Generation::accept_decoded: no token is pending");
  ++r_.n_decode_steps;
  take_token();
}

void Generation::take_token() {
  const std::vector<float>& logits = session_.logits();
  const int32_t next = sampler_.sample(logits, history_);
  if (r_.n_decode_steps == 0) {  // the prefill's token
    r_.ttft_s = seconds_since(t0_);
    t_first_ = Clock::now();
  }
  if (params_.stop_at_eog && tok_ && tok_->is_end_of_generation(next)) {
    r_.finish_reason = "stop";
    done_ = true;
    return;
  }
  history_.push_back(next);
  r_.tokens.push_back(next);
  if (params_.logprobs >= 0) {
    r_.logprobs.push_back(token_logprob(apply_logit_bias(logits, params_.sampling.logit_bias),
                                        next, params_.logprobs));
    if (params_.on_logprobs) params_.on_logprobs(r_.logprobs.back());
  }
  if (stream_) text_ += stream_->push(next);
  // Stop strings: cut at the first occurrence (only new text can contain a new match).
  for (const std::string& s : params_.stop) {
    if (s.empty()) continue;
    size_t at = text_.find(s, emitted_ > s.size() ? emitted_ - s.size() : 0);
    if (at != std::string::npos) {
      text_.resize(at);
      cut_at_stop_string_ = true;
    }
  }
  if (cut_at_stop_string_) {
    r_.finish_reason = "stop";
    done_ = true;
    return;
  }
  const size_t safe = utf8_floor(text_, text_.size() - held_back(text_, params_.stop));
  if (safe > emitted_) {
    if (on_text_ && !on_text_(text_.substr(emitted_, safe - emitted_))) cancelled_ = true;
    emitted_ = safe;
  }
  if (cancelled_) {
    r_.finish_reason = "stop";
    done_ = true;
    return;
  }
  // finish_reason stays "length": max_tokens reached, or the context is full.
  if (static_cast<int>(r_.tokens.size()) >= params_.max_tokens ||
      session_.next_position() >= ctx_) {
    done_ = true;
  }
}

GenerationResult Generation::finish() {
  if (finished_) fail("Generation::finish called twice");
  finished_ = true;
  if (!cut_at_stop_string_ && !cancelled_ && stream_) text_ += stream_->flush();
  if (!cancelled_ && on_text_ && text_.size() > emitted_) on_text_(text_.substr(emitted_));
  r_.text = text_;
  if (r_.n_decode_steps > 0) r_.decode_s = seconds_since(t_first_);
  return std::move(r_);
}

}  // namespace fastkv
