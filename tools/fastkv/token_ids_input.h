// Prompts given as token ids (`run --ids`, `run --ids-file`): fed to the model as they are, no
// tokenisation and no BOS added, for comparing against another implementation on the exact
// same input.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fastkv::cli {

// "1,2,3" (spaces allowed around ids; one pair of enclosing brackets allowed, so the output of
// `fastkv tokenize ... --ids`, "[1, 2, 3]", can be passed as it is). Throws fastkv::Error naming
// --ids on an empty list, an empty entry or anything that is not a decimal integer.
std::vector<int32_t> parse_ids_text(const std::string& text);

// The JSON text of an --ids-file: an array of integers, or an object whose "ids" member is one.
// `source` names the file in errors ("standard input" for '-').
std::vector<int32_t> parse_ids_json(const std::string& json_text, const std::string& source);

// Throws fastkv::Error naming `flag` when an id lies outside [0, n_vocab).
void check_ids_in_vocab(const std::vector<int32_t>& ids, int n_vocab, const std::string& flag);

}  // namespace fastkv::cli
