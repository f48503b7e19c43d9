// Sub-commands of the `fastkv` front end. Each cmd_*.cpp file adds one sub-command to the
// app; main.cpp calls every register_* function. Front ends parse and print, no model math.
#pragma once

#include <CLI/CLI.hpp>

namespace fastkv::cli {

void register_inspect(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_run(CLI::App& app);
void register_eval(CLI::App& app);
void register_serve(CLI::App& app);
void register_synth(CLI::App& app);
void register_bench(CLI::App& app);
void register_calibrate(CLI::App& app);

}  // namespace fastkv::cli
