// Integer-list flag values ("4096,16K"), as bench's -p and eval's --lengths / --depths take them.
#pragma once

#include <string>
#include <vector>

namespace fastkv::cli {

// "1024,4K,16k" -> {1024, 4096, 16384}; K/k multiplies by 1024. Throws fastkv::Error naming
// `flag` on anything that is not a non-negative integer.
std::vector<int> parse_int_list(const std::string& flag, const std::string& text);

}  // namespace fastkv::cli
