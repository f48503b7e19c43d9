// Small word lists written for the RULER-style generator: keys of the needle tasks are
// "adjective-noun" pairs drawn from them.
#pragma once

#include <string>
#include <vector>

namespace fastkv::eval {

const std::vector<std::string>& adjective_list();
const std::vector<std::string>& noun_list();

}  // namespace fastkv::eval
