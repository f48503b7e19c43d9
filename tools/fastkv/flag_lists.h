// Flag values shared by several sub-commands: integer lists ("4096,16K") and the GEMM backend.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <vector>

#include "kernels/linear.h"

namespace fastkv::cli {

// "1024,4K,16k" -> {1024, 4096, 16384}; K/k multiplies by 1024. Throws fastkv::Error naming
// `flag` on anything that is not a non-negative integer.
std::vector<int> parse_int_list(const std::string& flag, const std::string& text);

// --backend: "f32" (OpenBLAS, the reference), "bf16" (oneDNN), or "auto" (bf16 where the CPU
// has native bf16 instructions, f32 elsewhere).
kernels::Backend parse_backend(const std::string& text);

// Adds --backend (bound to `value`, whose initial text is the default) to a sub-command.
void add_backend_option(CLI::App* cmd, std::string& value);

}  // namespace fastkv::cli
