#include "runtime/context.h"

#include "common/error.h"

namespace fastkv {

int effective_context(const Model& model, int ctx_size) {
  return ctx_size > 0 ? ctx_size : model.config().n_ctx_train;
}

bool prompt_fits(size_t n_prompt, int ctx) {
  return ctx > 0 && n_prompt < static_cast<size_t>(ctx);
}

std::string prompt_too_long(size_t n_prompt, int ctx) {
  return cat("the prompt has ", n_prompt, " tokens but the context holds ", ctx,
             " (prompt + at least one generated token)");
}

void check_prompt_fits(const Model& model, size_t n_prompt, int ctx_size, std::string_view flag) {
  const int ctx = effective_context(model, ctx_size);
  if (n_prompt == 0) fail("the prompt is empty");
  if (!prompt_fits(n_prompt, ctx)) {
    fail(prompt_too_long(n_prompt, ctx), "; raise it with ", flag,
         ctx_size > 0 ? "" : cat(" (the model was trained with ", model.config().n_ctx_train, ")"));
  }
}

std::string context_warning(const Model& model, int ctx_size) {
  const int trained = model.config().n_ctx_train;
  if (ctx_size <= trained) return "";
  return cat("the context size ", ctx_size, " is larger than the ", trained,
             " tokens the model was trained with; output past ", trained,
             " tokens is likely to be gibberish");
}

}  // namespace fastkv
