// Session: owns a KV cache and a compression policy over a loaded model, and offers
// prefill -> logits of the last token, decode(token) -> logits, a decode step of several
// sessions together (decode_batch), and generation with a sampler and stop conditions
// (generate; step by step: runtime/generation.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "method/method.h"
#include "cache/kv_cache.h"
#include "runtime/sampler.h"

namespace fastkv {

struct GenerationParams {
  int max_tokens = 128;                // >= 0
  SamplingParams sampling;
  std::vector<std::string> stop;       // stop strings (not included in the output)
  bool stop_at_eog = true;             // stop on EOS / end-of-turn tokens
  int ctx_size = 0;                    // 0 = the model's training context
  PrefillProgressFn on_prefill_layer;  // called after each prefill layer (may be empty)
  bool keep_first_logits = false;      // copy the prefill's last-token logits into the result
  // >= 0: the log-probability of every generated token and of its `logprobs` most likely
  // alternatives (runtime/sampler.h, token_logprob) go to GenerationResult::logprobs, and to
  // on_logprobs (when set) before the token's text goes to on_text. -1: none.
  int logprobs = -1;
  std::function<void(const TokenLogprob&)> on_logprobs;
};

struct GenerationResult {
  std::vector<int32_t> tokens;         // generated ids (stop/EOS token excluded)
  std::string text;                    // generated text (stop string excluded)
  std::string finish_reason;           // "stop" (EOS or stop string) | "length"
  PrefillStats prefill;
  int n_prompt = 0;
  double ttft_s = 0;                   // prefill + first sampled token
  double decode_s = 0;                 // all decode steps after the first token
  int n_decode_steps = 0;
  int64_t kv_bytes = 0;                // cache bytes held at the end of prefill
  // [V] the prefill's last-token logits (what the first token is sampled from), before any
  // sampling transform; filled only when params.keep_first_logits, else empty.
  std::vector<float> first_logits;
  // [tokens.size()] one per generated token when params.logprobs >= 0, else empty.
  std::vector<TokenLogprob> logprobs;
};

class Session {
 public:
  Session(const Model& model, std::unique_ptr<CompressionMethod> policy);

  // Fresh prefill of `tokens` (positions 0..N-1); returns the last token's logits [V].
  const std::vector<float>& prefill(const std::vector<int32_t>& tokens,
                                    const PrefillProgressFn& progress = {});
  // Appends `token` at position N + t and returns its logits [V].
  const std::vector<float>& decode(int32_t token);
  // How many decode steps the next prefill's cache makes room for (KVCache::set_decode_headroom:
  // steps beyond it still work, but move each head's rows once more).
  void set_decode_headroom(int64_t steps) { cache_.set_decode_headroom(steps); }
  // One decode step of several sessions of the same model together (Model::decode_batch: the
  // linear layers run once on B rows, attention per session on its own cache): session b
  // appends tokens[b]; afterwards sessions[b]->logits() is its row. On the quant backend each
  // row equals what decode() gives (the integer-dot kernels compute every row alone); the
  // f32 / bf16 GEMMs may differ from decode() in the last bits.
  static void decode_batch(const std::vector<Session*>& sessions,
                           const std::vector<int32_t>& tokens);

  // Prefill + sampling loop (the prompt must fit: runtime/context.h, check_prompt_fits). on_text
  // gets printable chunks as they are produced; returning false from it stops generation
  // (finish_reason "stop"). The loop of runtime/generation.h with this session alone.
  GenerationResult generate(const std::vector<int32_t>& prompt, const GenerationParams& params,
                            const std::function<bool(const std::string&)>& on_text = {});

  const Model& model() const { return model_; }
  const KVCache& cache() const { return cache_; }
  // [V] the logits of the last prefill or decode step.
  const std::vector<float>& logits() const { return logits_; }
  const PrefillStats& last_prefill() const { return stats_; }
  int64_t next_position() const { return next_pos_; }

 private:
  const Model& model_;
  std::unique_ptr<CompressionMethod> policy_;
  KVCache cache_;
  PrefillStats stats_;
  std::vector<float> logits_;
  int64_t next_pos_ = 0;
};

}  // namespace fastkv
