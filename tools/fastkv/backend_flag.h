// The --backend flag of run, serve, bench and eval: the GEMM backend.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "kernels/linear.h"

namespace fastkv::cli {

// --backend: "f32" (OpenBLAS, the reference), "bf16" (oneDNN), "quant" (quantised weights kept
// quantised: kernels::QuantLinear), or "auto" (fastkv::auto_backend of the model file: quant
// when the file's layer weights are mostly in a type QuantLinear reads, else bf16 where the CPU
// has native bf16 instructions, f32 elsewhere). Throws fastkv::Error for another text, or when
// "auto" cannot open the model.
kernels::Backend parse_backend(const std::string& text, const std::string& model_path);
// Throws fastkv::Error unless text is one of the four names (checked before the model opens).
void check_backend_text(const std::string& text);

// Adds --backend (bound to `value`, whose initial text is the default) to a sub-command.
void add_backend_option(CLI::App* cmd, std::string& value);

}  // namespace fastkv::cli
