// Lists of compression methods, as `fastkv bench` and `fastkv eval` take them.
//
// `--methods` is a comma-separated list of specs NAME[:KEY=VALUE[:KEY=VALUE...]], e.g.
// "full,fastkv:retain_rate=0.1,fastkv:retain_rate=0.2,snapkv". KEY is an option key
// (retain_rate) or its flag spelling (retain-rate or --retain-rate).
// Options given in a spec go to that method only and must be valid for it.
// Shared options (the method flags of `fastkv run`, e.g. --retain-rate 0.2) go to every listed
// method whose schema has that option, and must be valid for each of them: a method that does
// not have the option runs without it (a note says so), a method that has it but refuses the
// value is an error (give that method its own value in its spec), and a shared option that no
// listed method has is an error.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "method/method.h"

namespace fastkv {

struct MethodSpec {
  std::string name;       // MethodRegistry name
  MethodOptions options;  // what the method is created with (text, as given)
  std::string label;      // unique id in results: name, then ":key=value" per option (sorted)
};

// Splits the --methods text into specs (per-spec options only); throws fastkv::Error on bad
// syntax or an empty list.
std::vector<MethodSpec> parse_method_list(const std::string& text);

// Adds the shared options to every spec whose method takes them, validates every spec by
// creating its policy once (n_layer of the model), sets the labels and rejects duplicate labels.
// `notes` receives one line per shared option a method does not take.
void resolve_methods(std::vector<MethodSpec>& specs, const MethodOptions& shared, int n_layer,
                     std::vector<std::string>* notes);

std::unique_ptr<CompressionMethod> create_policy(const MethodSpec& spec, int n_layer);

}  // namespace fastkv
