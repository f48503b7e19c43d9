// The --backend flag of run, serve, bench and eval: the GEMM backend.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "kernels/linear.h"

namespace fastkv::cli {

// --backend: "f32" (OpenBLAS, the reference), "bf16" (oneDNN), "quant" (Q8_0/Q4_0/Q4_1 weights
// kept quantised: kernels::QuantLinear), or "auto" (bf16 where the CPU has native bf16
// instructions, f32 elsewhere; never quant).
kernels::Backend parse_backend(const std::string& text);

// Adds --backend (bound to `value`, whose initial text is the default) to a sub-command.
void add_backend_option(CLI::App* cmd, std::string& value);

}  // namespace fastkv::cli
