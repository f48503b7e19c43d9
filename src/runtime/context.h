// The context rules every front end shares (run, serve, eval, bench): which context a run
// uses, whether a prompt fits it, and when a requested size goes past what the model was
// trained on.
//
// A prompt of N tokens fits a context of C tokens when 1 <= N < C: the prompt plus at least
// one generated token (the model writes the first token's keys and values at position N).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "model/model.h"

namespace fastkv {

// The context a run uses: ctx_size when > 0, otherwise the model's training context.
int effective_context(const Model& model, int ctx_size);

// Whether a non-empty prompt of n_prompt tokens leaves room for one generated token in a
// context of ctx tokens (n_prompt < ctx).
bool prompt_fits(size_t n_prompt, int ctx);

// "the prompt has N tokens but the context holds C (prompt + at least one generated token)":
// the front ends' one wording of a prompt that does not fit (each adds its own remedy).
std::string prompt_too_long(size_t n_prompt, int ctx);

// Throws fastkv::Error when the prompt is empty or does not fit the effective context of
// ctx_size; the message suggests raising it with `flag` (the front end's option) and, when
// ctx_size is 0, names the training context.
void check_prompt_fits(const Model& model, size_t n_prompt, int ctx_size,
                       std::string_view flag = "-c/--ctx-size");

// A warning for a context size above the model's training context (positions it never saw:
// output degrades without an error), naming both numbers; "" when ctx_size is within it.
std::string context_warning(const Model& model, int ctx_size);

}  // namespace fastkv
