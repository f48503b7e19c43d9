// Parsing of method options (PolicyOptions: key -> text) with errors that name the flag.
#pragma once

#include <initializer_list>
#include <string>

#include "policy/policy.h"

namespace fastkv {

// "--retain-rate" for key "retain_rate".
std::string flag_name(const std::string& key);
// Throws fastkv::Error for a key not in `allowed` ("method 'x' does not take --foo").
void reject_unknown(const PolicyOptions& opts, const std::string& method,
                    std::initializer_list<const char*> allowed);
// The value of `key` as a finite double / an integer, or `fallback` when absent.
double option_double(const PolicyOptions& opts, const std::string& key, double fallback);
int option_int(const PolicyOptions& opts, const std::string& key, int fallback);
std::string option_string(const PolicyOptions& opts, const std::string& key,
                          const std::string& fallback);

}  // namespace fastkv
