// Prompt text as llama.cpp users give it: `-p` with backslash escapes processed (their
// `-e/--escape`, on by default; `--no-escape` turns it off), `-f FILE` with `-f -` for standard
// input. Shared by `run` and `tokenize`.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace fastkv::cli {

// Replaces \n, \t, \r, \\, \" and \' with the characters they name; any other backslash
// sequence (and a trailing backslash) is kept as it is, so Windows paths and regexes in a
// prompt survive.
std::string process_escapes(const std::string& text);

// The bytes of `path`, or all of standard input when `path` is "-". Throws fastkv::Error naming
// the file (and `what` it was for) when it cannot be read.
std::string read_input_file(const std::string& path, const std::string& what);

// Adds --no-escape (bound to `no_escape`) to a sub-command.
void add_no_escape_flag(CLI::App* cmd, bool& no_escape);

}  // namespace fastkv::cli
