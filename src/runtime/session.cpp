#include "runtime/session.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "runtime/context.h"

namespace fastkv {
namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
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

GenerationResult Session::generate(const std::vector<int32_t>& prompt,
                                   const GenerationParams& params,
                                   const std::function<bool(const std::string&)>& on_text) {
  if (params.max_tokens < 0) fail("--n-predict must be >= 0, got ", params.max_tokens);
  check_prompt_fits(model_, prompt.size(), params.ctx_size);
  const int ctx = effective_context(model_, params.ctx_size);
  const Tokenizer* tok = model_.tokenizer();
  Sampler sampler(params.sampling);

  GenerationResult r;
  r.n_prompt = static_cast<int>(prompt.size());
  const auto t0 = Clock::now();
  prefill(prompt, params.on_prefill_layer);
  r.prefill = stats_;
  r.kv_bytes = cache_.bytes();
  if (params.keep_first_logits) r.first_logits = logits_;
  // With nothing to generate, the time to first token is the prefill alone (so that reports of
  // prefill speed are not zero).
  if (params.max_tokens == 0) r.ttft_s = seconds_since(t0);

  std::vector<int32_t> history = prompt;
  // The generated tokens continue the prompt: a leading space of the first piece is real text,
  // not the space SentencePiece adds at the start of an input (at_text_start = false).
  std::unique_ptr<StreamDecoder> stream =
      tok ? std::make_unique<StreamDecoder>(*tok, /*at_text_start=*/false) : nullptr;
  std::string text;      // all generated text so far
  size_t emitted = 0;    // bytes of `text` already handed to on_text
  r.finish_reason = "length";
  Clock::time_point t_first{};
  bool cut_at_stop_string = false, cancelled = false;
  for (int step = 0; step < params.max_tokens; ++step) {
    if (step > 0) {
      if (next_pos_ >= ctx) break;  // context full
      decode(history.back());
      ++r.n_decode_steps;
    }
    const int32_t next = sampler.sample(logits_, history);
    if (step == 0) {
      r.ttft_s = seconds_since(t0);
      t_first = Clock::now();
    }
    if (params.stop_at_eog && tok && tok->is_end_of_generation(next)) {
      r.finish_reason = "stop";
      break;
    }
    history.push_back(next);
    r.tokens.push_back(next);
    if (params.logprobs >= 0) {
      r.logprobs.push_back(token_logprob(apply_logit_bias(logits_, params.sampling.logit_bias),
                                         next, params.logprobs));
      if (params.on_logprobs) params.on_logprobs(r.logprobs.back());
    }
    if (stream) text += stream->push(next);
    // Stop strings: cut at the first occurrence (only new text can contain a new match).
    for (const std::string& s : params.stop) {
      if (s.empty()) continue;
      size_t at = text.find(s, emitted > s.size() ? emitted - s.size() : 0);
      if (at != std::string::npos) {
        text.resize(at);
        cut_at_stop_string = true;
      }
    }
    if (cut_at_stop_string) {
      r.finish_reason = "stop";
      break;
    }
    const size_t safe = utf8_floor(text, text.size() - held_back(text, params.stop));
    if (safe > emitted) {
      if (on_text && !on_text(text.substr(emitted, safe - emitted))) cancelled = true;
      emitted = safe;
    }
    if (cancelled) {
      r.finish_reason = "stop";
      break;
    }
  }
  if (!cut_at_stop_string && !cancelled && stream) text += stream->flush();
  if (!cancelled && on_text && text.size() > emitted) on_text(text.substr(emitted));
  r.text = text;
  if (r.n_decode_steps > 0) r.decode_s = seconds_since(t_first);
  return r;
}

}  // namespace fastkv
